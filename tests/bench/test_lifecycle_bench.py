"""Lifecycle sweep benchmark on PostgreSQL: 1 000 000 subscriptions of which 1 % are due.

Reproduce: `make bench` (or `.venv/bin/pytest tests/bench/test_lifecycle_bench.py -q -s -p no:cacheprovider
--override-ini addopts=`), with PostgreSQL at 127.0.0.1:5432 (TENURE_TEST_PG_URL to point elsewhere).

What is measured, in one run on one database:
- the rows: 990 000 idle subscriptions (their next_action_time spread over 300 days after the sweep's
  instant) and 10 000 due ones, 2 500 each of: Active -> Expired (term ended, auto-renew off), Expired ->
  Suspended, Suspended -> Cancelled, and a 45-day renewal reminder; loaded with INSERT … SELECT over
  generate_series (not the ORM), then VACUUM ANALYZE;
- ROUNDS rounds, each on 10 000 freshly loaded due rows (the previous round's are deleted and loaded again
  due, then VACUUM ANALYZE and CHECKPOINT, so no round pays for another's dead rows or dirty pages):
  - baseline: ONE set-based UPDATE that moves the stage of exactly those 10 000 rows (found through the
    same index) and clears their next_action_time, rolled back;
  - the sweep: `sweep.run` over the same rows, as the service runs it: per batch, lock the due rows with
    FOR UPDATE SKIP LOCKED and read their distinct states, decide each state's move, and one statement that
    updates the rows and inserts the history rows, the reminder rows and the 10 000 events; committed;
- the ratio: median sweep / median UPDATE;
- the worst case, reported and not held to the goal: 10 000 due rows each in a lifecycle state of its own
  (annual terms that ended on 50 dates in 200 time zones; 1 to 3 stage changes each), one round, against
  the same UPDATE; here the sweep decides and encodes 10 000 moves in Python instead of a few;
- the sweep with nothing due: the median of 20 runs at an instant before any row is due.

Renewals are not part of the due set: each one calls billing (an invoice and a charge per subscription),
which no set-based UPDATE does; their path is exercised by the race test in tests/service/subscription.
The goals: sweep within 3x the UPDATE, an empty sweep under 50 ms.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from zoneinfo import available_timezones

import pytest
from sqlalchemy import text

from services.subscription import handlers, sweep
from services.subscription.adapters.tables import SubscriptionModel
from shared.clock import TestClock
from shared.db import Database
from tests.conftest import PG_AVAILABLE
from tests.service.subscription.bulk_load import (
    AS_OF,
    CountingBilling,
    distinct_expiring,
    load,
    load_subscriptions,
)

TOTAL = 1_000_000
DUE = {"expire": 2500, "suspend": 2500, "cancel": 2500, "remind": 2500}
NOTHING_DUE_AT = datetime(2025, 6, 1, tzinfo=UTC)  # before every due shape's instant

BASELINE = text(
    """
    UPDATE subscriptions
       SET stage = CASE stage WHEN 'ACTIVE' THEN 'EXPIRED' WHEN 'EXPIRED' THEN 'SUSPENDED' ELSE 'CANCELLED' END,
           next_action_time = NULL,
           version = version + 1,
           update_time = :now
     WHERE due_kind = 0 AND next_action_time <= :as_of
    """
)


ROUNDS = 3
ZONES = sorted(
    z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "posix/", "right/"))
)[:200]


def _settle(db: Database) -> None:
    """VACUUM ANALYZE and a CHECKPOINT: every measurement starts from clean pages and an idle disk."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
        c.execute(text("CHECKPOINT"))


def _load_due(db: Database) -> None:
    """The 10 000 due rows, ids sub_000000001…sub_000010000 (replacing those of an earlier round)."""
    with db.engine.begin() as c:
        for table in ("lifecycle_transitions", "renewal_reminders", "subscriptions"):
            c.execute(text(f"DELETE FROM {table} WHERE subscription_id <= 'sub_000010000'"))
    first = 1
    for kind, n in DUE.items():
        load(db.engine, kind, first, n, now=AS_OF)
        first += n


@pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")
@pytest.mark.parametrize("backend", ["postgresql"])
def test_sweep_of_1_percent_due_against_one_set_based_update(new_db_url):
    clock = TestClock(AS_OF)
    db = Database(new_db_url("bench"), SubscriptionModel.metadata, clock, source="subscription")
    db.create_all()
    handlers.seed(db)
    started = time.perf_counter()
    _load_due(db)
    first = sum(DUE.values()) + 1
    idle = TOTAL - sum(DUE.values())
    chunk = 110_000
    for lo in range(0, idle, chunk):
        load(db.engine, "idle", first + lo, min(chunk, idle - lo), now=AS_OF, spread_days=300)
    _settle(db)
    loaded = time.perf_counter() - started
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM subscriptions")).scalar() == TOTAL

    empty = []
    billing = CountingBilling()
    for _ in range(20):
        t0 = time.perf_counter()
        counts = sweep.run(db, billing, NOTHING_DUE_AT)
        empty.append(time.perf_counter() - t0)
        assert counts.total == 0

    baseline, swept = [], []
    due = sum(DUE.values())
    for round_ in range(ROUNDS):
        if round_:
            _load_due(db)
            _settle(db)
        with db.read() as s:
            assert (
                s.execute(
                    text("SELECT count(*) FROM subscriptions WHERE next_action_time <= :t"), {"t": AS_OF}
                ).scalar()
                == due
            )
        with db.engine.connect() as c:
            t0 = time.perf_counter()
            n = c.execute(BASELINE, {"now": AS_OF, "as_of": AS_OF}).rowcount
            baseline.append(time.perf_counter() - t0)
            c.rollback()
        assert n == due
        _settle(db)
        t0 = time.perf_counter()
        counts = sweep.run(db, billing, AS_OF)
        swept.append(time.perf_counter() - t0)
        assert counts.total == due
        assert (counts.expired, counts.suspended, counts.cancelled, counts.reminded) == (
            DUE["expire"],
            DUE["suspend"],
            DUE["cancel"],
            DUE["remind"],
        )
    assert not billing.calls

    # the worst case: every due row in a state of its own
    with db.engine.begin() as c:
        for table in ("lifecycle_transitions", "renewal_reminders", "subscriptions"):
            c.execute(text(f"DELETE FROM {table} WHERE subscription_id <= 'sub_000010000'"))
    load_subscriptions(db.engine, distinct_expiring(due, ZONES), now=AS_OF)
    _settle(db)
    with db.engine.connect() as c:
        t0 = time.perf_counter()
        assert c.execute(BASELINE, {"now": AS_OF, "as_of": AS_OF}).rowcount == due
        distinct_base = time.perf_counter() - t0
        c.rollback()
    _settle(db)
    t0 = time.perf_counter()
    distinct = sweep.run(db, billing, AS_OF)
    distinct_sweep = time.perf_counter() - t0
    assert distinct.expired == due and distinct.total > due

    base = statistics.median(baseline)
    empty_ms = statistics.median(empty) * 1000
    sweep_s = statistics.median(swept)
    ratio = sweep_s / base
    print(
        "\nlifecycle sweep benchmark (PostgreSQL, "
        f"{TOTAL:,} subscriptions, {due:,} due; loaded in {loaded:.1f} s)\n"
        f"  one set-based UPDATE of the due rows : {base * 1000:8.1f} ms  (median of {ROUNDS}: "
        + ", ".join(f"{b * 1000:.1f}" for b in baseline)
        + ")\n"
        f"  lifecycle sweep of the same rows     : {sweep_s * 1000:8.1f} ms  (median of {ROUNDS}: "
        + ", ".join(f"{b * 1000:.1f}" for b in swept)
        + f"; {due / sweep_s:,.0f} rows/s; history, reminders and {due:,} events included)\n"
        f"  ratio sweep / UPDATE                 : {ratio:8.2f} x   (goal <= 3 x)\n"
        f"  worst case, {due:,} due rows in {due:,} distinct states: UPDATE {distinct_base * 1000:.1f} ms, "
        f"sweep {distinct_sweep * 1000:.1f} ms ({distinct.total:,} moves), "
        f"ratio {distinct_sweep / distinct_base:.2f} x (reported only)\n"
        f"  sweep with nothing due               : {empty_ms:8.2f} ms  (median of 20; goal < 50 ms)\n"
        "  reproduce: make bench   (PostgreSQL at 127.0.0.1:5432 or TENURE_TEST_PG_URL)"
    )
    assert empty_ms < 50
    assert ratio <= 3, f"the sweep took {ratio:.2f} x the UPDATE (goal <= 3 x)"
    db.dispose()
