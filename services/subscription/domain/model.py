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


class ShutoffPolicy(StrEnum):
    STANDARD = "STANDARD"
    IMMEDIATE = "IMMEDIATE"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order: `amount` is rounded once, to the currency's minor unit; credits are negative."""

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


@dataclass(frozen=True, slots=True)
class Transition:
    """A lifecycle stage change, recorded and published."""

    from_stage: Stage | None
    to_stage: Stage
    at: datetime
    reason: str
