"""Rules §4 shutoff durations and §8 reminder days, with the rules' own dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.subscription.domain import dates
from services.subscription.domain.lifecycle import (
    POLICY,
    TERM_ENDED,
    due_reminder,
    next_reminder_time,
    shutoff_schedule,
    shutoff_start_date,
)
from services.subscription.domain.model import Stage, Term

OSLO = "Europe/Oslo"


def oslo(y, m, d, hh=0, mm=0, ss=0):
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(OSLO)).astimezone(UTC)


def test_annual_shutoff_expired_15_days_suspended_30_then_cancelled():
    # Annual ACDLT bought 2024-06-10 in Oslo, auto-renew off: expires 2025-06-09 23:59:59.
    s = shutoff_schedule(date(2025, 6, 10), Term.ANNUAL, OSLO, TERM_ENDED)
    assert s.expired_time == oslo(2025, 6, 10)
    assert s.suspended_time == oslo(2025, 6, 25)
    assert s.cancelled_time == oslo(2025, 7, 25)
    assert s.stage_at(oslo(2025, 6, 24, 23, 59, 59)) is Stage.EXPIRED
    assert s.stage_at(oslo(2025, 6, 25)) is Stage.SUSPENDED
    assert s.stage_at(oslo(2025, 7, 24, 23, 59, 59)) is Stage.SUSPENDED
    assert s.stage_at(oslo(2025, 7, 25)) is Stage.CANCELLED


def test_monthly_shutoff_is_cancelled_30_days_after_expiry():
    s = shutoff_schedule(date(2024, 3, 1), Term.MONTHLY, OSLO, TERM_ENDED)
    assert s.suspended_time == oslo(2024, 3, 16)
    assert s.cancelled_time == oslo(2024, 3, 31)
    assert POLICY.total_days(Term.MONTHLY) == 30
    assert POLICY.total_days(Term.ANNUAL) == POLICY.total_days(Term.THREE_YEAR) == 45


def test_shutoff_starts_at_the_earlier_of_term_end_and_unpaid_due_date():
    # A pay-by-invoice renewal: the term renewed to 2026-06-10, but the invoice was due 2025-07-10.
    assert shutoff_start_date(date(2026, 6, 10), date(2025, 7, 10)) == date(2025, 7, 10)
    assert shutoff_start_date(date(2025, 6, 10), None) == date(2025, 6, 10)
    assert shutoff_start_date(None, date(2025, 7, 10)) == date(2025, 7, 10)


def test_reminders_45_30_and_4_days_before_expiry_each_once():
    renewal = date(2025, 6, 10)  # expiry date 2025-06-09
    assert next_reminder_time(renewal, OSLO, None) == oslo(2025, 4, 25)  # 45 days before 06-09
    assert due_reminder(renewal, OSLO, oslo(2025, 4, 24, 23, 59), None) is None
    assert due_reminder(renewal, OSLO, oslo(2025, 4, 25), None) == 45
    assert due_reminder(renewal, OSLO, oslo(2025, 4, 26), 45) is None  # sent already
    assert next_reminder_time(renewal, OSLO, 45) == oslo(2025, 5, 10)  # 30 days before
    assert due_reminder(renewal, OSLO, oslo(2025, 5, 10), 45) == 30
    assert next_reminder_time(renewal, OSLO, 30) == oslo(2025, 6, 5)  # 4 days before
    assert due_reminder(renewal, OSLO, oslo(2025, 6, 5), 30) == 4
    assert next_reminder_time(renewal, OSLO, 4) is None
    assert due_reminder(renewal, OSLO, oslo(2025, 6, 9, 12), 4) is None


def test_a_late_sweep_sends_only_the_nearest_reminder_and_none_after_the_term():
    renewal = date(2025, 6, 10)
    assert due_reminder(renewal, OSLO, oslo(2025, 6, 6), None) == 4
    assert due_reminder(renewal, OSLO, oslo(2025, 6, 10), None) is None


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    st.sampled_from(list(Term)),
    st.sampled_from(["Europe/Oslo", "America/New_York", "Australia/Sydney", "America/Santiago", "UTC"]),
)
def test_stages_are_whole_local_days_in_order(start, term, tz):
    s = shutoff_schedule(start, term, tz, TERM_ENDED)
    assert s.expired_time < s.suspended_time < s.cancelled_time
    assert (dates.local_date(s.suspended_time, tz) - start).days == POLICY.expired_days
    assert (dates.local_date(s.cancelled_time, tz) - start).days == POLICY.total_days(term)
