"""The sweep builds event snapshots from raw rows (`bulk.snapshot`) for speed; every other event builds
them from the domain object (`codec.snapshot_pb`). Both must say the same thing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from services.subscription import codec
from services.subscription.adapters import bulk
from services.subscription.adapters.repository import Repository
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.service.subscription.conftest import rid


def test_row_and_domain_snapshots_agree(stack):
    collection = stack.buy(product_code="AEC_COLLECTION", seats=2).subscription
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
            row = s.execute(select(bulk.SUB).where(bulk.SUB.c.subscription_id == sid)).mappings().one()
            from_row = bulk.snapshot(row, bulk.state_of(row))
            from_domain = codec.snapshot_pb(repo.get(sid))
            assert from_row == from_domain, sid
    assert list(from_domain.included_product_codes) == []  # ACD is no collection
    with db.read() as s:
        row = s.execute(select(bulk.SUB).where(bulk.SUB.c.subscription_id == ids[0])).mappings().one()
    assert list(bulk.snapshot(row, bulk.state_of(row)).included_product_codes) == ["ACD", "DOCS"]
