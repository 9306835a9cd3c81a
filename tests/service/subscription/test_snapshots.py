"""Event snapshots have one encoder (`codec`): the profile part is stored on the row when it is written
(`event_profile`), and the sweep's set-based statement wraps it in each move's lifecycle part. The events the
sweep writes must say exactly what the domain object says, on both backends."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from google.protobuf import json_format
from sqlalchemy import select

from services.subscription import codec, sweep
from services.subscription.adapters.repository import Repository
from services.subscription.adapters.tables import SubscriptionRow
from services.subscription.domain.model import Stage
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.service.subscription.bulk_load import CountingBilling
from tests.service.subscription.conftest import outbox_events, rid

SUB = SubscriptionRow.__table__
# a name that needs escaping in JSON, and letters outside ASCII
BUYER = pb.Buyer(email="kare@example.no", name='Kåre "KØ" Ødegård\\', language="nb")


def test_the_stored_profile_is_the_domain_profile(stack):
    collection = stack.buy("acct-kare", product_code="AEC_COLLECTION", seats=2, buyer=BUYER).subscription
    lt = stack.buy(seats=1).subscription
    stack.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    up = stack.sub.UpgradeSubscription(
        pb.UpgradeSubscriptionRequest(
            request_id=rid(), subscription_id=lt.subscription_id, target_product_code="ACD"
        )
    )
    ids = [collection.subscription_id, lt.subscription_id, up.new_subscription.subscription_id]
    db = stack.sub_app.db
    with db.read() as s:
        repo = Repository(s, postgres=db.is_postgres)
        for sid in ids:
            stored = s.execute(select(SUB.c.event_profile).where(SUB.c.subscription_id == sid)).scalar_one()
            sub = repo.get(sid)
            assert stored == codec.event_profile(sub), sid
            parsed = json_format.Parse("{" + stored + "}", events_pb2.SubscriptionSnapshot())
            assert parsed == codec.profile_pb(sub), sid
            full = codec.snapshot_pb(sub)
            assert full.stage == codec.stage_pb(sub.stage) and full.buyer_email == sub.buyer_email
        first = repo.get(ids[0])
    assert list(codec.snapshot_pb(first).included_product_codes) == ["ACD", "DOCS"]
    assert first.buyer_name == BUYER.name


def test_the_sweeps_events_equal_the_domain_objects(stack):
    """One sweep that runs late catches an unrenewed annual subscription up from Active to Cancelled, and
    another gets its 45-day reminder: every event's snapshot equals `codec.snapshot_pb` of the subscription
    after the move, in that event's stage (PostgreSQL: the set-based statement; SQLite: row by row)."""
    ended = stack.buy(product_code="AEC_COLLECTION", seats=2, buyer=BUYER, auto_renew=False).subscription
    stack.clock.set(datetime(2024, 8, 1, 9, 0, tzinfo=UTC))
    reminded = stack.buy(account_id="acct-2", auto_renew=False).subscription
    db = stack.sub_app.db
    before = {e.event_id for e in outbox_events(db)}

    counts = sweep.run(db, CountingBilling(), datetime(2025, 6, 26, 12, 0, tzinfo=UTC))
    assert (counts.expired, counts.suspended, counts.reminded) == (1, 1, 1)

    events = [e for e in outbox_events(db) if e.event_id not in before]
    with db.read() as s:
        repo = Repository(s, postgres=db.is_postgres)
        ended_now, reminded_now = repo.get(ended.subscription_id), repo.get(reminded.subscription_id)
    assert ended_now.stage is Stage.SUSPENDED
    changes = [e for e in events if e.subscription_id == ended.subscription_id]
    assert [(e.stage_changed.from_stage, e.stage_changed.to_stage) for e in changes] == [
        (common_pb2.STAGE_ACTIVE, common_pb2.STAGE_EXPIRED),
        (common_pb2.STAGE_EXPIRED, common_pb2.STAGE_SUSPENDED),
    ]
    for e in changes:
        assert e.event_type == "subscription.stage_changed"
        assert (e.account_id, e.source) == (ended.account_id, "subscription")
        to = Stage(common_pb2.Stage.Name(e.stage_changed.to_stage).removeprefix("STAGE_"))
        assert e.stage_changed.subscription == codec.snapshot_pb(replace(ended_now, stage=to))
        assert e.stage_changed.reason in ("term_ended", "shutoff")
    assert changes[0].stage_changed.subscription.buyer_name == BUYER.name
    (reminder,) = [e for e in events if e.subscription_id == reminded.subscription_id]
    assert reminder.event_type == "subscription.renewal_reminder"
    assert reminder.renewal_reminder.days_before == 45
    assert reminder.renewal_reminder.subscription == codec.snapshot_pb(reminded_now)
    assert len({e.event_id for e in events}) == len(events) == 3
    # a second reading (a redelivery) gives every event the same id
    again = [e for e in outbox_events(db) if e.event_id not in before]
    assert [e.event_id for e in again] == [e.event_id for e in events]
    assert json.loads(json_format.MessageToJson(events[0]))["eventId"] == events[0].event_id
