"""The running service: database, gRPC server, outbox relay and background loops, started and
stopped together. Each service's `app.py` builds one with `ServiceApp.create` and registers its
servicers; `run` serves one or several of them until SIGTERM/SIGINT."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from sqlalchemy import MetaData

from shared.clock import Clock, TestClock, make_clock
from shared.db import Database, UnitOfWork
from shared.grpc.auth import CLOCK_PERMISSIONS, Auth, Permissions, event_sink_permissions
from shared.grpc.clients import ServiceClient
from shared.grpc.clock_service import Settle
from shared.grpc.server import GrpcServer, fill_unimplemented
from shared.nats_bus import NatsBus
from shared.outbox import EventHandler, EventSink, Relay
from shared.settings import ClockSettings, EventBusSettings, ServiceSettings, TelemetrySettings, subscribers
from shared.telemetry import logs, tracing
from shared.telemetry.metrics import ServiceMetrics

log = logging.getLogger("tenure.app")


class Periodic:
    """Runs `fn` every `interval` seconds in a daemon thread (interval 0 turns it off)."""

    def __init__(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        self.name, self.interval, self.fn = name, interval, fn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except Exception:
                log.exception("%s failed; it runs again in %ss", self.name, self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


@dataclass
class ServiceApp:
    name: str
    settings: ServiceSettings
    clock: Clock
    db: Database
    server: GrpcServer
    relay: Relay
    auth: Auth
    loops: list[Periodic] = field(default_factory=list)
    clients: list[ServiceClient] = field(default_factory=list)
    port: int = 0
    #: the service's own time-driven work, run by ClockService.DrainOutbox (see shared/grpc/clock_service)
    settle: Settle | None = None
    #: the NATS connection when events go over JetStream (TENURE_NATS_URL); None: the direct gRPC push
    bus: NatsBus | None = None
    #: the service's Prometheus metrics (its own registry), served on `settings.metrics_addr`
    metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics(""))

    @classmethod
    def create(
        cls,
        name: str,
        settings: ServiceSettings,
        clock: Clock,
        metadata: MetaData,
        auth: Auth | None = None,
        uow_class: type[UnitOfWork] | None = None,
        events: EventBusSettings | None = None,
    ) -> ServiceApp:
        """`auth` defaults to the process's settings (TENURE_AUTH_*, TENURE_TLS_*): the embedded default
        makes a signing key under ./var/auth on first start."""
        auth = auth or Auth.from_settings()
        db = Database(settings.database_url, metadata, clock, source=name, uow_class=uow_class)
        metrics = ServiceMetrics(name)
        metrics.watch_outbox(db)
        server = GrpcServer(
            name, settings.addr, settings.workers, auth=auth, reuse_port=settings.reuse_port, metrics=metrics
        )
        events = events or EventBusSettings()
        bus = None
        if events.url:  # events over JetStream instead of the direct push to event_subscribers
            bus = NatsBus(
                name,
                events,
                timeout=settings.client_timeout_seconds,
                max_backoff=settings.relay_max_backoff_seconds,
            )
        relay = Relay(
            db,
            [] if bus else subscribers(getattr(settings, "event_subscribers", "")),
            interval=settings.relay_interval_seconds,
            max_backoff=settings.relay_max_backoff_seconds,
            timeout=settings.client_timeout_seconds,
            credentials=auth.credentials(name),
            tls=auth.tls,
            targets=[bus.target()] if bus else [],
        )
        app = cls(
            name=name, settings=settings, clock=clock, db=db, server=server, relay=relay, auth=auth, bus=bus
        )
        app.metrics = metrics
        app._add_clock_service()
        return app

    def _add_clock_service(self) -> None:
        from shared.grpc.clock_service import ClockServicer
        from tenure.common.v1 import clock_pb2, clock_pb2_grpc

        self.server.add(
            clock_pb2_grpc.add_ClockServiceServicer_to_server,
            ClockServicer(
                self.clock, self.relay, lambda budget: self.settle(budget) if self.settle else (None, 0)
            ),
            clock_pb2.DESCRIPTOR.services_by_name["ClockService"].full_name,
            CLOCK_PERMISSIONS,
        )

    def add_servicer(
        self,
        add_fn: Callable[[Any, grpc.Server], None],
        servicer: object,
        service_descriptor: ServiceDescriptor,
        base_cls: type,
        permissions: Permissions,
    ) -> None:
        """Serve `servicer`; every call is checked against `permissions` (the service's table) first."""
        fill_unimplemented(servicer, service_descriptor, base_cls)
        self.server.add(add_fn, servicer, service_descriptor.full_name, permissions)

    def add_event_sink(self, handlers: dict[str, EventHandler]) -> EventSink:
        from tenure.events.v1 import events_pb2, events_pb2_grpc

        sink = EventSink(self.db, handlers)
        self.server.add(
            events_pb2_grpc.add_EventSinkServiceServicer_to_server,
            sink.servicer(),
            events_pb2.DESCRIPTOR.services_by_name["EventSinkService"].full_name,
            event_sink_permissions(),
        )
        if self.bus:  # a table that answers more types than its keys (a `get` of its own) reads every type
            self.bus.consume(sink, list(handlers) if type(handlers) is dict else None)
        return sink

    def client(self, stub_cls: type, addr: str) -> ServiceClient:
        c = ServiceClient(
            stub_cls,
            addr,
            timeout=self.settings.client_timeout_seconds,
            credentials=self.relay.credentials,  # one service token, shared with the relay
            tls=self.auth.tls,
        )
        self.clients.append(c)
        return c

    def every(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        self.loops.append(Periodic(f"{self.name}-{name}", interval, fn))

    def migrate(self) -> None:
        from shared.migrations import upgrade

        upgrade(self.db, self.name)

    def start(self) -> int:
        tracing.setup(TelemetrySettings(), self.name)  # the process's first service sets it up
        self.migrate()
        if isinstance(self.clock, TestClock):
            # the test clock resumes where it was stored (a restart mid-way keeps up with the other services)
            self.clock.resume(self.db.stored_clock())
            self.clock.listen(self.db.store_clock)
        if self.bus:  # first: a NATS that cannot be reached stops the start before the port is taken
            self.bus.start()
        self.port = self.server.start()
        metrics_port = self.metrics.serve(self.settings.metrics_addr)
        self.relay.start()
        for loop in self.loops:
            loop.start()
        log.info(
            "%s serving on port %s (%s)%s",
            self.name,
            self.port,
            self.db.dialect,
            f", metrics on port {metrics_port}" if metrics_port else "",
        )
        return self.port

    def stop(self, grace: float | None = None) -> None:
        for loop in self.loops:
            loop.stop()
        self.server.stop(self.settings.grace_seconds if grace is None else grace)
        self.relay.stop()
        if self.bus:
            self.bus.stop()
        for c in self.clients:
            c.close()
        self.metrics.stop()
        self.db.dispose()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """The process's logging: `fmt` `json` (one JSON object per line, the default) or `text`; see
    shared/telemetry/logs."""
    logs.configure(level, fmt)


def clock_from_env() -> Clock:
    cs = ClockSettings()
    return make_clock(cs.clock, cs.clock_start)


def settle_heap() -> None:
    """Collect once and freeze what start-up made (modules, settings, catalogs): the collector never scans
    those objects again, so the first requests after start-up do not pay a full collection of every
    imported module (about 40 ms on the first invoice PDF)."""
    gc.collect()
    gc.freeze()


def run(apps: list[ServiceApp]) -> None:
    """Start the apps and serve until SIGTERM or SIGINT, then stop gracefully."""
    stop = threading.Event()
    # one tracer provider per process, named after its service (`tenure` when it runs several)
    tracing.setup(TelemetrySettings(), apps[0].name if len(apps) == 1 else "tenure")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started: list[ServiceApp] = []
    try:
        for app in apps:
            app.start()
            started.append(app)
        settle_heap()
        stop.wait()
    finally:
        log.info("stopping %s", ", ".join(a.name for a in started))
        for app in reversed(started):
            app.stop()
