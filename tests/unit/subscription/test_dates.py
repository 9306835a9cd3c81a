"""Rules §2 dates: renewal and expiry from the anchor, in the subscription's zone."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.subscription.domain import dates
from services.subscription.domain.model import Term
from shared.errors import InvalidInput

from .factory import OSLO, at, bought

DST_ZONES = [
    "Europe/Oslo",
    "America/New_York",
    "America/Santiago",  # DST starts at local midnight: 00:00 does not exist on that day
    "America/Havana",
    "Asia/Beirut",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Auckland",
    "UTC",
]


def test_oslo_annual_auto_renew_off_expires_the_day_before_at_23_59_59_local():
    sub = bought(start_date=date(2024, 6, 10), term=Term.ANNUAL, auto_renew=False)
    assert sub.expiry_date == date(2025, 6, 9)
    local = sub.expiry_time.astimezone(ZoneInfo(OSLO))
    assert (local.date(), local.hour, local.minute, local.second) == (date(2025, 6, 9), 23, 59, 59)


def test_oslo_annual_auto_renew_on_renews_at_local_midnight():
    sub = bought(start_date=date(2024, 6, 10), term=Term.ANNUAL, auto_renew=True)
    assert sub.renewal_date == date(2025, 6, 10)
    local = sub.renewal_time.astimezone(ZoneInfo(OSLO))
    assert (local.date(), local.hour, local.minute, local.second) == (date(2025, 6, 10), 0, 0, 0)
    # Oslo is UTC+2 in June: midnight local is 22:00 UTC the day before.
    assert sub.renewal_time == datetime(2025, 6, 9, 22, 0, tzinfo=UTC)
    assert sub.renewal_time - sub.expiry_time == timedelta(seconds=1)


def test_monthly_from_jan_31_clamps_to_month_end_without_drifting():
    anchor = date(2024, 1, 31)
    assert [dates.add_months(anchor, k) for k in (1, 2, 3, 4)] == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]
    assert dates.add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)


def test_monthly_subscription_renewals_follow_the_anchor():
    from services.subscription.domain import subscription as ops
    from services.subscription.domain.catalog import demo_catalog

    catalog = demo_catalog()
    sub = bought(catalog, start_date=date(2024, 1, 31), term=Term.MONTHLY)
    seen = [sub.renewal_date]
    for _ in range(3):
        sub = ops.renew_term(sub, catalog, sub.renewal_time).subscription
        seen.append(sub.renewal_date)
    assert seen == [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)]
    assert sub.current_period_start_date == date(2024, 4, 30)


def test_midnight_in_a_dst_gap_starts_the_day_at_the_first_existing_instant():
    # Chile moved clocks from 00:00 to 01:00 on 2024-09-08.
    tz = "America/Santiago"
    start = dates.local_midnight(date(2024, 9, 8), tz)
    local = start.astimezone(ZoneInfo(tz))
    assert local.date() == date(2024, 9, 8)
    assert (local.hour, local.minute) == (1, 0)
    assert (start - timedelta(seconds=1)).astimezone(ZoneInfo(tz)).date() == date(2024, 9, 7)


def test_day_number_counts_the_first_day_as_day_1():
    assert dates.day_number(date(2024, 6, 10), date(2024, 6, 10)) == 1
    assert dates.day_number(date(2024, 6, 10), date(2024, 7, 9)) == 30
    assert dates.day_number(date(2024, 6, 10), date(2024, 7, 10)) == 31


def test_trial_lasts_30_days():
    assert dates.trial_end_date(date(2024, 6, 10)) == date(2024, 7, 9)
    assert dates.days_between(date(2024, 6, 10), dates.trial_end_date(date(2024, 6, 10))) + 1 == 30


def test_unknown_zone_is_bad_input():
    with pytest.raises(InvalidInput) as e:
        dates.local_midnight(date(2024, 1, 1), "Mars/Olympus")
    assert e.value.field_violations[0][0] == "time_zone"
    with pytest.raises(InvalidInput):
        dates.local_date(datetime(2024, 1, 1), OSLO)  # naive instants are refused


def test_local_date_of_an_instant_uses_the_zone():
    instant = datetime(2024, 6, 9, 22, 30, tzinfo=UTC)
    assert dates.local_date(instant, OSLO) == date(2024, 6, 10)
    assert dates.local_date(instant, "America/New_York") == date(2024, 6, 9)
    assert at(date(2024, 6, 10)).astimezone(ZoneInfo(OSLO)).date() == date(2024, 6, 10)


# -- properties ---------------------------------------------------------------------------------------

anchors = st.dates(min_value=date(1996, 1, 1), max_value=date(2096, 12, 31))
zones = st.sampled_from(DST_ZONES)


@settings(max_examples=300, deadline=None)
@given(anchor=anchors, months=st.integers(min_value=0, max_value=120))
def test_add_months_clamps_to_the_last_day_and_never_drifts(anchor, months):
    d = dates.add_months(anchor, months)
    total = anchor.year * 12 + anchor.month - 1 + months
    assert (d.year, d.month) == (total // 12, total % 12 + 1)
    last = calendar.monthrange(d.year, d.month)[1]
    assert d.day == min(anchor.day, last)
    # Stepping one term at a time from the anchor lands on the same dates as one big step.
    if months:
        assert dates.add_months(anchor, months) >= dates.add_months(anchor, months - 1)


@settings(max_examples=300, deadline=None)
@given(anchor=anchors, k=st.integers(min_value=1, max_value=40), term=st.sampled_from(list(Term)), tz=zones)
def test_renewal_and_expiry_instants_bracket_local_midnight(anchor, k, term, tz):
    renewal = dates.add_months(anchor, k * term.months)
    r = dates.renewal_instant(renewal, tz)
    e = dates.expiry_instant(renewal, tz)
    zi = ZoneInfo(tz)
    assert r - e == timedelta(seconds=1)
    assert r.astimezone(zi).date() == renewal
    assert e.astimezone(zi).date() == renewal - timedelta(days=1) == dates.expiry_date(renewal)
    # r is the first instant of the local day: one second earlier is still the previous day, and the
    # local time of r is midnight unless midnight does not exist (then it is the end of the DST gap).
    local = r.astimezone(zi)
    if local.hour or local.minute:
        naive_midnight = datetime.combine(renewal, datetime.min.time())
        assert naive_midnight.replace(tzinfo=zi).astimezone(UTC).astimezone(zi).replace(tzinfo=None) != (
            naive_midnight
        )
    # Renewal instants increase strictly from one term to the next.
    nxt = dates.renewal_instant(dates.add_months(anchor, (k + 1) * term.months), tz)
    assert nxt > r


@settings(max_examples=200, deadline=None)
@given(start=anchors, term=st.sampled_from(list(Term)), tz=zones)
def test_term_days_are_calendar_days_whatever_the_dst_changes(start, term, tz):
    renewal = dates.add_months(start, term.months)
    days = dates.days_between(start, renewal)
    span = dates.renewal_instant(renewal, tz) - dates.local_midnight(start, tz)
    # DST moves the instants by at most a few hours; the count of days is the count of dates.
    assert abs(span - timedelta(days=days)) <= timedelta(hours=2)
    lo, hi = {Term.MONTHLY: (28, 31), Term.ANNUAL: (365, 366), Term.THREE_YEAR: (1095, 1097)}[term]
    assert lo <= days <= hi
