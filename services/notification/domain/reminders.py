"""Reminders this service schedules itself: invoice reminders to the payers (rules §8: "payers: invoices
and invoice reminders") and the partner's renewal opportunity (rules §9: "90 days before the renewal date
of each subscription it sold").

An open invoice is recalled to its payers (and the buyer) on the days the policy table names, counted
back from its due date: by default 7 days before it and on the due date itself. A reminder comes due at
the start of its day in the invoice's time zone (local midnight, the instant billing's sweep also
works at), is made only while the invoice is open when it comes due, and is not scheduled when its day
has begun before the invoice was issued (the invoice's own e-mail tells the due date then).

A renewal opportunity comes due at the start of the day 90 days before a partner-sold subscription's
renewal date, in the subscription's zone; it is scheduled when the partner's quote is accepted and again
when the subscription renews, once per (subscription, renewal date), and not when that day has begun
already.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: The event type of a reminder the notification service schedules itself (no other service sends it).
INVOICE_REMINDER_EVENT = "notification.invoice_reminder"

#: The event type of a partner's renewal opportunity (scheduled here from quote and renewal events).
RENEWAL_OPPORTUNITY_EVENT = "notification.renewal_opportunity"

#: Days before the renewal date the partner is told (rules §9; the renewal quote window opens then).
OPPORTUNITY_DAYS_BEFORE = 90

_NAMESPACE = uuid.UUID("6f1c2f4e-5d0b-4b8e-9a57-2b7f3c1e8d90")


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    """Days before the due date on which an open invoice is recalled (0: on the due date)."""

    days_before_due: tuple[int, ...] = (7, 0)

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.days_before_due) or len(set(self.days_before_due)) != len(
            self.days_before_due
        ):
            raise ValueError("reminder days are distinct and not negative")


@dataclass(frozen=True, slots=True)
class ScheduledReminder:
    invoice_id: str
    days_before: int
    due_time: datetime  # the start of the reminder's day in the invoice's zone, in UTC

    @property
    def event_id(self) -> str:
        return reminder_event_id(self.invoice_id, self.days_before)


def reminder_event_id(invoice_id: str, days_before: int) -> str:
    """The same id for the same reminder of the same invoice, however often it is scheduled."""
    return str(uuid.uuid5(_NAMESPACE, f"{invoice_id}|{days_before}"))


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def schedule(
    policy: ReminderPolicy, invoice_id: str, due_date: date, zone: ZoneInfo, issued_at: datetime
) -> list[ScheduledReminder]:
    """The reminders of an invoice due on `due_date`, issued at `issued_at`, earliest first."""
    out = []
    for days in sorted(policy.days_before_due, reverse=True):
        at = start_of_day(due_date - timedelta(days=days), zone)
        if at > issued_at:
            out.append(ScheduledReminder(invoice_id, days, at))
    return out


@dataclass(frozen=True, slots=True)
class ScheduledOpportunity:
    subscription_id: str
    renewal_date: date
    due_time: datetime

    @property
    def event_id(self) -> str:
        return opportunity_event_id(self.subscription_id, self.renewal_date)


def opportunity_event_id(subscription_id: str, renewal_date: date) -> str:
    """The same id for the same renewal of the same subscription, however often it is scheduled."""
    return str(uuid.uuid5(_NAMESPACE, f"opportunity|{subscription_id}|{renewal_date.isoformat()}"))


def schedule_opportunity(
    subscription_id: str, renewal_date: date, zone: ZoneInfo, now: datetime
) -> ScheduledOpportunity | None:
    """The partner's renewal opportunity of a subscription renewing on `renewal_date` (None when its day,
    90 days before, has begun by `now`)."""
    at = start_of_day(renewal_date - timedelta(days=OPPORTUNITY_DAYS_BEFORE), zone)
    if at <= now:
        return None
    return ScheduledOpportunity(subscription_id, renewal_date, at)
