"""What every benchmark shares: the table of results printed at the end of `make bench`, timing helpers,
the four services as processes (as `make run` starts them) and the replay baseline (the SQL statements of
one call, recorded with an engine listener and replayed through SQLAlchemy Core).

Each benchmark is a function taking its sizes, returning a `Result` (and recording it in `RESULTS`), so
`make bench` runs it at full size and tests/service/test_bench_smoke.py at a tiny one."""

from __future__ import annotations

import gc
import itertools
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from shared.app import settle_heap

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("subscription", "billing", "entitlement", "notification")
#: BENCH_SCALE multiplies the big sizes (1 = what `make bench` runs in under 15 minutes)
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


@dataclass
class Result:
    """One row of the table: `figure` against `baseline` (both in their units), their ratio (figure /
    baseline, or baseline-relative as the goal states it) and whether the goal is met."""

    row: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_unit: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""
    runs: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


RESULTS: list[Result] = []


def record(result: Result) -> Result:
    RESULTS.append(result)
    return result


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}"
    return f"{s} {unit}".strip()


def table(results: list[Result] | None = None) -> str:
    rows = [("row", "figure", "baseline (same run)", "ratio", "goal", "met", "notes")]
    for r in results if results is not None else RESULTS:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        rows.append(
            (
                r.row,
                _num(r.figure, r.unit),
                _num(r.baseline, r.baseline_unit),
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                r.goal,
                met,
                r.note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + " | " + row[-1])
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 5)
    return "\n".join(lines)


@contextmanager
def started() -> Iterator[None]:
    """Services started in this process, measured as `run()` leaves a service once it is up: the heap
    start-up made frozen (shared.app.settle_heap), so the collector does not rescan the whole test
    process's modules during the measurement; unfrozen afterwards for the benchmarks that follow."""
    settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()


# --- the four services as processes -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(addr: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(addr) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                r = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"{addr} did not become SERVING")
            time.sleep(0.1)


@contextmanager
def process_stack(database_urls: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """The four services as `python -m services.<name>` processes wired as `make run` wires them (SQLite
    databases in a temporary folder unless `database_urls` names others); yields their addresses."""
    tmp = Path(tempfile.mkdtemp(prefix="tenure-bench-"))
    addr = {n: f"127.0.0.1:{free_port()}" for n in NAMES}
    env = dict(os.environ, TENURE_CLOCK="test", TENURE_CLOCK_START="2024-06-10T08:00:00Z")
    for n in NAMES:
        p = f"TENURE_{n.upper()}_"
        env[p + "ADDR"] = addr[n]
        env[p + "DATABASE_URL"] = (database_urls or {}).get(n) or f"sqlite:///{tmp / (n + '.db')}"
        env[p + "BILLING_ADDR"] = addr["billing"]
        env[p + "ENTITLEMENT_ADDR"] = addr["entitlement"]
        env[p + "NOTIFICATION_ADDR"] = addr["notification"]
    env["TENURE_SUBSCRIPTION_EVENT_SUBSCRIBERS"] = f"{addr['entitlement']},{addr['notification']}"
    env["TENURE_BILLING_EVENT_SUBSCRIBERS"] = (
        f"{addr['subscription']},{addr['entitlement']},{addr['notification']}"
    )
    env["TENURE_ENTITLEMENT_EVENT_SUBSCRIBERS"] = (
        f"{addr['subscription']},{addr['billing']},{addr['notification']}"
    )
    env["TENURE_NOTIFICATION_MAIL_DIR"] = str(tmp / "mail")
    procs: dict[str, subprocess.Popen] = {}
    logs = {}
    try:
        for n in NAMES:
            logs[n] = open(tmp / f"{n}.log", "w")  # noqa: SIM115 - closed below
            procs[n] = subprocess.Popen(
                [sys.executable, "-m", f"services.{n}"],
                cwd=ROOT,
                env=env,
                stdout=logs[n],
                stderr=subprocess.STDOUT,
            )
        for n in NAMES:
            try:
                wait_serving(addr[n], proc=procs[n])
            except RuntimeError as e:
                raise RuntimeError(f"{e}:\n{(tmp / f'{n}.log').read_text()[-3000:]}") from None
        yield addr
    finally:
        for p in procs.values():
            p.terminate()
        for n, p in procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
            logs[n].close()


# --- the replay baseline --------------------------------------------------------------------------


@dataclass
class Statement:
    db: str
    sql: str
    params: Any
    many: bool


class Recorder:
    """Records every statement the given engines execute (and each commit/rollback), in order."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        self.engines = engines
        self.statements: list[Statement] = []
        self._hooks: list[tuple[Engine, str, Callable[..., None]]] = []

    def __enter__(self) -> Recorder:
        for name, engine in self.engines.items():

            def execute(conn, cursor, statement, parameters, context, executemany, name=name):  # noqa: ANN001
                self.statements.append(Statement(name, statement, parameters, executemany))

            def commit(conn, name=name):  # noqa: ANN001
                self.statements.append(Statement(name, "COMMIT", (), False))

            def rollback(conn, name=name):  # noqa: ANN001
                self.statements.append(Statement(name, "ROLLBACK", (), False))

            for ev, fn in (("before_cursor_execute", execute), ("commit", commit), ("rollback", rollback)):
                event.listen(engine, ev, fn)
                self._hooks.append((engine, ev, fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for engine, ev, fn in self._hooks:
            event.remove(engine, ev, fn)


#: a date, a timestamp or an amount: a value the call computed, not a key it made up
_DATE_OR_NUMBER = re.compile(r"^(\d{4}-\d{2}-\d{2}|-?\d+(\.\d+)?$)")
_REPLAYS = itertools.count()


def _fresh(value: Any, new: dict[str, str], i: int) -> Any:
    if isinstance(value, str):
        for old, repl in new.items():
            if old in value:
                value = value.replace(old, repl)
        return value
    if isinstance(value, tuple):
        return tuple(_fresh(v, new, i) for v in value)
    if isinstance(value, list):
        return [_fresh(v, new, i) for v in value]
    if isinstance(value, dict):
        return {k: _fresh(v, new, i) for k, v in value.items()}
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def new_keys(statements: list[Statement], known: tuple[str, ...]) -> list[str]:
    """The strings a call made up (first seen as an INSERT's value: ids, numbers, event ids), and the
    `known` ones (its request id): a replay replaces them so that it inserts new rows as the call did."""
    seen: set[str] = set()
    fresh: list[str] = list(known)
    for st in statements:
        inserting = st.sql.lstrip().upper().startswith("INSERT")
        for s in _strings(st.params):
            if s in seen:
                continue
            seen.add(s)
            idlike = (
                8 <= len(s) <= 64
                and not any(ch in s for ch in ' {["')
                and any(ch.isdigit() for ch in s)
                and not _DATE_OR_NUMBER.match(s)
            )
            if inserting and idlike and s not in fresh:
                fresh.append(s)
    return sorted(fresh, key=len, reverse=True)  # longest first: a key may contain another


def _replay_engine(url: str) -> Engine:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):  # noqa: ANN001 - the services' own SQLite settings
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for p in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL", "foreign_keys=ON"):
                cur.execute(f"PRAGMA {p}")
            cur.close()

    return engine


def replay_rate(urls: dict[str, str], statements: list[Statement], keys: list[str], n: int) -> float:
    """Replays `statements` `n` times through SQLAlchemy Core (`exec_driver_sql`, one connection per
    database, each transaction as recorded), the made-up keys renewed each time; returns replays/s."""
    plans = []  # the parameters of every replay, made before the clock starts
    for _ in range(n):
        i = next(_REPLAYS)  # unique across every replay of the process, not only this call's
        new = {k: f"{k[:-8]}{j:02x}{i:06x}" for j, k in enumerate(keys)}
        plans.append([_fresh(st.params, new, i) for st in statements])
    engines = {name: _replay_engine(url) for name, url in urls.items()}
    conns = {name: e.connect() for name, e in engines.items()}
    try:
        open_tx = dict.fromkeys(conns, False)
        t0 = time.perf_counter()
        for i in range(n):
            for st, params in zip(statements, plans[i], strict=True):
                c = conns[st.db]
                if st.sql in ("COMMIT", "ROLLBACK"):
                    if open_tx[st.db]:
                        c.exec_driver_sql(st.sql)
                        open_tx[st.db] = False
                    continue
                sql = st.sql
                if sql.lstrip().upper().startswith("BEGIN"):
                    open_tx[st.db] = True
                elif not open_tx[st.db] and not sql.lstrip().upper().startswith(("SELECT", "PRAGMA")):
                    c.exec_driver_sql("BEGIN")
                    open_tx[st.db] = True
                if st.many:
                    c.exec_driver_sql(sql, list(params))
                elif params:
                    c.exec_driver_sql(sql, params)
                else:
                    c.exec_driver_sql(sql)
        dt = time.perf_counter() - t0
    finally:
        for c in conns.values():
            c.close()
        for e in engines.values():
            e.dispose()
    return n / dt
