"""Prometheus metrics of one service (see shared/telemetry/__init__ for every name and its meaning).

Each `ServiceApp` has its own `ServiceMetrics` and registry (several services share a process in tests and
in `make run`), served on `metrics_addr`. Code below the app finds its service's metrics through its
`Database` (`metrics_of(db)`); without one (a unit test's bare database) recording does nothing."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from shared.db import Database

log = logging.getLogger("tenure.metrics")
# no `<counter>_created` series beside each counter and histogram: the process start time says as much
disable_created_metrics()  # type: ignore[no-untyped-call]

#: RPC latency buckets, seconds: most calls take a few milliseconds, an order with its charge tens
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: sweep pass buckets, seconds: an idle pass is milliseconds, a renewal day of a large tenant minutes
SWEEP_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class OutboxCollector(Collector):
    """The outbox backlog of each relay target and the age of its oldest row, read at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[Metric]:
        from sqlalchemy import func, select

        backlog = GaugeMetricFamily(
            "tenure_outbox_backlog",
            "Outbox rows not yet acknowledged by the relay target",
            labels=["subscriber"],
        )
        age = GaugeMetricFamily(
            "tenure_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet acknowledged by the relay target (0: none waits)",
            labels=["subscriber"],
        )
        tables = self.db.tables
        if "outbox" in tables and "outbox_cursor" in tables:
            ob, cur = tables["outbox"], tables["outbox_cursor"]
            try:
                now = self.db.clock.now()
                with self.db.read() as s:
                    for name, last in s.execute(select(cur.c.subscriber, cur.c.last_id)).all():
                        rows, oldest = s.execute(
                            select(func.count(), func.min(ob.c.occurred_time)).where(ob.c.seq > last)
                        ).one()
                        backlog.add_metric([name], float(rows))
                        age.add_metric([name], _age(now, oldest))
            except Exception as exc:  # a scrape must not fail because the database is away for a moment
                log.warning("outbox metrics not read: %s", exc)
        yield backlog
        yield age


def _age(now: datetime, oldest: datetime | None) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


class ServiceMetrics:
    """The metrics of one service, in a registry of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.rpc_requests = Counter(
            "tenure_rpc_requests",
            "RPCs answered, by proto service, method and gRPC status code",
            ["service", "method", "code"],
            registry=r,
        )
        self.rpc_duration = Histogram(
            "tenure_rpc_duration_seconds",
            "Time to answer an RPC",
            ["service", "method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.sweep_duration = Histogram(
            "tenure_sweep_duration_seconds",
            "Time of one sweep pass",
            ["sweep"],
            buckets=SWEEP_BUCKETS,
            registry=r,
        )
        self.sweep_rows = Counter(
            "tenure_sweep_rows", "What sweep passes did, by stage", ["sweep", "stage"], registry=r
        )
        self.emails = Counter(
            "tenure_emails",
            "E-mail delivery attempts by result (sent, retried, failed)",
            ["result"],
            registry=r,
        )
        self.payment_attempts = Counter(
            "tenure_payment_attempts",
            "Charges asked of the payment gateway by result (succeeded, declined, error)",
            ["result"],
            registry=r,
        )
        for result in ("sent", "retried", "failed"):  # every result shows, 0 until it happens
            self.emails.labels(result)
        for result in ("succeeded", "declined", "error"):
            self.payment_attempts.labels(result)
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def watch_outbox(self, db: Database) -> None:
        """Report `db`'s outbox at each scrape, and let code holding `db` find these metrics."""
        self.registry.register(OutboxCollector(db))
        _BY_DB[db] = self

    def serve(self, addr: str) -> int:
        """Serve `/metrics` on `addr` (host:port, port 0 picks a free one); returns the port, 0 when off.

        A port that cannot be bound is logged and the service runs on without its metrics endpoint: the
        gRPC port, bound exclusively, already tells a second copy of the service on one machine to stop."""
        if not addr:
            return 0
        host, _, port = addr.rpartition(":")
        try:
            self._http, self._thread = start_http_server(
                int(port), addr=host.strip("[]") or "0.0.0.0", registry=self.registry
            )
        except OSError as exc:
            log.warning("%s metrics not served on %s: %s", self.service, addr, exc)
            return 0
        self.port = int(self._http.server_port)
        return self.port

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


_BY_DB: weakref.WeakKeyDictionary[Database, ServiceMetrics] = weakref.WeakKeyDictionary()


def metrics_of(db: Database) -> ServiceMetrics | None:
    return _BY_DB.get(db)


def record_sweep(db: Database, sweep: str, seconds: float, rows: Mapping[str, int]) -> None:
    """One pass of `sweep` took `seconds` and did `rows` (stage → count)."""
    m = metrics_of(db)
    if m is None:
        return
    m.sweep_duration.labels(sweep).observe(seconds)
    for stage, n in rows.items():
        if isinstance(n, int) and n:
            m.sweep_rows.labels(sweep, stage).inc(n)


def record_payment(metrics: ServiceMetrics | None, result: str) -> None:
    if metrics is not None:
        metrics.payment_attempts.labels(result).inc()


def record_emails(db: Database, *, sent: int, retried: int, failed: int) -> None:
    m = metrics_of(db)
    if m is None:
        return
    for result, n in (("sent", sent), ("retried", retried), ("failed", failed)):
        if n:
            m.emails.labels(result).inc(n)
