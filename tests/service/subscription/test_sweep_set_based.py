"""The set-based sweep on PostgreSQL: a row whose state has no move in the statement (its state changed after
the states were read) is left exactly as it was and swept in a later batch."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.subscription import handlers, sweep
from services.subscription.adapters import bulk
from services.subscription.adapters.tables import SubscriptionModel
from services.subscription.domain import lifecycle
from services.subscription.domain.model import Stage
from shared.clock import TestClock
from shared.db import Database
from tenure.common.v1 import common_pb2
from tests.conftest import PG_AVAILABLE

from .bulk_load import AS_OF, CountingBilling, load
from .conftest import outbox_events

pytestmark = pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")


@pytest.mark.parametrize("backend", ["postgresql"])
def test_rows_without_a_move_are_left_as_they_were_and_swept_later(new_db_url):
    db = Database(new_db_url("sub"), SubscriptionModel.metadata, TestClock(AS_OF), source="subscription")
    db.create_all()
    handlers.seed(db)
    load(db.engine, "expire", 1, 5, now=AS_OF)
    load(db.engine, "suspend", 6, 5, now=AS_OF)
    with db.unit_of_work() as uow:
        states = bulk.due_states(uow, AS_OF, 100)
        assert sorted(s.stage.value for s in states) == ["ACTIVE", "EXPIRED"]
        only = [lifecycle.move(s, AS_OF) for s in states if s.stage is Stage.EXPIRED]
        applied = bulk.apply_moves(uow, AS_OF, 100, only)
    assert (applied.claimed, applied.moved, applied.events) == (10, {0: 5}, 1)
    with db.read() as s:
        rows = s.execute(
            text("SELECT stage, version, count(*) FROM subscriptions GROUP BY stage, version ORDER BY stage")
        ).all()
        history = s.execute(text("SELECT count(*) FROM lifecycle_transitions")).scalar()
    assert [tuple(r) for r in rows] == [("ACTIVE", 1, 5), ("SUSPENDED", 2, 5)]
    assert history == 5
    counts = sweep.run(db, CountingBilling(), AS_OF)
    assert (counts.expired, counts.suspended) == (5, 0)
    events = outbox_events(db)
    assert sorted(common_pb2.Stage.Name(e.stage_changed.to_stage) for e in events) == (
        ["STAGE_EXPIRED"] * 5 + ["STAGE_SUSPENDED"] * 5
    )
    assert len({(e.subscription_id, e.stage_changed.to_stage) for e in events}) == 10
    db.dispose()
