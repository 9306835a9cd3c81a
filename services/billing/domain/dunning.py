"""Payment retries (dunning, rules §5): a declined renewal or installment charge is tried again on a
schedule before the invoice is left to the shutoff.

The schedule is a policy table: days after the first decline (default 1, 3, 5 and 7). A hard decline
(the card has expired, was reported lost or stolen, or its number is wrong; the method was removed) is not
retried: only a new payment method can pay, and adding one retries at once. Each retry is its own charge
with its own idempotency key, so a sweep that runs twice at the same instant charges once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.billing.domain.model import InvoiceKind, MethodType
from services.billing.domain.payment import METHOD_UNAVAILABLE

#: days after the first decline at which the charge is tried again
DEFAULT_SCHEDULE_DAYS: tuple[int, ...] = (1, 3, 5, 7)

#: decline reasons a retry cannot clear: the buyer must give another payment method
HARD_DECLINES: frozenset[str] = frozenset(
    {
        "expired_card",
        "lost_card",
        "stolen_card",
        "incorrect_number",
        "invalid_number",
        "invalid_token",
        METHOD_UNAVAILABLE,
    }
)

#: the invoices whose declined charge is retried: those of renewals and installments
RETRIED_KINDS: frozenset[InvoiceKind] = frozenset({InvoiceKind.RENEWAL, InvoiceKind.INSTALLMENT})


class RetryStatus(StrEnum):
    SCHEDULED = "scheduled"  # another attempt is due at `next_attempt_time`
    STOPPED = "stopped"  # no more automatic attempts (hard decline or schedule exhausted)
    PAID = "paid"  # an attempt (or another payment) settled the invoice
    CANCELLED = "cancelled"  # the invoice was voided or credited


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """Where an invoice stands in its retry schedule after an attempt."""

    attempts: int  # declined attempts so far (the first charge included)
    status: RetryStatus
    next_attempt_time: datetime | None
    last_reason: str

    @property
    def retrying(self) -> bool:
        return self.status == RetryStatus.SCHEDULED


def is_hard(decline_reason: str) -> bool:
    return decline_reason in HARD_DECLINES


def enters_dunning(kind: InvoiceKind, method: MethodType | None) -> bool:
    """A declined charge of this invoice is retried (card and PayPal renewals and installments)."""
    return kind in RETRIED_KINDS and method in (MethodType.CARD, MethodType.PAYPAL, None)


def after_decline(
    first_decline: datetime,
    attempts: int,
    decline_reason: str,
    schedule: tuple[int, ...] = DEFAULT_SCHEDULE_DAYS,
) -> RetryPlan:
    """The plan after the `attempts`-th declined attempt (1: the charge when the invoice was issued).

    Retries fall at the schedule's days after the first decline, at the same time of day."""
    if attempts < 1:
        raise ValueError("a plan follows at least one declined attempt")
    if is_hard(decline_reason) or attempts > len(schedule):
        return RetryPlan(attempts, RetryStatus.STOPPED, None, decline_reason)
    return RetryPlan(
        attempts,
        RetryStatus.SCHEDULED,
        first_decline + timedelta(days=schedule[attempts - 1]),
        decline_reason,
    )
