"""Time-driven rules of SPEC §3–§4: the shutoff schedule, renewal reminders and what is due when.

The shutoff starts at the earlier of the end of a term that was not renewed and the due date of an
unpaid invoice. From that day (local midnight in the subscription's zone) it is Expired for 15 days,
then Suspended for 30 days (annual, 3-year) or 15 days (monthly), then Cancelled. The durations are
one policy table. All instants are computed when the shutoff starts and stored, so the sweep moves
stages with plain comparisons (and set-based updates) instead of calendar arithmetic per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.subscription.domain import dates
from services.subscription.domain.model import Stage, Term


@dataclass(frozen=True)
class ShutoffPolicyTable:
    """How long each stage of the shutoff lasts, in days."""

    expired_days: int = 15
    suspended_days: dict[Term, int] = field(
        default_factory=lambda: {Term.MONTHLY: 15, Term.ANNUAL: 30, Term.THREE_YEAR: 30}
    )
    reminder_days_before_expiry: tuple[int, ...] = (45, 30, 4)

    def total_days(self, term: Term) -> int:
        return self.expired_days + self.suspended_days[term]


POLICY = ShutoffPolicyTable()

# Why a shutoff started (the reason on the Active → Expired transition).
TERM_ENDED = "term_ended"
PAYMENT_FAILED = "payment_failed"
INVOICE_OVERDUE = "invoice_overdue"


@dataclass(frozen=True)
class ShutoffSchedule:
    """The instants of one shutoff, fixed when it starts."""

    start_date: date
    expired_time: datetime
    suspended_time: datetime
    cancelled_time: datetime
    reason: str

    def stage_at(self, now: datetime) -> Stage:
        if now >= self.cancelled_time:
            return Stage.CANCELLED
        if now >= self.suspended_time:
            return Stage.SUSPENDED
        return Stage.EXPIRED


def shutoff_start_date(unrenewed_renewal_date: date | None, overdue_due_date: date | None) -> date:
    """The earlier of the end of an unrenewed term (its renewal date) and an unpaid invoice's due date."""
    candidates = [d for d in (unrenewed_renewal_date, overdue_due_date) if d is not None]
    if not candidates:
        raise ValueError("a shutoff needs an unrenewed term end or an overdue invoice")
    return min(candidates)


def shutoff_schedule(
    start_date: date, term: Term, tz: str, reason: str, policy: ShutoffPolicyTable = POLICY
) -> ShutoffSchedule:
    suspended = start_date + timedelta(days=policy.expired_days)
    cancelled = suspended + timedelta(days=policy.suspended_days[term])
    return ShutoffSchedule(
        start_date=start_date,
        expired_time=dates.local_midnight(start_date, tz),
        suspended_time=dates.local_midnight(suspended, tz),
        cancelled_time=dates.local_midnight(cancelled, tz),
        reason=reason,
    )


def reminder_time(renewal_date: date, days_before: int, tz: str) -> datetime:
    """Local midnight `days_before` days before the expiry date (the day before the renewal date)."""
    return dates.local_midnight(dates.expiry_date(renewal_date) - timedelta(days=days_before), tz)


def due_reminder(
    renewal_date: date,
    tz: str,
    now: datetime,
    last_sent_days: int | None,
    policy: ShutoffPolicyTable = POLICY,
) -> int | None:
    """The reminder to send now, if any: the latest one whose time has come and that is nearer to expiry
    than the last one sent in this term (`last_sent_days`, None when none was sent). When a sweep ran
    late and several came due at once, only the nearest is sent: the customer gets one reminder, not
    three at the same moment. Nothing is sent once the term has ended."""
    if now >= dates.renewal_instant(renewal_date, tz):
        return None
    due = [d for d in policy.reminder_days_before_expiry if reminder_time(renewal_date, d, tz) <= now]
    if not due:
        return None
    nearest = min(due)
    if last_sent_days is not None and nearest >= last_sent_days:
        return None
    return nearest


def next_reminder_time(
    renewal_date: date, tz: str, last_sent_days: int | None, policy: ShutoffPolicyTable = POLICY
) -> datetime | None:
    """When the next reminder of this term comes due (None when all were sent)."""
    pending = [d for d in policy.reminder_days_before_expiry if last_sent_days is None or d < last_sent_days]
    if not pending:
        return None
    return reminder_time(renewal_date, max(pending), tz)


def next_action_time(*candidates: datetime | None) -> datetime | None:
    """The earliest instant at which the sweep has something to do for a subscription."""
    present = [c for c in candidates if c is not None]
    return min(present) if present else None
