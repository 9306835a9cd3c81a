"""Calendar rules of rules §2: dates are calendar dates in the subscription's time zone.

A term starts at local midnight of its start date. Renewal dates are whole terms from the **anchor
date** (python-dateutil's `relativedelta` clamps to the month's last day and never drifts: bought
Jan 31 monthly -> Feb 29, Mar 31, Apr 30). The renewal instant is local midnight of the renewal date;
the expiry instant is one second before it (the day before at 23:59:59 local).

Where local midnight does not exist (a DST gap at 00:00, as in some American zones), the day starts at
the first instant that exists; `zoneinfo` gives exactly that for `fold=0`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from shared.errors import InvalidInput

ONE_SECOND = timedelta(seconds=1)
TRIAL_DAYS = 30
RENEWAL_WINDOW_DAYS = 90
UPGRADE_OVERLAP_DAYS = 30


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or InvalidInput (cached: ZoneInfo keeps only a few zones strongly)."""
    if not name:
        raise InvalidInput("a time zone (IANA name such as Europe/Oslo) is required", field="time_zone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f"unknown time zone {name!r}", field="time_zone") from None


def add_months(anchor: date, months: int) -> date:
    """`anchor` plus whole months, clamped to the month's last day (never drifting from the anchor)."""
    return anchor + relativedelta(months=months)


@lru_cache(maxsize=65536)
def local_midnight(day: date, tz: str) -> datetime:
    """The first instant of `day` in zone `tz`, as an aware UTC datetime (cached: a sweep asks for the same
    few days in the same few zones for many subscriptions)."""
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date of `instant` in zone `tz`."""
    if instant.tzinfo is None:
        raise InvalidInput("instants must carry a UTC offset")
    return instant.astimezone(zone(tz)).date()


def renewal_instant(renewal_date: date, tz: str) -> datetime:
    """Local midnight of the renewal date (what the customer sees with auto-renew on)."""
    return local_midnight(renewal_date, tz)


def expiry_date(renewal_date: date) -> date:
    """The day before the renewal date (what the customer sees with auto-renew off)."""
    return renewal_date - timedelta(days=1)


def expiry_instant(renewal_date: date, tz: str) -> datetime:
    """One second before the renewal instant: 23:59:59 local of the expiry date."""
    return renewal_instant(renewal_date, tz) - ONE_SECOND


def days_between(start: date, end: date) -> int:
    """Calendar days from `start` to `end` (end exclusive); DST never changes a count of dates."""
    return (end - start).days


def trial_end_date(start: date) -> date:
    """Last day of a 30-day trial that starts on `start` (the trial covers `start` and 29 more days)."""
    return start + timedelta(days=TRIAL_DAYS - 1)


def renewal_window_opens(renewal_date: date) -> date:
    """First day on which a manual renewal or a product switch is possible: 90 days before renewal."""
    return renewal_date - timedelta(days=RENEWAL_WINDOW_DAYS)


def day_number(first_day: date, today: date) -> int:
    """Day N of a period: the first day is day 1, the next calendar day day 2, and so on (local dates).

    A refund window of 30 days is open on days 1..30: bought 2024-06-10, day 30 is 2024-07-09 and day 31
    (refused) is 2024-07-10.
    """
    return (today - first_day).days + 1
