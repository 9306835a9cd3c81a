"""The lifecycle sweep on PostgreSQL (issue 18, rows 5 and 6).

A table of `idle` subscriptions (next_action_time spread over 300 days after the sweep's instant; 200 000
in `make bench`, BENCH_SCALE=5 for the issue's 1 M) loaded with INSERT … SELECT over generate_series, then
at each due count (100, 1 000, 10 000) `RUNS` rounds on freshly loaded due rows with realistic variety:

- 20 % renewals (auto-renew on, the term ended: a renewal invoice each, from a counting billing stand-in),
- 40 % terms that ended unrenewed on different dates in different time zones (each its own lifecycle
  state: Active -> Expired, and -> Suspended where the 15 days are up),
- 15 % Expired -> Suspended, 15 % Suspended -> Cancelled, 10 % a 45-day renewal reminder.

Baseline: ONE set-based UPDATE of exactly the due rows (stage moved, next_action_time cleared), rolled
back. Row 6: the same 10 000 due rows swept by two worker processes at once against one worker process,
with the check that no row moved twice and no renewal was billed twice."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from dataclasses import replace
from zoneinfo import available_timezones

from sqlalchemy import text

from services.subscription import handlers, sweep
from services.subscription.adapters.tables import SubscriptionModel
from shared.clock import TestClock
from shared.db import Database
from tests.bench.harness import RUNS, Result, median, record
from tests.service.subscription.bulk_load import (
    AS_OF,
    CountingBilling,
    distinct_expiring,
    load,
    load_subscriptions,
)

ZONES = sorted(
    z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "posix/", "right/"))
)[:200]
DUE_BASE = 1  # due rows are sub_000000001…; idle rows start after the largest due set
IDLE_FIRST = 100_000_001

BASELINE = text(
    """
    UPDATE subscriptions
       SET stage = CASE stage WHEN 'ACTIVE' THEN 'EXPIRED' WHEN 'EXPIRED' THEN 'SUSPENDED' ELSE 'CANCELLED' END,
           next_action_time = NULL,
           version = version + 1,
           update_time = :now
     WHERE next_action_time <= :as_of
    """
)


def mix(due: int) -> dict[str, int]:
    counts = {
        "renew": due * 20 // 100,
        "distinct": due * 40 // 100,
        "suspend": due * 15 // 100,
        "cancel": due * 15 // 100,
    }
    counts["remind"] = due - sum(counts.values())
    return counts


def _settle(db: Database) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
        c.execute(text("CHECKPOINT"))


def load_due(db: Database, due: int) -> dict[str, int]:
    """Replaces the due rows (and what an earlier sweep wrote for them) with `due` fresh ones."""
    with db.engine.begin() as c:
        for table in ("lifecycle_transitions", "renewal_reminders", "renewals", "orders", "subscriptions"):
            c.execute(text(f"DELETE FROM {table} WHERE subscription_id < 'sub_100000000'"))
        c.execute(text("DELETE FROM outbox"))
    shapes = mix(due)
    first = DUE_BASE
    for kind, n in shapes.items():
        if not n:
            continue
        if kind == "distinct":
            subs = [
                replace(s, subscription_id=f"sub_{first + i:09d}")
                for i, s in enumerate(distinct_expiring(n, ZONES))
            ]
            load_subscriptions(db.engine, subs, now=AS_OF)
        else:
            load(db.engine, kind, first, n, now=AS_OF)
        first += n
    return shapes


def build(url: str, idle: int) -> tuple[Database, float]:
    db = Database(url, SubscriptionModel.metadata, TestClock(AS_OF), source="subscription")
    db.create_all()
    handlers.seed(db)
    t0 = time.perf_counter()
    chunk = 100_000
    for lo in range(0, idle, chunk):
        load(db.engine, "idle", IDLE_FIRST + lo, min(chunk, idle - lo), now=AS_OF, spread_days=300)
    _settle(db)
    return db, time.perf_counter() - t0


def _baseline(db: Database, due: int) -> float:
    with db.engine.connect() as c:
        t0 = time.perf_counter()
        n = c.execute(BASELINE, {"now": AS_OF, "as_of": AS_OF}).rowcount
        dt = time.perf_counter() - t0
        c.rollback()
    assert n == due, (n, due)
    return dt


def sweep_against_update(
    db: Database, due_counts: list[int], idle: int, loaded_s: float, runs: int = RUNS
) -> list[Result]:
    results = []
    for due in due_counts:
        bases, sweeps, moves = [], [], 0
        for _ in range(runs):
            load_due(db, due)
            _settle(db)
            bases.append(_baseline(db, due))
            _settle(db)
            billing = CountingBilling()
            t0 = time.perf_counter()
            counts = sweep.run(db, billing, AS_OF)
            sweeps.append(time.perf_counter() - t0)
            assert counts.total >= due, (counts, due)
            assert max(billing.calls.values(), default=1) == 1
            moves = counts.total
        s, b = median(sweeps), median(bases)
        ratio = s / b
        results.append(
            record(
                Result(
                    row=f"lifecycle sweep, {due:,} due, PostgreSQL",
                    figure=s * 1000,
                    unit="ms",
                    baseline=b * 1000,
                    baseline_unit="ms UPDATE",
                    ratio=ratio,
                    goal="<= 3x",
                    met=ratio <= 3,
                    note=f"{idle:,} idle rows (loaded in {loaded_s:.0f} s); {moves:,} moves; x {runs}",
                    runs=[x * 1000 for x in sweeps],
                    extra={"baseline_runs": [x * 1000 for x in bases]},
                )
            )
        )
    return results


def _worker(url: str, start, out) -> None:  # noqa: ANN001 - a spawned process
    db = Database(url, SubscriptionModel.metadata, TestClock(AS_OF), source="subscription")
    billing = CountingBilling()
    with db.engine.connect() as c:  # connected before the start, like a running service
        c.execute(text("SELECT 1"))
    out.put("ready")
    start.wait()
    counts = sweep.run(db, billing, AS_OF)
    out.put((time.perf_counter(), counts.total, dict(billing.calls)))
    db.dispose()


def _parallel(url: str, workers: int) -> tuple[float, list[int], Counter[str]]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, start, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:  # every worker imported and connected
        assert out.get(timeout=120) == "ready"
    t0 = time.perf_counter()
    start.set()
    got = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    calls: Counter[str] = Counter()
    for _, _, c in got:
        calls.update(c)
    return max(t for t, _, _ in got) - t0, [n for _, n, _ in got], calls


def two_workers(db: Database, url: str, due: int, runs: int = RUNS) -> Result:
    ones, twos, dup_rows, dup_bills, shares = [], [], 0, 0, []
    for _ in range(runs):
        for workers, into in ((1, ones), (2, twos)):
            load_due(db, due)
            _settle(db)
            dt, totals, calls = _parallel(url, workers)
            into.append(dt)
            dup_bills += sum(1 for v in calls.values() if v > 1)
            with db.read() as s:
                dup_rows += s.execute(
                    text(
                        "SELECT count(*) FROM (SELECT subscription_id, from_stage, to_stage, period_key"
                        " FROM lifecycle_transitions GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
                    )
                ).scalar_one()
                left = s.execute(
                    text("SELECT count(*) FROM subscriptions WHERE next_action_time <= :t"), {"t": AS_OF}
                ).scalar_one()
            assert left == 0, f"{left} due rows left after {workers} workers"
            if workers == 2:
                shares.append(min(totals) / max(sum(totals), 1))
    one, two = median(ones), median(twos)
    speedup = one / two
    dups = dup_rows + dup_bills
    return record(
        Result(
            row=f"lifecycle sweep 2 workers vs 1, {due:,} due",
            figure=two * 1000,
            unit="ms",
            baseline=one * 1000,
            baseline_unit="ms 1 worker",
            ratio=speedup,
            goal=">= 1.6x, 0 dups",
            met=speedup >= 1.6 and dups == 0,
            note=f"speedup {speedup:.2f}x; duplicates {dups}; smaller worker's share {median(shares):.0%}",
            runs=[x * 1000 for x in twos],
            extra={"baseline_runs": [x * 1000 for x in ones], "duplicates": dups},
        )
    )
