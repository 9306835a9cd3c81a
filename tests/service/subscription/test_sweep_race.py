"""On PostgreSQL, two lifecycle sweeps started at once (two engines, as two replicas would run them) over
2 000 due subscriptions (each sweep takes many batches of 100) move each exactly once and ask billing for exactly one renewal invoice per
subscription and period."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from services.subscription import handlers, sweep
from services.subscription.adapters.tables import RenewalRow, SubscriptionModel, TransitionRow
from shared.clock import TestClock
from shared.db import Database
from tests.conftest import PG_AVAILABLE

from .bulk_load import AS_OF, CountingBilling, load
from .conftest import outbox_events

pytestmark = pytest.mark.pg

SHAPES = {"renew": 600, "expire": 400, "suspend": 400, "cancel": 400, "remind": 200}  # 2 000 due
IDLE = 1000


@pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")
@pytest.mark.parametrize("backend", ["postgresql"])  # SKIP LOCKED is what is tested: PostgreSQL only
def test_two_sweeps_at_once_move_each_once_and_bill_each_period_once(new_db_url):
    url = new_db_url("race")
    clock = TestClock(AS_OF)
    dbs = [Database(url, SubscriptionModel.metadata, clock, source="subscription") for _ in range(2)]
    dbs[0].create_all()
    handlers.seed(dbs[0])
    first = 1
    for kind, n in [*SHAPES.items(), ("idle", IDLE)]:
        load(dbs[0].engine, kind, first, n, now=clock.now())
        first += n
    with dbs[0].engine.begin() as c:
        c.execute(text("ANALYZE subscriptions"))
    billing = CountingBilling()
    results: list = [None, None]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = sweep.run(dbs[i], billing, AS_OF, batch=100)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    a, b = results
    assert a is not None and b is not None, "a sweep did not finish"
    # both sweeps did part of the work, and together exactly all of it
    assert a.total > 0 and b.total > 0
    assert a.renewed + b.renewed == SHAPES["renew"]
    assert a.reminded + b.reminded == SHAPES["remind"]
    assert a.expired + b.expired == SHAPES["expire"]
    assert a.suspended + b.suspended == SHAPES["suspend"]
    assert a.cancelled + b.cancelled == SHAPES["cancel"]
    renewal_calls = {k: v for k, v in billing.calls.items() if k.startswith("renewal:")}
    assert len(renewal_calls) == SHAPES["renew"] and set(renewal_calls.values()) == {1}
    with dbs[0].read() as s:
        per_stage = Counter(
            s.execute(
                select(TransitionRow.subscription_id, TransitionRow.to_stage).where(
                    TransitionRow.reason != "created"
                )
            ).all()
        )
        assert set(per_stage.values()) == {1}  # no subscription moved to a stage twice
        stages = dict(
            s.execute(
                select(text("stage"), func.count()).select_from(text("subscriptions")).group_by(text("stage"))
            ).all()
        )
        renewals = s.execute(
            select(RenewalRow.period_start_date, func.count()).group_by(RenewalRow.period_start_date)
        ).all()
        due_left = s.execute(
            text("SELECT count(*) FROM subscriptions WHERE next_action_time <= :t"), {"t": AS_OF}
        ).scalar()
    assert stages == {
        "ACTIVE": SHAPES["renew"] + SHAPES["remind"] + IDLE,
        "EXPIRED": SHAPES["expire"],
        "SUSPENDED": SHAPES["suspend"],
        "CANCELLED": SHAPES["cancel"],
    }
    assert [(str(d), n) for d, n in renewals] == [("2025-06-10", SHAPES["renew"])]
    evs = outbox_events(dbs[0])
    events = Counter(e.event_type for e in evs)
    # each subscription's event for each move once, with an id of its own
    assert set(
        Counter((e.subscription_id, e.event_type, e.stage_changed.to_stage) for e in evs).values()
    ) == {1}
    assert len({e.event_id for e in evs}) == len(evs)
    assert events == {
        "subscription.stage_changed": sum(per_stage.values()),
        "subscription.renewal_reminder": SHAPES["remind"],
        "subscription.renewed": SHAPES["renew"],
    }
    assert due_left == 0
    for db in dbs:
        db.dispose()
