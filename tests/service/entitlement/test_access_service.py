"""CheckAccess over gRPC: every cell of the rules §4 table, for STANDARD and IMMEDIATE products,
driven by `subscription.stage_changed` events through the inbox (which also proves the cache
follows the projection)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tenure.common.v1 import common_pb2 as c
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.events.v1 import events_pb2
from tests.service.entitlement.conftest import PRODUCT, Sub

CAPS = [
    c.CAPABILITY_PRODUCT_ACCESS,
    c.CAPABILITY_USER_MANAGEMENT,
    c.CAPABILITY_DOWNLOADS,
    c.CAPABILITY_REPORTING,
    c.CAPABILITY_SUPPORT,
]
FULL, LIMITED, RO, SH, NONE = (
    c.ACCESS_LEVEL_FULL,
    c.ACCESS_LEVEL_LIMITED,
    c.ACCESS_LEVEL_READ_ONLY,
    c.ACCESS_LEVEL_SELF_HELP,
    c.ACCESS_LEVEL_NONE,
)
# rows: product access, user management, downloads, reporting, support (rules §4)
STANDARD = {
    c.STAGE_ACTIVE: [FULL, FULL, FULL, FULL, FULL],
    c.STAGE_EXPIRED: [FULL, FULL, LIMITED, NONE, SH],
    c.STAGE_SUSPENDED: [NONE, RO, NONE, NONE, SH],
    c.STAGE_CANCELLED: [NONE, NONE, NONE, NONE, SH],
}
IMMEDIATE = {
    c.STAGE_ACTIVE: [FULL, FULL, FULL, FULL, FULL],
    c.STAGE_EXPIRED: [NONE, FULL, NONE, NONE, SH],
    c.STAGE_SUSPENDED: [NONE, RO, NONE, NONE, SH],
    c.STAGE_CANCELLED: [NONE, NONE, NONE, NONE, SH],
}


@pytest.mark.parametrize(
    ("policy", "product", "table"),
    [(c.SHUTOFF_POLICY_STANDARD, "ACDLT", STANDARD), (c.SHUTOFF_POLICY_IMMEDIATE, "DOCS", IMMEDIATE)],
    ids=["standard", "immediate"],
)
def test_every_cell_of_the_capability_table(ent, policy, product, table):
    sub = Sub("sub-1", "acct-1", product_code=product, shutoff_policy=policy)
    ent.created(sub)
    ent.assign(sub, "user@example.com")
    for stage in (c.STAGE_ACTIVE, c.STAGE_EXPIRED, c.STAGE_SUSPENDED, c.STAGE_CANCELLED):
        if stage != c.STAGE_ACTIVE:
            ent.stage(sub, stage)
        got = [ent.check("user@example.com", product, cap) for cap in CAPS]
        assert [r.level for r in got] == table[stage], c.Stage.Name(stage)
        for r, want in zip(got, table[stage], strict=True):
            assert r.allowed is (want != NONE)
            assert r.stage == stage and r.subscription_id == "sub-1"
        m = ent.stub.GetSubscriptionAccess(pb.GetSubscriptionAccessRequest(subscription_id="sub-1"))
        assert m.stage == stage
        assert [x.level for x in m.capabilities] == table[stage]
    assert ent.check("user@example.com", product, c.CAPABILITY_PRODUCT_ACCESS).reason == (
        pb.ACCESS_REASON_STAGE_CANCELLED
    )


def test_premium_support_best_level_and_no_seat(ent):
    std = Sub("sub-std", "acct-1", product_code="ACD")
    prem = Sub("sub-prem", "acct-2", product_code="ACD", plan=c.PLAN_PREMIUM, buyer_email="other@example.com")
    ent.created(std)
    ent.created(prem)
    ent.assign(std, "u@example.com")
    ent.assign(prem, "u@example.com", by="other@example.com")
    r = ent.check("u@example.com", "ACD", c.CAPABILITY_SUPPORT)
    assert (r.level, r.subscription_id) == (c.ACCESS_LEVEL_PREMIUM, "sub-prem")
    # the premium one is suspended: the standard one's full downloads win
    ent.stage(prem, c.STAGE_EXPIRED)
    ent.stage(prem, c.STAGE_SUSPENDED)
    r = ent.check("u@example.com", "ACD", c.CAPABILITY_DOWNLOADS)
    assert (r.level, r.subscription_id, r.stage) == (FULL, "sub-std", c.STAGE_ACTIVE)
    assert ent.check("u@example.com", "ACD", c.CAPABILITY_SUPPORT).level == FULL
    # no seat of that product
    r = ent.check("u@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS)
    assert (r.allowed, r.level, r.reason, r.subscription_id) == (False, NONE, pb.ACCESS_REASON_NO_SEAT, "")
    # the whole matrix of the user
    ents = ent.stub.GetUserEntitlements(
        pb.GetUserEntitlementsRequest(user_email="U@Example.com"), metadata=PRODUCT
    ).entitlements
    assert sorted((e.subscription_id, e.stage) for e in ents) == [
        ("sub-prem", c.STAGE_SUSPENDED),
        ("sub-std", c.STAGE_ACTIVE),
    ]


def test_a_seat_on_a_collection_grants_the_products_it_contains(ent):
    aec = Sub("sub-aec", "acct-9", product_code="AEC_COLLECTION")
    snap = aec.snapshot()
    snap.included_product_codes.extend(["ACD", "DOCS"])
    ent.deliver(
        "subscription.created",
        account_id=aec.account_id,
        subscription_id=aec.subscription_id,
        subscription_created=events_pb2.SubscriptionCreated(subscription=snap, order_number="O-9"),
    )
    ent.assign(aec, "designer@example.com")
    for product in ("AEC_COLLECTION", "ACD", "DOCS"):
        r = ent.check("designer@example.com", product, c.CAPABILITY_PRODUCT_ACCESS)
        assert (r.allowed, r.level, r.subscription_id) == (True, FULL, "sub-aec"), product
    r = ent.check("designer@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS)
    assert (r.allowed, r.reason) == (False, pb.ACCESS_REASON_NO_SEAT)


def test_upgrade_overlap_old_and_new_product(ent, clock):
    old = Sub("sub-old", "acct-1", product_code="ACDLT")
    ent.created(old)
    ent.assign(old, "u@example.com")
    until = clock.now() + timedelta(days=30)
    new = Sub("sub-new", "acct-1", product_code="ACD")
    old.access_until = until
    from tenure.events.v1 import events_pb2

    ent.deliver(
        "subscription.upgraded",
        account_id="acct-1",
        subscription_id="sub-old",
        subscription_upgraded=events_pb2.SubscriptionUpgraded(
            old_subscription=old.snapshot(), new_subscription=new.snapshot(), order_number="O-2"
        ),
    )
    ent.assign(new, "u@example.com")
    assert ent.check("u@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS).allowed
    assert ent.check("u@example.com", "ACD", c.CAPABILITY_PRODUCT_ACCESS).allowed
    r = ent.check("u@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS)
    assert r.access_until_time.ToDatetime().replace(tzinfo=until.tzinfo) == until
    m = ent.stub.GetSubscriptionAccess(pb.GetSubscriptionAccessRequest(subscription_id="sub-old"))
    assert m.upgraded_to_subscription_id == "sub-new" and m.assigned_seats == 1
    clock.advance(timedelta(days=30))
    r = ent.check("u@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS)
    assert (r.allowed, r.reason) == (False, pb.ACCESS_REASON_ACCESS_ENDED)
    assert ent.check("u@example.com", "ACD", c.CAPABILITY_PRODUCT_ACCESS).allowed


def test_invalid_check_access_requests(ent):
    import grpc

    for req in (
        pb.CheckAccessRequest(user_email="", product_code="ACD", capability=c.CAPABILITY_SUPPORT),
        pb.CheckAccessRequest(user_email="a@example.com", product_code="ACD"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            ent.stub.CheckAccess(req, metadata=PRODUCT)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_two_processes_on_one_database_see_each_others_changes(start_service, new_db_url):
    """A change made through one server reaches the other server's cache through access_change."""
    from tests.service.entitlement.conftest import Harness

    url = new_db_url("shared")
    a = Harness(start_service("entitlement", database_url=url))
    b = Harness(start_service("entitlement", database_url=url))
    sub = Sub("sub-1", "acct-1")
    a.created(sub)
    a.assign(sub, "u@example.com")
    b.app.access_feed.poll()
    assert b.check("u@example.com", "ACDLT", c.CAPABILITY_DOWNLOADS).level == FULL  # now cached in b
    a.stage(sub, c.STAGE_EXPIRED)
    b.app.access_feed.poll()  # (or the background poll of b got there first)
    assert b.check("u@example.com", "ACDLT", c.CAPABILITY_DOWNLOADS).level == LIMITED
    assert b.app.access_feed.poll() == 0  # nothing new: no needless reload
