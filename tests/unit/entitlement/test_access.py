"""The rules §4 capability table, cell by cell, and the best level over several seats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.entitlement.domain.access import best_access, capability_matrix, decide, level_for
from services.entitlement.domain.model import (
    AccessLevel,
    AccessReason,
    Capability,
    Grant,
    Plan,
    ShutoffPolicy,
    Stage,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

PA, UM, DL, REP, SUP = (
    Capability.PRODUCT_ACCESS,
    Capability.USER_MANAGEMENT,
    Capability.DOWNLOADS,
    Capability.REPORTING,
    Capability.SUPPORT,
)
FULL, LIMITED, READ_ONLY, SELF_HELP, NONE, PREMIUM = (
    AccessLevel.FULL,
    AccessLevel.LIMITED,
    AccessLevel.READ_ONLY,
    AccessLevel.SELF_HELP,
    AccessLevel.NONE,
    AccessLevel.PREMIUM,
)

# rules §4, written out again here (not imported) so that a change to the table fails a test.
STANDARD_TABLE = {
    (PA, Stage.ACTIVE): FULL,
    (PA, Stage.EXPIRED): FULL,
    (PA, Stage.SUSPENDED): NONE,
    (PA, Stage.CANCELLED): NONE,
    (UM, Stage.ACTIVE): FULL,
    (UM, Stage.EXPIRED): FULL,
    (UM, Stage.SUSPENDED): READ_ONLY,
    (UM, Stage.CANCELLED): NONE,
    (DL, Stage.ACTIVE): FULL,
    (DL, Stage.EXPIRED): LIMITED,
    (DL, Stage.SUSPENDED): NONE,
    (DL, Stage.CANCELLED): NONE,
    (REP, Stage.ACTIVE): FULL,
    (REP, Stage.EXPIRED): NONE,
    (REP, Stage.SUSPENDED): NONE,
    (REP, Stage.CANCELLED): NONE,
    (SUP, Stage.ACTIVE): FULL,
    (SUP, Stage.EXPIRED): SELF_HELP,
    (SUP, Stage.SUSPENDED): SELF_HELP,
    (SUP, Stage.CANCELLED): SELF_HELP,
}
# IMMEDIATE products: product access, downloads and reporting end the moment they expire.
IMMEDIATE_TABLE = dict(STANDARD_TABLE)
IMMEDIATE_TABLE.update(
    {
        (PA, Stage.EXPIRED): NONE,
        (DL, Stage.EXPIRED): NONE,
        (REP, Stage.EXPIRED): NONE,
    }
)


def grant(stage=Stage.ACTIVE, *, sid="sub-1", policy=ShutoffPolicy.STANDARD, plan=Plan.STANDARD, until=None):
    return Grant(
        subscription_id=sid,
        product_code="ACD",
        plan=plan,
        stage=stage,
        shutoff_policy=policy,
        access_until_time=until,
    )


@pytest.mark.parametrize(("capability", "stage"), list(STANDARD_TABLE))
def test_standard_product_table_cell(capability, stage):
    assert level_for(stage, capability, ShutoffPolicy.STANDARD) is STANDARD_TABLE[(capability, stage)]
    d = decide(grant(stage), capability, NOW)
    assert d.level is STANDARD_TABLE[(capability, stage)]
    assert d.allowed is (d.level is not NONE)
    assert d.stage is stage


@pytest.mark.parametrize(("capability", "stage"), list(IMMEDIATE_TABLE))
def test_immediate_product_table_cell(capability, stage):
    d = decide(grant(stage, policy=ShutoffPolicy.IMMEDIATE), capability, NOW)
    assert d.level is IMMEDIATE_TABLE[(capability, stage)]


def test_immediate_product_reason_names_the_shutoff():
    d = decide(grant(Stage.EXPIRED, policy=ShutoffPolicy.IMMEDIATE), DL, NOW)
    assert d.reason is AccessReason.IMMEDIATE_SHUTOFF
    # the standard product at the same stage keeps downloads without upgrades
    d = decide(grant(Stage.EXPIRED), DL, NOW)
    assert (d.level, d.reason) == (LIMITED, AccessReason.STAGE_EXPIRED)


def test_expired_downloads_are_limited_not_full():
    assert level_for(Stage.EXPIRED, DL) is LIMITED
    assert level_for(Stage.EXPIRED, REP) is NONE
    assert level_for(Stage.EXPIRED, SUP) is SELF_HELP


def test_premium_plan_gets_premium_support_while_active_only():
    assert decide(grant(Stage.ACTIVE, plan=Plan.PREMIUM), SUP, NOW).level is PREMIUM
    assert decide(grant(Stage.ACTIVE, plan=Plan.STANDARD), SUP, NOW).level is FULL
    for stage in (Stage.EXPIRED, Stage.SUSPENDED, Stage.CANCELLED):
        assert decide(grant(stage, plan=Plan.PREMIUM), SUP, NOW).level is SELF_HELP
    # the plan changes nothing else
    assert decide(grant(Stage.ACTIVE, plan=Plan.PREMIUM), PA, NOW).level is FULL


def test_trial_row_decision():
    m = capability_matrix(grant(Stage.TRIAL), NOW)
    assert m == {PA: FULL, UM: FULL, DL: FULL, REP: NONE, SUP: SELF_HELP}


def test_active_reason_is_granted_and_stage_reasons_otherwise():
    assert decide(grant(Stage.ACTIVE), PA, NOW).reason is AccessReason.GRANTED
    assert decide(grant(Stage.SUSPENDED), PA, NOW).reason is AccessReason.STAGE_SUSPENDED
    assert decide(grant(Stage.CANCELLED), SUP, NOW).reason is AccessReason.STAGE_CANCELLED


def test_upgrade_overlap_gives_access_until_access_until_time_then_none():
    until = NOW + timedelta(days=30)
    old = grant(Stage.ACTIVE, until=until)
    assert decide(old, PA, NOW).level is FULL
    assert decide(old, PA, until - timedelta(seconds=1)).level is FULL
    ended = decide(old, PA, until)
    assert (ended.level, ended.reason, ended.allowed) == (NONE, AccessReason.ACCESS_ENDED, False)
    assert decide(old, SUP, until).level is SELF_HELP
    assert decide(old, PA, NOW).access_until_time == until


def test_no_seat_gives_nothing():
    d = best_access([], PA, NOW)
    assert (d.allowed, d.level, d.reason, d.stage, d.subscription_id) == (
        False,
        NONE,
        AccessReason.NO_SEAT,
        None,
        "",
    )


def test_best_level_over_several_subscriptions_of_the_product():
    suspended = grant(Stage.SUSPENDED, sid="sub-s")
    expired = grant(Stage.EXPIRED, sid="sub-e")
    active = grant(Stage.ACTIVE, sid="sub-a")
    d = best_access([suspended, expired], DL, NOW)
    assert (d.level, d.subscription_id, d.stage) == (LIMITED, "sub-e", Stage.EXPIRED)
    d = best_access([suspended, expired, active], DL, NOW)
    assert (d.level, d.subscription_id) == (FULL, "sub-a")
    # user management: Suspended's READ_ONLY beats nothing else but loses to Expired's FULL
    assert best_access([suspended], UM, NOW).level is READ_ONLY
    assert best_access([suspended, expired], UM, NOW).subscription_id == "sub-e"


def test_best_level_prefers_premium_support():
    d = best_access([grant(sid="std"), grant(sid="prem", plan=Plan.PREMIUM)], SUP, NOW)
    assert (d.level, d.subscription_id) == (PREMIUM, "prem")


def test_upgrade_overlap_old_and_new_best_is_the_open_ended_one():
    until = NOW + timedelta(days=30)
    old = grant(Stage.ACTIVE, sid="a-old", until=until)
    new = grant(Stage.ACTIVE, sid="z-new")
    d = best_access([old, new], PA, NOW)
    assert d.subscription_id == "z-new" and d.access_until_time is None
    assert best_access([old, new], PA, until + timedelta(days=1)).subscription_id == "z-new"


grants_strategy = st.lists(
    st.builds(
        grant,
        st.sampled_from(list(Stage)),
        sid=st.sampled_from(["s1", "s2", "s3", "s4"]),
        policy=st.sampled_from(list(ShutoffPolicy)),
        plan=st.sampled_from(list(Plan)),
        until=st.one_of(st.none(), st.sampled_from([NOW - timedelta(days=1), NOW + timedelta(days=1)])),
    ),
    max_size=4,
    unique_by=lambda g: g.subscription_id,  # one subscription has one state
)


@given(grants_strategy, st.sampled_from(list(Capability)))
def test_best_level_is_at_least_every_seat_and_independent_of_order(grants, capability):
    best = best_access(grants, capability, NOW)
    for g in grants:
        assert best.level.rank >= decide(g, capability, NOW).level.rank
    assert best_access(list(reversed(grants)), capability, NOW) == best
    if grants:
        assert best.subscription_id in {g.subscription_id for g in grants}
        assert best.level in {decide(g, capability, NOW).level for g in grants}
