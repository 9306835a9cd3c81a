"""The event pipe: outbox relay (producer side) and inbox sink (consumer side).

The producer writes events into its `outbox` in the same transaction as the
change (`UnitOfWork.publish`). A `Relay` thread hands them to each of its targets in
commit order (the outbox `seq`), one target at a time, and moves that target's cursor
only after an acknowledgement. The targets are either every subscriber's
`EventSinkService.Deliver` (the direct gRPC push, the embedded default) or one
JetStream stream (shared.nats_bus, when TENURE_NATS_URL is set). A target that is down
is retried with exponential back-off; nothing is skipped, so order per subscription
holds and nothing is lost.

The consumer's `EventSink` records each event id in its `inbox` in the same
transaction as the handler's changes; a repeat is acknowledged as a duplicate
and changes nothing. Over gRPC the sink is called by `Deliver`; over NATS by the
service's durable JetStream consumer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.db import Database, UnitOfWork
from shared.errors import InvalidInput
from shared.grpc.clients import RECONNECT
from shared.grpc.tls import channel as tls_channel
from shared.settings import TlsSettings
from shared.telemetry.tracing import consuming

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlmodel import Session

    from tenure.events.v1 import events_pb2, events_pb2_grpc

log = logging.getLogger("tenure.outbox")

EventHandler = Callable[[UnitOfWork, object], None]

OUTBOX_COLUMNS = ("seq", "event_id", "payload", "batch")


def events_of(row: Row[Any]) -> list[events_pb2.Event]:
    """The events of one outbox row (columns `OUTBOX_COLUMNS`), in order, each carrying the row's sequence.

    A row without a batch is the one event in its payload. A batch row (written by a set-based statement)
    stands for one event per element of its JSON array: the payload (what the events share) merged with the
    element (proto3 JSON: the account, the subscription and the rest of the payload). Each gets an event id
    derived from the row's and its place in the batch, so a redelivered batch carries the same ids and
    consumers' inboxes drop the repeats."""
    from google.protobuf import json_format

    from tenure.events.v1 import events_pb2

    shared = events_pb2.Event.FromString(row.payload)
    shared.sequence = row.seq or 0
    if row.batch is None:
        return [shared]
    base = uuid.UUID(row.event_id)
    events: list[events_pb2.Event] = []
    for i, item in enumerate(json.loads(row.batch)):
        ev = events_pb2.Event()
        ev.CopyFrom(shared)
        json_format.ParseDict(item, ev)
        ev.event_id = str(uuid.uuid5(base, str(i)))
        events.append(ev)
    return events


class DeliveryFailed(Exception):
    """A target did not take an event (down, refused it, timed out); the relay retries from that event."""


class Target(Protocol):
    """Where a relay delivers one outbox."""

    @property
    def name(self) -> str:
        """The key of its cursor in `outbox_cursor`."""
        ...

    def send(self, events: Sequence[events_pb2.Event]) -> None:
        """Hand over `events` in order; return once every one is acknowledged, raise DeliveryFailed otherwise.
        Events handed over before a failure may be handed over again (consumers' inboxes drop repeats)."""
        ...

    def downstream_pending(self) -> int:
        """Events handed over but not yet applied by their consumers (0 when acknowledgement means applied)."""
        ...


#: events per DeliverBatch call (the request limit of `events`, shared/grpc/limits.py)
MAX_BATCH = 500


@dataclass
class GrpcTarget:
    """The direct push to one subscriber's EventSinkService, which acknowledges after its inbox commit:
    several events go in `DeliverBatch` calls of at most `MAX_BATCH` (one transaction each on the
    consumer), one event in `Deliver`. A subscriber without DeliverBatch (UNIMPLEMENTED: an older copy
    during a rolling update, or a stand-in) gets every event through Deliver from then on."""

    name: str
    stub: Any  # events_pb2_grpc.EventSinkServiceStub, or a stand-in with its Deliver
    timeout: float = 10.0
    credentials: Callable[[], list[tuple[str, str]]] | None = None
    batches: bool = True

    def send(self, events: Sequence[events_pb2.Event]) -> None:
        from tenure.events.v1 import events_pb2

        metadata = tuple(self.credentials()) if self.credentials else None
        try:
            if self.batches and len(events) > 1 and hasattr(self.stub, "DeliverBatch"):
                try:
                    for i in range(0, len(events), MAX_BATCH):
                        self.stub.DeliverBatch(
                            events_pb2.DeliverBatchRequest(events=events[i : i + MAX_BATCH]),
                            timeout=self.timeout,
                            metadata=metadata,
                        )
                    return
                except grpc.RpcError as err:
                    if not (hasattr(err, "code") and err.code() == grpc.StatusCode.UNIMPLEMENTED):
                        raise
                    self.batches = False
            for ev in events:
                self.stub.Deliver(
                    events_pb2.DeliverRequest(event=ev), timeout=self.timeout, metadata=metadata
                )
        except grpc.RpcError as err:
            detail = f"{err.code().name}: {err.details()}" if hasattr(err, "code") else str(err)
            raise DeliveryFailed(detail) from err

    def downstream_pending(self) -> int:
        return 0


@dataclass
class _Subscriber:
    target: Target
    backoff: float = 0.0
    next_attempt: float = 0.0
    failures: int = 0
    last_error: str = ""

    @property
    def addr(self) -> str:
        return self.target.name


@dataclass
class Relay:
    """Delivers the outbox to its targets: each subscriber's EventSinkService (the direct gRPC push, built
    from `subscriber_addrs`) and/or the `targets` given (the JetStream stream, see shared.nats_bus).

    Replicas: every copy of a service runs a relay on the same database. On PostgreSQL a pass over one
    target first locks that target's `outbox_cursor` row (`FOR UPDATE SKIP LOCKED`) and holds it until the
    cursor has moved: a copy that finds the row locked leaves that target to the copy holding it, so no
    two copies hand over the same rows and each target still sees the rows in `seq` order. (SQLite is one
    process's database: a lock in the process keeps its own threads, the relay's and a drain's, apart.)"""

    db: Database
    subscriber_addrs: list[str]
    interval: float = 0.5
    max_backoff: float = 30.0
    #: outbox rows read per pass and target: one DeliverBatch's worth when each row is one event
    batch_size: int = MAX_BATCH
    timeout: float = 10.0
    #: metadata of each delivery (the service's own token); a callable so the token can be renewed
    credentials: Callable[[], list[tuple[str, str]]] | None = None
    tls: TlsSettings | None = None
    #: further targets beside the subscribers' (the JetStream stream)
    targets: list[Target] = field(default_factory=list)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _subs: list[_Subscriber] = field(default_factory=list)
    _pass: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        from tenure.events.v1 import events_pb2_grpc

        # A plain channel: the relay does its own back-off, and one refused call must not hold the pass.
        self._subs = [
            _Subscriber(
                GrpcTarget(
                    a,
                    events_pb2_grpc.EventSinkServiceStub(tls_channel(a, self.tls, options=RECONNECT)),
                    timeout=self.timeout,
                    credentials=self.credentials,
                )
            )
            for a in self.subscriber_addrs
        ]
        self._subs += [_Subscriber(t) for t in self.targets]
        self.db.on_commit(self._wake.set)

    def start(self) -> None:
        if not self._subs or self._thread:
            return
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.db.source}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_once()
            except Exception:  # pragma: no cover - keeps the relay alive across DB hiccups
                log.exception("relay pass failed")
            waits = [
                s.next_attempt - time.monotonic() for s in self._subs if s.next_attempt > time.monotonic()
            ]
            timeout = min([self.interval, *waits]) if waits else self.interval
            self._wake.wait(timeout=max(timeout, 0.01))
            self._wake.clear()

    def deliver_once(self) -> int:
        """One pass over every target, the targets in parallel (each has its own cursor, and a slow or
        down one does not hold the others up); returns the number of events acknowledged."""
        with self._pass:
            due = [sub for sub in self._subs if sub.next_attempt <= time.monotonic()]
            if len(due) <= 1:
                return sum(self._deliver_to(sub) for sub in due)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self._subs), thread_name_prefix=f"relay-{self.db.source}")
            return sum(self._pool.map(self._deliver_to, due))

    def _cursor(self, addr: str) -> int:
        t = self.db.tables["outbox_cursor"]
        with self.db.read() as s:
            row = s.execute(select(t.c.last_id).where(t.c.subscriber == addr)).first()
        if row is not None:
            return int(row.last_id)
        try:
            with self.db.unit_of_work() as uow:
                uow.session.execute(insert(t).values(subscriber=addr, last_id=0, attempts=0, last_error=""))
        except IntegrityError:
            pass
        return 0

    def _deliver_to(self, sub: _Subscriber) -> int:
        cur = self.db.tables["outbox_cursor"]
        last = self._cursor(sub.addr)
        if not self.db.is_postgres:
            rows = self._rows_after(self.db, last)
            done, acked = self._send(sub, rows, last)
            if acked != last or sub.failures:
                with self.db.unit_of_work() as uow:
                    self._move(uow, sub, acked)
            return done
        with self.db.unit_of_work() as uow:
            claimed = uow.session.execute(
                select(cur.c.last_id).where(cur.c.subscriber == sub.addr).with_for_update(skip_locked=True)
            ).first()
            if claimed is None:
                return 0  # another copy of the service is delivering to this target now
            last = int(claimed.last_id)
            rows = self._rows_after(uow.session, last)
            done, acked = self._send(sub, rows, last)
            if acked != last or sub.failures:
                self._move(uow, sub, acked)
        return done

    def _rows_after(self, source: Database | Session, last: int) -> list[Row[Any]]:
        ob = self.db.tables["outbox"]
        stmt = (
            select(*(ob.c[c] for c in OUTBOX_COLUMNS))
            .where(ob.c.seq > last)
            .order_by(ob.c.seq)
            .limit(self.batch_size)
        )
        if isinstance(source, Database):
            with source.read() as s:
                return list(s.execute(stmt).all())
        return list(source.execute(stmt).all())

    def _send(self, sub: _Subscriber, rows: list[Row[Any]], last: int) -> tuple[int, int]:
        """Hand `rows` over in order; returns the events acknowledged and the seq of the last whole row.

        The rows go in runs of up to `MAX_BATCH` events, each in one hand-over (one DeliverBatch: one
        transaction on the consumer). A run that fails is handed over again row by row, so the rows
        before the one that fails are still acknowledged and the error names that row's event."""
        done = 0
        acked = last
        try:
            for run in _runs(rows):
                events = [ev for _, evs in run for ev in evs]
                try:
                    sub.target.send(events)
                except DeliveryFailed:
                    if len(run) == 1:
                        raise
                    for row, evs in run:
                        # a batch row is acknowledged whole: after a failure part-way it is sent again
                        # from its first event, and the consumers' inboxes drop the ones they had
                        sub.target.send(evs)
                        done += len(evs)
                        acked = row.seq
                    continue
                done += len(events)
                acked = run[-1][0].seq
            sub.backoff, sub.failures, sub.next_attempt = 0.0, 0, 0.0
        except DeliveryFailed as err:
            sub.failures += 1
            sub.backoff = min(self.max_backoff, max(0.1, sub.backoff * 2 or 0.1))
            sub.next_attempt = time.monotonic() + sub.backoff
            sub.last_error = str(err)
            log.warning("delivery to %s failed (%s); retry in %.1fs", sub.addr, sub.last_error, sub.backoff)
        return done, acked

    def _move(self, uow: UnitOfWork, sub: _Subscriber, acked: int) -> None:
        cur = self.db.tables["outbox_cursor"]
        uow.session.execute(
            update(cur)
            .where(cur.c.subscriber == sub.addr, cur.c.last_id <= acked)
            .values(last_id=acked, attempts=sub.failures, last_error=sub.last_error)
        )

    def pending(self) -> int:
        """Events not yet acknowledged by the slowest target (outbox rows not handed over, and what a
        target reports handed over but not yet applied by its consumers)."""
        if not self._subs:
            return 0
        ob = self.db.tables["outbox"]
        with self.db.read() as s:
            max_id = s.execute(select(func.coalesce(func.max(ob.c.seq), 0))).scalar_one()
        return max(
            int(max_id) - self._cursor(sub.addr) + sub.target.downstream_pending() for sub in self._subs
        )

    def drain(self, timeout: float = 30.0) -> bool:
        """Deliver until nothing is pending (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for sub in self._subs:
                sub.next_attempt = 0.0
            self.deliver_once()
            if self.pending() == 0:
                return True
            time.sleep(0.05)
        return False


def _runs(rows: list[Row[Any]]) -> Iterator[list[tuple[Row[Any], list[events_pb2.Event]]]]:
    """`rows` with their events, in runs of at most `MAX_BATCH` events (a larger batch row alone)."""
    run: list[tuple[Row[Any], list[events_pb2.Event]]] = []
    size = 0
    for row in rows:
        events = events_of(row)
        if run and size + len(events) > MAX_BATCH:
            yield run
            run, size = [], 0
        run.append((row, events))
        size += len(events)
    if run:
        yield run


class EventSink:
    """The servicer of tenure.events.v1.EventSinkService for one consumer."""

    def __init__(self, db: Database, handlers: dict[str, EventHandler]) -> None:
        self.db = db
        self.handlers = handlers

    def servicer(self) -> events_pb2_grpc.EventSinkServiceServicer:
        from tenure.events.v1 import events_pb2, events_pb2_grpc

        sink = self

        class Servicer(events_pb2_grpc.EventSinkServiceServicer):
            def Deliver(
                self, request: events_pb2.DeliverRequest, context: grpc.ServicerContext
            ) -> events_pb2.DeliverResponse:
                return events_pb2.DeliverResponse(duplicate=sink.apply(request.event))

            def DeliverBatch(
                self, request: events_pb2.DeliverBatchRequest, context: grpc.ServicerContext
            ) -> events_pb2.DeliverBatchResponse:
                duplicates = sink.apply_batch(request.events)
                return events_pb2.DeliverBatchResponse(
                    applied=len(request.events) - duplicates, duplicates=duplicates
                )

        return Servicer()

    def apply(self, ev: events_pb2.Event) -> bool:
        """Apply one event exactly once; returns True when it was a repeat."""
        return self._apply([ev], lambda i: "event") == 1

    def apply_batch(self, events: Sequence[events_pb2.Event]) -> int:
        """Apply `events` in order in one transaction; returns how many were repeats. All or none: an
        error rolls every one back."""
        return self._apply(events, lambda i: f"events[{i}]")

    def _apply(self, events: Sequence[events_pb2.Event], path: Callable[[int], str]) -> int:
        """One inbox read for all of `events`, then each new one's inbox record and handler, each in the
        trace of the call that published it with its request id. Two copies applying the same event at
        once: the one that loses on the inbox key tries again and finds it a repeat."""
        for i, ev in enumerate(events):
            missing = [f for f in ("event_id", "event_type") if not getattr(ev, f)]
            if missing:
                raise InvalidInput(
                    "an event needs an event_id and an event_type",
                    field_violations=[(f"{path(i)}.{f}", f"{f} is required") for f in missing],
                    reason="EVENT_INCOMPLETE",
                )
        if len(events) == 1:  # the whole transaction, its commit included, is the event's span
            with consuming(events[0], self.db.source):
                return self._transaction(events, nullcontext)
        return self._transaction(events, lambda ev: consuming(ev, self.db.source))

    def _transaction(
        self,
        events: Sequence[events_pb2.Event],
        span: Callable[[events_pb2.Event], AbstractContextManager[Any]],
    ) -> int:
        """`events` in one transaction: the inbox records of the new ones in one statement, then each new
        one's handler inside `span(event)`, in order."""
        inbox = self.db.tables["inbox"]
        for attempt in range(3):
            try:
                with self.db.unit_of_work() as uow:
                    seen = set(
                        uow.session.execute(
                            select(inbox.c.event_id).where(
                                inbox.c.event_id.in_({ev.event_id for ev in events})
                            )
                        ).scalars()
                    )
                    new: list[events_pb2.Event] = []
                    for ev in events:
                        if ev.event_id not in seen:
                            seen.add(ev.event_id)
                            new.append(ev)
                    if new:
                        uow.session.execute(
                            insert(inbox),
                            [
                                {
                                    "event_id": ev.event_id,
                                    "event_type": ev.event_type,
                                    "source": ev.source,
                                    "received_time": uow.now,
                                }
                                for ev in new
                            ],
                        )
                    for ev in new:
                        handler = self.handlers.get(ev.event_type)
                        if handler is not None:
                            with span(ev):
                                handler(uow, ev)
                return len(events) - len(new)
            except IntegrityError:
                if attempt == 2:
                    raise
        return len(events)  # pragma: no cover - the loop returns or raises
