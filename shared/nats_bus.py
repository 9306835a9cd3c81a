"""Events over NATS JetStream (when TENURE_NATS_URL is set): the relay's target and the services' consumers.

The outbox stays the source of truth. Each service's `Relay` has one target here, the stream: it publishes
the outbox rows in `seq` order, one event at a time and each after the previous one's acknowledgement, to
`<prefix>.<event_type>.<subscription id, else account id>`, with the event id as `Nats-Msg-Id` (JetStream
drops a repeat inside the stream's duplicate window; the consumers' inboxes drop any later one), and moves
its cursor (`outbox_cursor` row `nats:<stream>`) only after the acknowledgements. The stream is created, or
its subjects brought up to date, when a service starts.

Each consuming service has one durable pull consumer, named after the service and shared by all its
copies, filtered to the event types it handles (the keys of the plain dict given to
`ServiceApp.add_event_sink`). Where the consumer cannot be filtered so, it reads `<prefix>.>` and
acknowledges the types without a handler without applying them: a handler table with a `get` of its own
(entitlement's answers every `subscription.*` type), and a server older than 2.10 (no multi-subject
filters). The consumer calls the same `EventSink.apply` as the gRPC push and
acknowledges after the inbox commit; an event the handler refuses is negatively acknowledged with
exponential back-off and comes again. A consumer that was down (or never ran) reads on from where its
durable stands, so it catches up from the stream.

Order. `max_ack_pending=1`: the server hands out one event of the consumer at a time, and the next only
after the previous is acknowledged, whichever copy of the service fetched it. That gives every consuming
service the stream's order (the producers' commit order), so per-subscription order holds, and a refused
event holds the ones after it just as the direct push does. A larger window would let two copies apply
two events of one subscription at once, and a redelivered event arrive after its successor. The price is
one event in flight per consuming service; the way past it (see the README's Scaling section) is one
consumer per partition of the subjects (a subject mapping `{{partition(n,3)}}` on the subscription token),
each still with a window of one, so the order per subscription is kept.

nats-py is asyncio and the services are threaded gRPC servers: each service runs one NATS connection on an
event loop in a thread of its own (`NatsBus`); the relay thread calls into it and waits for the result, and
the consumer applies events on a worker thread so the loop is never blocked by the database.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig

from shared.outbox import DeliveryFailed, EventSink
from shared.settings import EventBusSettings

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from tenure.events.v1 import events_pb2

log = logging.getLogger("tenure.nats")

T = TypeVar("T")

#: seconds JetStream remembers a `Nats-Msg-Id` and drops a repeat of it
DUPLICATE_WINDOW_SECONDS = 120.0
#: seconds an event may be applied before the server hands it out again (extended while the apply runs)
ACK_WAIT_SECONDS = 10.0
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def subject_of(prefix: str, ev: events_pb2.Event) -> str:
    """`<prefix>.<event_type>.<subscription id, else account id, else _>`; the last token keeps only
    characters a subject token may hold."""
    key = _TOKEN.sub("_", ev.subscription_id or ev.account_id) or "_"
    return f"{prefix}.{ev.event_type}.{key}"


def cursor_name(stream: str) -> str:
    return f"nats:{stream}"


@dataclass
class _Consumer:
    durable: str
    sink: EventSink
    #: the types its durable is filtered to (None: every type, those without a handler acknowledged unapplied)
    event_types: list[str] | None
    task: asyncio.Task[None] | None = None
    applied: int = 0


@dataclass
class NatsBus:
    """One service's NATS connection, on an asyncio loop in a thread of its own."""

    service: str
    settings: EventBusSettings
    #: deadline of a publish and of the other JetStream calls, and of the first connection
    timeout: float = 10.0
    #: longest back-off before a refused event comes again
    max_backoff: float = 30.0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _nc: Client | None = None
    _js: JetStreamContext | None = None
    _consumers: list[_Consumer] = field(default_factory=list)
    _stopping: bool = False

    @property
    def stream(self) -> str:
        return self.settings.stream

    @property
    def prefix(self) -> str:
        return self.settings.subject_prefix

    def target(self) -> JetStreamTarget:
        return JetStreamTarget(self)

    def consume(self, sink: EventSink, event_types: Sequence[str] | None) -> None:
        """Apply the given event types with `sink` (the service's durable consumer, started with the bus);
        None: every type, each applied when the sink's handler table has a handler for it."""
        c = _Consumer(self.service, sink, sorted(event_types) if event_types is not None else None)
        self._consumers.append(c)
        if self._js is not None:
            self.call(self._start_consumer(c))

    # -- the loop ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, make sure the stream is there, start the consumers; raises when NATS cannot be reached."""
        if self._thread is not None:
            return
        self._stopping = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"nats-{self.service}", daemon=True
        )
        self._thread.start()
        try:
            self.call(self._connect(), timeout=self.timeout * 3)
            for c in self._consumers:
                self.call(self._start_consumer(c))
        except BaseException:
            self.stop()
            raise

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the bus's loop and wait for its result (from any other thread)."""
        if self._loop is None:
            coro.close()
            raise DeliveryFailed("the NATS connection is not started")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout=timeout if timeout is not None else self.timeout * 2)

    def stop(self) -> None:
        """Let each consumer finish the event it is applying, then close the connection and the loop."""
        if self._loop is None:
            return
        self._stopping = True
        try:
            self.call(self._close(), timeout=self.timeout * 2)
        except Exception:  # pragma: no cover - closing a broken connection
            log.warning("closing the NATS connection failed", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop, self._thread, self._nc, self._js = None, None, None, None

    async def _connect(self) -> None:
        servers = [u.strip() for u in self.settings.url.split(",") if u.strip()]

        async def disconnected() -> None:
            if not self._stopping:
                log.warning("NATS connection lost; reconnecting")

        async def reconnected() -> None:
            log.info("NATS connection back")

        async def error(e: Exception) -> None:
            log.warning("NATS: %s", e)

        try:
            # once connected it reconnects for ever; the first connection must come within connect_timeout
            self._nc = await asyncio.wait_for(
                nats.connect(
                    servers=servers,
                    name=f"tenure-{self.service}",
                    connect_timeout=min(self.timeout, 2.0),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                ),
                timeout=self.timeout,
            )
        except Exception as e:  # TimeoutError too
            raise RuntimeError(
                f"NATS at {self.settings.url} (TENURE_NATS_URL) cannot be reached within "
                f"{self.timeout:.0f} s; is it running with JetStream (-js)?"
            ) from e
        self._js = self._nc.jetstream(timeout=self.timeout)
        await self._ensure_stream()

    async def _ensure_stream(self) -> None:
        """Create the stream, or bring its subjects up to date; any number of services may do it at once."""
        assert self._js is not None
        subjects = [f"{self.prefix}.>"]
        config = StreamConfig(
            name=self.stream,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )
        for _ in range(3):
            try:
                info = await self._js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                try:
                    await self._js.add_stream(config)
                    log.info("NATS stream %s created (subjects %s)", self.stream, subjects)
                    return
                except nats.js.errors.BadRequestError:
                    continue  # made by another service at the same moment: read it again
            if sorted(info.config.subjects or []) != subjects:
                await self._js.update_stream(config)
                log.info("NATS stream %s now holds %s", self.stream, subjects)
            return
        raise RuntimeError(f"the NATS stream {self.stream} could not be created")

    async def _start_consumer(self, c: _Consumer) -> None:
        assert self._js is not None and self._nc is not None
        version = self._nc.connected_server_version
        many = (version.major, version.minor) >= (2, 10)
        filters = [f"{self.prefix}.{t}.>" for t in c.event_types or []] or [f"{self.prefix}.>"]
        config = ConsumerConfig(
            durable_name=c.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            max_ack_pending=1,
            max_deliver=-1,
            filter_subjects=filters if many and len(filters) > 1 else None,
            filter_subject=(filters[0] if len(filters) == 1 else None) if many else f"{self.prefix}.>",
        )
        try:
            await self._js.add_consumer(self.stream, config)
        except nats.js.errors.APIError as e:
            # a changed configuration the server will not take in place: keep the durable (and its place)
            log.warning("NATS consumer %s kept as it is (%s)", c.durable, e)
        sub = await self._js.pull_subscribe_bind(c.durable, stream=self.stream)
        c.task = asyncio.get_running_loop().create_task(self._consume(c, sub), name=f"consume-{c.durable}")

    async def _consume(self, c: _Consumer, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            try:
                msgs = await sub.fetch(1, timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            except Exception as e:
                if self._stopping:
                    break
                log.warning("NATS fetch for %s failed (%s); again in 0.5 s", c.durable, e)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(c, msg)

    async def _handle(self, c: _Consumer, msg: Msg) -> None:
        from tenure.events.v1 import events_pb2

        try:
            ev = events_pb2.Event.FromString(msg.data)
        except DecodeError:
            log.error("NATS message on %s is not an Event; dropped", msg.subject)
            await msg.term()
            return
        if c.sink.handlers.get(ev.event_type) is None:
            await msg.ack()  # a type this service does not handle (read where the consumer cannot filter)
            return
        loop = asyncio.get_running_loop()
        applying = loop.run_in_executor(None, c.sink.apply, ev)
        try:
            while True:
                done, _ = await asyncio.wait({applying}, timeout=ACK_WAIT_SECONDS / 3)
                if done:
                    break
                await msg.in_progress()
            applying.result()
        except Exception as e:
            tries = msg.metadata.num_delivered or 1
            delay = min(self.max_backoff, 0.1 * 2 ** (tries - 1))
            log.warning(
                "event %s (%s) not applied (%s); again in %.1fs", ev.event_id, ev.event_type, e, delay
            )
            await msg.nak(delay=delay)
            return
        c.applied += 1
        await msg.ack()

    async def _close(self) -> None:
        for c in self._consumers:
            if c.task is None:
                continue
            # not cancelled: a pull cancelled mid-way could leave a fetched event unacknowledged, and with a
            # window of one that holds every copy's consumer for the ack wait; the pull ends within 0.5 s
            try:
                await asyncio.wait_for(c.task, timeout=self.timeout)
            except (TimeoutError, asyncio.CancelledError):
                pass
            c.task = None
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        # what nats-py leaves running (its reader, flusher and ping tasks) ends before the loop does
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    # -- what the relay and the tests ask -------------------------------------------------------------------

    async def _publish(self, target: JetStreamTarget, events: Sequence[events_pb2.Event]) -> None:
        assert self._js is not None
        for ev in events:
            ack = await self._js.publish(
                subject_of(self.prefix, ev),
                ev.SerializeToString(),
                timeout=self.timeout,
                stream=self.stream,
                headers={"Nats-Msg-Id": ev.event_id},
            )
            target.published += 1
            if ack.duplicate:
                target.duplicates += 1

    async def _downstream_pending(self) -> int:
        assert self._js is not None
        infos = await self._js.consumers_info(self.stream)
        return sum((i.num_pending or 0) + (i.num_ack_pending or 0) for i in infos)

    async def _delete_stream(self) -> None:
        assert self._js is not None
        try:
            await self._js.delete_stream(self.stream)
        except nats.js.errors.NotFoundError:
            pass

    def delete_stream(self) -> None:
        """Remove the stream and its consumers (tests)."""
        self.call(self._delete_stream())


@dataclass
class JetStreamTarget:
    """The relay's target when events go over NATS: the stream (cursor `nats:<stream>`)."""

    bus: NatsBus
    #: events the stream acknowledged from this relay, and how many of those it had already (duplicates)
    published: int = 0
    duplicates: int = 0

    @property
    def name(self) -> str:
        return cursor_name(self.bus.stream)

    def send(self, events: Sequence[events_pb2.Event]) -> None:
        try:
            self.bus.call(self.bus._publish(self, events), timeout=self.bus.timeout * (len(events) + 1))
        except DeliveryFailed:
            raise
        except Exception as e:
            raise DeliveryFailed(f"NATS: {type(e).__name__}: {e}") from e

    def downstream_pending(self) -> int:
        """Events in the stream that a consumer has not acknowledged yet (every durable of the stream)."""
        try:
            return self.bus.call(self.bus._downstream_pending())
        except Exception as e:
            log.warning("NATS consumer state unknown (%s)", e)
            return 1
