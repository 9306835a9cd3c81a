"""Seat rules: never more users than seats, read-only while Suspended, none once Cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.entitlement.domain.model import Plan, ShutoffPolicy, Stage, SubscriptionView
from services.entitlement.domain.seats import check_assign, check_unassign, ensure_reportable
from shared.errors import AlreadyExists, LimitReached, NotFound, RuleViolation

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def view(stage=Stage.ACTIVE, seats=3, until=None) -> SubscriptionView:
    return SubscriptionView(
        subscription_id="sub-1",
        account_id="acct-1",
        product_code="ACDLT",
        product_name="AutoCAD LT",
        plan=Plan.STANDARD,
        seats=seats,
        stage=stage,
        shutoff_policy=ShutoffPolicy.STANDARD,
        access_until_time=until,
    )


def test_assigning_one_more_user_than_seats_is_refused():
    v = view(seats=3)
    assigned: list[str] = []
    for i in range(3):
        check_assign(v, assigned, f"u{i}@example.com", NOW)
        assigned.append(f"u{i}@example.com")
    with pytest.raises(LimitReached) as e:
        check_assign(v, assigned, "u3@example.com", NOW)
    assert e.value.reason == "SEAT_LIMIT_REACHED"


def test_same_user_twice_is_refused():
    with pytest.raises(AlreadyExists) as e:
        check_assign(view(), ["a@example.com"], "a@example.com", NOW)
    assert e.value.reason == "SEAT_ALREADY_ASSIGNED"


@pytest.mark.parametrize("stage", [Stage.TRIAL, Stage.ACTIVE, Stage.EXPIRED])
def test_trial_active_and_expired_take_changes(stage):
    check_assign(view(stage), [], "a@example.com", NOW)
    check_unassign(view(stage), ["a@example.com"], "a@example.com", NOW)


def test_suspended_is_read_only():
    for check in (check_assign, check_unassign):
        with pytest.raises(RuleViolation) as e:
            check(view(Stage.SUSPENDED), ["a@example.com"], "b@example.com", NOW)
        assert e.value.reason == "ASSIGNMENTS_READ_ONLY"


def test_cancelled_takes_no_assignments():
    with pytest.raises(RuleViolation) as e:
        check_assign(view(Stage.CANCELLED), [], "a@example.com", NOW)
    assert e.value.reason == "SUBSCRIPTION_ENDED"


def test_old_side_of_upgrade_changes_during_overlap_only():
    until = NOW + timedelta(days=30)
    check_assign(view(until=until), [], "a@example.com", NOW)
    check_unassign(view(until=until), ["a@example.com"], "a@example.com", until - timedelta(seconds=1))
    with pytest.raises(RuleViolation) as e:
        check_unassign(view(until=until), ["a@example.com"], "a@example.com", until)
    assert e.value.reason == "SUBSCRIPTION_ENDED"


def test_unassigning_someone_without_a_seat():
    with pytest.raises(NotFound) as e:
        check_unassign(view(), ["a@example.com"], "b@example.com", NOW)
    assert e.value.reason == "ASSIGNMENT_NOT_FOUND"


def test_seats_lowered_below_assigned_keeps_them_but_takes_no_new_one():
    v = view(seats=1)
    with pytest.raises(LimitReached):
        check_assign(v, ["a@example.com", "b@example.com"], "c@example.com", NOW)
    check_unassign(v, ["a@example.com", "b@example.com"], "a@example.com", NOW)


@pytest.mark.parametrize("stage", [Stage.TRIAL, Stage.EXPIRED, Stage.SUSPENDED, Stage.CANCELLED])
def test_report_refused_outside_active(stage):
    with pytest.raises(RuleViolation) as e:
        ensure_reportable(view(stage), NOW)
    assert e.value.reason == "REPORT_NOT_ACTIVE"


def test_report_given_while_active_and_not_after_the_overlap():
    ensure_reportable(view(Stage.ACTIVE), NOW)
    with pytest.raises(RuleViolation):
        ensure_reportable(view(Stage.ACTIVE, until=NOW), NOW)


@given(seats=st.integers(0, 8), users=st.lists(st.integers(0, 12), max_size=20))
def test_assigned_never_exceed_seats(seats, users):
    v = view(seats=seats)
    assigned: list[str] = []
    for u in users:
        email = f"u{u}@example.com"
        try:
            check_assign(v, assigned, email, NOW)
        except (LimitReached, AlreadyExists):
            continue
        assigned.append(email)
    assert len(assigned) <= seats
    assert len(assigned) == min(seats, len(set(users)))
