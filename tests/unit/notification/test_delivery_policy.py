"""Retries with back-off, shutoff dates in stage e-mails, and preview fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notification.domain.delivery import RetryPolicy, after_failure, is_permanent_smtp_code
from services.notification.domain.model import Kind, Status
from services.notification.domain.samples import apply_fields, sample_facts
from services.notification.domain.shutoff import ShutoffPolicy
from shared.errors import InvalidInput

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def test_back_off_doubles_from_thirty_seconds_up_to_an_hour() -> None:
    policy = RetryPolicy()
    delays = [policy.delay_after(n).total_seconds() for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_temporary_failure_is_retried_later() -> None:
    outcome = after_failure(RetryPolicy(), 3, NOW)
    assert outcome.status is Status.PENDING
    assert outcome.next_attempt_time == NOW + timedelta(seconds=120)


def test_the_last_attempt_fails_for_good() -> None:
    policy = RetryPolicy(max_attempts=5)
    assert after_failure(policy, 4, NOW).status is Status.PENDING
    final = after_failure(policy, 5, NOW)
    assert final.status is Status.FAILED and final.next_attempt_time is None


def test_a_permanent_failure_is_not_retried() -> None:
    assert after_failure(RetryPolicy(), 1, NOW, permanent=True).status is Status.FAILED


def test_the_default_policy_keeps_trying_for_two_days() -> None:
    policy = RetryPolicy()
    total = sum((policy.delay_after(n) for n in range(1, policy.max_attempts)), timedelta())
    assert total > timedelta(days=2)  # the attempt count never cuts the window short
    first = NOW - timedelta(days=1, hours=23)
    assert after_failure(policy, 50, NOW, first_attempt_time=first).status is Status.PENDING
    late = after_failure(policy, 51, NOW + timedelta(hours=1), first_attempt_time=first)
    assert late.status is Status.FAILED


@given(st.integers(min_value=1, max_value=10_000))
def test_delays_never_shrink_and_never_exceed_the_cap(attempts: int) -> None:
    policy = RetryPolicy()
    assert policy.first_delay <= policy.delay_after(attempts) <= policy.max_delay
    assert policy.delay_after(attempts) <= policy.delay_after(attempts + 1)


@pytest.mark.parametrize(
    ("code", "permanent"), [(550, True), (553, True), (421, False), (451, False), (None, False)]
)
def test_smtp_reply_codes(code, permanent) -> None:
    assert is_permanent_smtp_code(code) is permanent


def test_bad_retry_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(first_delay=timedelta(0))
    with pytest.raises(ValueError):
        RetryPolicy(first_delay=timedelta(hours=2), max_delay=timedelta(hours=1))


def test_shutoff_dates_follow_the_policy_table() -> None:
    policy = ShutoffPolicy()
    assert policy.next_stage_date("EXPIRED", "ANNUAL", date(2025, 6, 10)) == date(2025, 6, 25)
    assert policy.next_stage_date("SUSPENDED", "ANNUAL", date(2025, 6, 25)) == date(2025, 7, 25)
    assert policy.next_stage_date("SUSPENDED", "THREE_YEAR", date(2025, 6, 25)) == date(2025, 7, 25)
    assert policy.next_stage_date("SUSPENDED", "MONTHLY", date(2025, 6, 25)) == date(2025, 7, 10)
    assert policy.next_stage_date("CANCELLED", "ANNUAL", date(2025, 7, 25)) is None
    # the whole shutoff: 45 days annual, 30 days monthly
    start = date(2025, 1, 31)
    annual = policy.next_stage_date("SUSPENDED", "ANNUAL", policy.next_stage_date("EXPIRED", "ANNUAL", start))
    monthly = policy.next_stage_date(
        "SUSPENDED", "MONTHLY", policy.next_stage_date("EXPIRED", "MONTHLY", start)
    )
    assert (annual - start).days == 45 and (monthly - start).days == 30


def test_preview_fields_replace_the_sample_data() -> None:
    facts = apply_fields(
        sample_facts(Kind.SEATS_ADDED),
        {
            "amount": "737.845",
            "currency_code": "EUR",
            "seats_added": "3",
            "due_date": "2024-12-31",
            "auto_renew": "false",
            "order_number": "ORD-9",
        },
    )
    assert facts.amount == Decimal("737.85")  # half up to the cent
    assert facts.currency_code == "EUR"
    assert facts.seats_added == 3
    assert facts.due_date == date(2024, 12, 31)
    assert facts.auto_renew is False
    assert facts.order_number == "ORD-9"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "12,50"}, "fields[amount]"),
        ({"amount": "1.5"}, None),
        ({"seats": "three"}, "fields[seats]"),
        ({"due_date": "31.12.2024"}, "fields[due_date]"),
        ({"auto_renew": "maybe"}, "fields[auto_renew]"),
        ({"colour": "blue"}, "fields[colour]"),
        ({"currency_code": "XXX"}, "fields[currency_code]"),
    ],
)
def test_bad_preview_fields_are_refused(fields, field) -> None:
    if field is None:  # valid: amounts need not carry all decimals
        assert apply_fields(sample_facts(Kind.ORDER_CONFIRMATION), fields).amount == Decimal("1.50")
        return
    with pytest.raises(InvalidInput) as err:
        apply_fields(sample_facts(Kind.ORDER_CONFIRMATION), fields)
    assert err.value.reason == "INVALID_FIELD"
    assert err.value.field_violations[0][0] == field
