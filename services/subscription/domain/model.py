"""Value types of the subscription domain.

Enum values are the proto enum value names without their prefix (`Term.ANNUAL` is `TERM_ANNUAL` on the
wire), so the servicer converts with a string concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class Term(StrEnum):
    MONTHLY = "MONTHLY"
    ANNUAL = "ANNUAL"
    THREE_YEAR = "THREE_YEAR"

    @property
    def months(self) -> int:
        return TERM_MONTHS[self]


TERM_MONTHS: dict[Term, int] = {Term.MONTHLY: 1, Term.ANNUAL: 12, Term.THREE_YEAR: 36}


class Plan(StrEnum):
    STANDARD = "STANDARD"
    PREMIUM = "PREMIUM"


class Stage(StrEnum):
    TRIAL = "TRIAL"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    CANCELLED = "CANCELLED"


class Channel(StrEnum):
    DIRECT_ONLINE = "DIRECT_ONLINE"
    PARTNER_QUOTE = "PARTNER_QUOTE"
    RESELLER = "RESELLER"
    LEGACY = "LEGACY"

    @property
    def is_partner(self) -> bool:
        return self in (Channel.PARTNER_QUOTE, Channel.RESELLER)


class PaymentMethodType(StrEnum):
    CARD = "CARD"
    PAYPAL = "PAYPAL"
    INVOICE = "INVOICE"


class ProductKind(StrEnum):
    LT = "LT"
    FULL = "FULL"
    COLLECTION = "COLLECTION"
    SUITE = "SUITE"  # a legacy suite (Design & Creation Suite): upgrades to a collection

    @property
    def standalone(self) -> bool:
        """A standalone product (LT or FULL), as opposed to a collection or a suite of products."""
        return self in (ProductKind.LT, ProductKind.FULL)


class ShutoffPolicy(StrEnum):
    STANDARD = "STANDARD"
    IMMEDIATE = "IMMEDIATE"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order: `amount` is rounded once, to the currency's minor unit; credits are negative.

    A prorated line (seats added, an alignment, an upgrade credit, an alignment refund) carries its inputs:
    `amount` = ± unit_price x quantity x prorated_days / term_days, where prorated_days are the local dates
    from `period_start_date` to `period_end_date` and term_days those of one term as bought, from
    `term_start_date` to `term_end_date`."""

    description: str
    quantity: int
    unit_price: Decimal
    currency: str
    amount: Decimal
    period_start_date: date
    period_end_date: date
    subscription_id: str = ""
    prorated_days: int = 0
    term_days: int = 0
    term_start_date: date | None = None
    term_end_date: date | None = None

    @property
    def prorated(self) -> bool:
        return self.term_days > 0

    def explanation(self) -> str:
        """How the amount was computed, for a prorated line (empty otherwise): 470.00 USD x 1 seat(s) x
        234 day(s) (2025-01-10 to 2025-09-01) / 365 day(s) (2024-06-10 to 2025-06-10) = 301.32 USD."""
        if not self.prorated:
            return ""
        term = ""
        if self.term_start_date is not None and self.term_end_date is not None:
            term = f" ({self.term_start_date.isoformat()} to {self.term_end_date.isoformat()})"
        sign = "-" if self.amount < 0 else ""
        return (
            f"{sign}{self.unit_price} {self.currency} x {self.quantity} seat(s) x {self.prorated_days} day(s) "
            f"({self.period_start_date.isoformat()} to {self.period_end_date.isoformat()}) / "
            f"{self.term_days} day(s){term} = {self.amount} {self.currency}"
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A lifecycle stage change, recorded and published."""

    from_stage: Stage | None
    to_stage: Stage
    at: datetime
    reason: str
