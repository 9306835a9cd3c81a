"""The projection of subscription events: last snapshot wins, cancellation clears seats, upgrades link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.entitlement.domain.model import Plan, ShutoffPolicy, Stage
from services.entitlement.domain.projection import Snapshot, SubscriptionEvent, plan_event

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def snap(sid="sub-1", stage=Stage.ACTIVE, seats=3, product="ACDLT", plan=Plan.STANDARD, until=None):
    return Snapshot(
        subscription_id=sid,
        account_id="acct-1",
        product_code=product,
        product_name=product,
        plan=plan,
        seats=seats,
        stage=stage,
        shutoff_policy=ShutoffPolicy.STANDARD,
        buyer_email="buyer@example.com",
        buyer_name="Bea",
        buyer_language="nb",
        access_until_time=until,
    )


def ev(event_type, seq, *snaps, **kw):
    return SubscriptionEvent(event_type=event_type, sequence=seq, snapshots=tuple(snaps), **kw)


def test_created_makes_a_view_and_names_the_buyer():
    u = plan_event(ev("subscription.created", 1, snap()), {})
    assert [(v.subscription_id, v.seats, v.stage, v.last_sequence) for v in u.views] == [
        ("sub-1", 3, Stage.ACTIVE, 1)
    ]
    assert u.buyers == [("acct-1", "buyer@example.com", "Bea", "nb")]
    assert u.remove_assignments == {}


def test_seats_added_updates_the_view():
    v1 = plan_event(ev("subscription.created", 1, snap()), {}).views[0]
    u = plan_event(ev("subscription.seats_added", 2, snap(seats=6)), {"sub-1": v1})
    assert u.views[0].seats == 6 and u.views[0].last_sequence == 2


def test_older_snapshot_is_ignored():
    v5 = plan_event(ev("subscription.stage_changed", 5, snap(stage=Stage.EXPIRED)), {}).views[0]
    u = plan_event(ev("subscription.renewed", 4, snap(stage=Stage.ACTIVE)), {"sub-1": v5})
    assert u.views == [] and not u.changed


def test_cancelled_removes_assignments_and_refund_says_so():
    v = plan_event(ev("subscription.created", 1, snap()), {}).views[0]
    u = plan_event(
        ev("subscription.stage_changed", 2, snap(stage=Stage.CANCELLED), stage_reason="shutoff"), {"sub-1": v}
    )
    assert u.remove_assignments == {"sub-1": "cancelled"}
    u = plan_event(ev("subscription.refunded", 2, snap(stage=Stage.CANCELLED)), {"sub-1": v})
    assert u.remove_assignments == {"sub-1": "refunded"}
    u = plan_event(ev("subscription.stage_changed", 2, snap(stage=Stage.SUSPENDED)), {"sub-1": v})
    assert u.remove_assignments == {}


def test_upgrade_links_both_sides_and_sets_the_overlap_end():
    until = NOW + timedelta(days=30)
    old = plan_event(ev("subscription.created", 1, snap("old")), {}).views[0]
    u = plan_event(
        ev(
            "subscription.upgraded",
            7,
            snap("old"),
            snap("new", product="ACD"),
            old_subscription_id="old",
            new_subscription_id="new",
            old_access_until_time=until,
        ),
        {"old": old},
    )
    by_id = {v.subscription_id: v for v in u.views}
    assert by_id["old"].upgraded_to_subscription_id == "new"
    assert by_id["old"].access_until_time == until
    assert by_id["new"].upgraded_from_subscription_id == "old"
    assert by_id["new"].access_until_time is None
    # a later snapshot of the old side without the field keeps the overlap end
    later = plan_event(ev("subscription.changed", 8, snap("old")), {"old": by_id["old"]}).views[0]
    assert later.access_until_time == until and later.upgraded_to_subscription_id == "new"
