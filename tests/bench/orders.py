"""Orders (issue 18, rows 1-3): AddSeats and CreateSubscription end to end (subscription -> billing's invoice
with tax -> outbox) in this process on SQLite against a replay of the same statements through SQLAlchemy
Core; the same calls against the four services as processes (`make run`); AddSeats from 4 concurrent
clients against 1 on PostgreSQL (the services as processes, each on a database of its own)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import person
from tests.bench.harness import (
    RUNS,
    Recorder,
    Result,
    median,
    new_keys,
    process_stack,
    record,
    replay_rate,
    started,
)
from tests.service.subscription.conftest import KARI, Stack

Call = Callable[[Stack, str, str], object]  # (stack, subscription id, request id)


def _add_seats(st: Stack, sid: str, rid: str) -> object:
    return st.sub.AddSeats(
        pb.AddSeatsRequest(request_id=rid, subscription_id=sid, seats=1), metadata=person(KARI)
    )


def _creator(pm: str) -> Call:
    def create(st: Stack, sid: str, rid: str) -> object:
        req = st.order("acct-bench", pm)
        req.request_id = rid
        return st.sub.CreateSubscription(req, metadata=person(KARI))

    return create


def in_process_stack(start_service) -> Stack:
    billing = start_service("billing", sweep_interval_seconds=0)
    sub = start_service(
        "subscription", billing_addr=billing.addr, entitlement_addr="", lifecycle_interval_seconds=0
    )
    return Stack.at(sub, billing, None)


def _rate(st: Stack, call: Call, sid: str, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call(st, sid, uuid.uuid4().hex)
    return n / (time.perf_counter() - t0)


def order_against_replay(start_service, method: str, n: int, replays: int, runs: int = RUNS) -> Result:
    """`method` (AddSeats or CreateSubscription) n times in this process on SQLite, `runs` times; the
    baseline replays one call's recorded statements `replays` times through Core, `runs` times."""
    st = in_process_stack(start_service)
    pm = st.card("acct-bench")
    sid = st.buy("acct-bench", pm).subscription.subscription_id
    call: Call = _add_seats if method == "AddSeats" else _creator(pm)
    for _ in range(3):  # warm: connections, caches
        call(st, sid, uuid.uuid4().hex)
    engines = {"subscription": st.sub_app.db.engine, "billing": st.billing_app.db.engine}
    rid = uuid.uuid4().hex
    with Recorder(engines) as rec:
        call(st, sid, rid)
    statements = rec.statements
    keys = new_keys(statements, (rid,))
    urls = {k: e.url.render_as_string(hide_password=False) for k, e in engines.items()}
    with started():
        figures, baselines = [], []
        for _ in range(runs):
            figures.append(_rate(st, call, sid, n))
            baselines.append(replay_rate(urls, statements, keys, replays))
    fig, base = median(figures), median(baselines)
    ratio = fig / base
    per_db = {
        k: sum(1 for s in statements if s.db == k and s.sql not in ("COMMIT", "ROLLBACK")) for k in engines
    }
    commits = sum(1 for s in statements if s.sql == "COMMIT")
    return record(
        Result(
            row=f"{method} in-process, SQLite",
            figure=fig,
            unit="/s",
            baseline=base,
            baseline_unit="/s replay",
            ratio=ratio,
            goal=">= 0.25",
            met=ratio >= 0.25,
            note=f"{n} calls x {runs}; {per_db['subscription']}+{per_db['billing']} statements, {commits} commits",
            runs=figures,
            extra={"statements": statements, "baseline_runs": baselines},
        )
    )


def order_against_processes(method: str, n: int, runs: int = RUNS, goal: float | None = None) -> Result:
    """`method` n times against the four services as processes on SQLite (as `make run`), `runs` times."""
    with process_stack() as addr:
        st = Stack.at(None, None, None, addr["subscription"], addr["billing"])
        pm = st.card("acct-bench")
        sid = st.buy("acct-bench", pm).subscription.subscription_id
        call: Call = _add_seats if method == "AddSeats" else _creator(pm)
        for _ in range(3):
            call(st, sid, uuid.uuid4().hex)
        figures = [_rate(st, call, sid, n) for _ in range(runs)]
    fig = median(figures)
    return record(
        Result(
            row=f"{method}, 4 services as processes (make run)",
            figure=fig,
            unit="/s",
            goal=f">= {goal:.0f}/s" if goal else "(reported)",
            met=fig >= goal if goal else None,
            note=f"{n} calls x {runs}, SQLite",
            runs=figures,
        )
    )


def _pg_databases(admin_url: str) -> dict[str, str]:
    """A fresh PostgreSQL database per service (dropped by `_drop`)."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as c:
        for n in ("subscription", "billing", "entitlement", "notification"):
            name = f"tenure_bench_{n}_{uuid.uuid4().hex[:6]}"
            c.execute(text(f'CREATE DATABASE "{name}"'))
            urls[n] = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    return urls


def _drop(admin_url: str, urls: dict[str, str]) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for u in urls.values():
            c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(u).database}" WITH (FORCE)'))
    admin.dispose()


def concurrent_add_seats(admin_url: str, n: int, clients: int = 4, runs: int = RUNS) -> Result:
    """AddSeats with `clients` concurrent clients (each on a subscription of its own, `n` calls each)
    against one client (`n` calls), the four services as processes on PostgreSQL."""
    urls = _pg_databases(admin_url)
    try:
        with process_stack(urls) as addr:
            st = Stack.at(None, None, None, addr["subscription"], addr["billing"])
            pm = st.card("acct-bench")
            sids = [st.buy("acct-bench", pm).subscription.subscription_id for _ in range(clients)]
            for sid in sids:
                _add_seats(st, sid, uuid.uuid4().hex)

            def many() -> float:
                errors: list[BaseException] = []

                def client(sid: str) -> None:
                    try:
                        for _ in range(n):
                            _add_seats(st, sid, uuid.uuid4().hex)
                    except BaseException as e:  # noqa: BLE001 - reported below
                        errors.append(e)

                threads = [threading.Thread(target=client, args=(s,)) for s in sids]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                if errors:
                    raise errors[0]
                return clients * n / (time.perf_counter() - t0)

            ones, manys = [], []
            for _ in range(runs):
                ones.append(_rate(st, _add_seats, sids[0], n))
                manys.append(many())
    finally:
        _drop(admin_url, urls)
    one, par = median(ones), median(manys)
    ratio = par / one
    return record(
        Result(
            row=f"AddSeats {clients} clients vs 1, PostgreSQL",
            figure=par,
            unit="/s",
            baseline=one,
            baseline_unit="/s 1 client",
            ratio=ratio,
            goal=">= 1.6",
            met=ratio >= 1.6,
            note=f"4 services as processes; {n} calls per client x {runs}",
            runs=manys,
            extra={"baseline_runs": ones},
        )
    )
