"""Billing vocabulary: the enums and value objects the billing rules speak in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Term(StrEnum):
    MONTHLY = "monthly"
    ANNUAL = "annual"
    THREE_YEAR = "three_year"


class Channel(StrEnum):
    DIRECT_ONLINE = "direct_online"
    PARTNER_QUOTE = "partner_quote"
    RESELLER = "reseller"
    LEGACY = "legacy"


class MethodType(StrEnum):
    CARD = "card"
    PAYPAL = "paypal"
    INVOICE = "invoice"


class InvoiceKind(StrEnum):
    NEW = "new"
    ADD_SEATS = "add_seats"
    RENEWAL = "renewal"
    INSTALLMENT = "installment"
    ALIGN = "align"
    UPGRADE = "upgrade"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    PENDING = "pending"
    NOT_REQUIRED = "not_required"


class InstallmentPlan(StrEnum):
    AUTO = "auto"
    UP_FRONT = "up_front"
    ANNUAL = "annual"


class InstallmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    INVOICED = "invoiced"
    PAID = "paid"
    CANCELLED = "cancelled"


class Settlement(StrEnum):
    """How a credit note gives money back."""

    REFUND = "refund"  # to the card or PayPal account that paid
    CASH_BALANCE = "cash_balance"  # kept as account credit, used by the account's next invoices
    AMOUNT_DUE = "amount_due"  # an open invoice owes less; no money moves


@dataclass(frozen=True, slots=True)
class Address:
    country_code: str
    region: str = ""
    city: str = ""
    postal_code: str = ""
    line1: str = ""
    line2: str = ""


@dataclass(frozen=True, slots=True)
class TaxStatus:
    """The tax-relevant part of a billing profile."""

    address: Address
    tax_exempt: bool = False
    exemption_certificate: str = ""
    exemption_expiry_date: date | None = None

    def exemption_valid_on(self, day: date) -> bool:
        """An exemption counts only with a certificate that has not expired."""
        if not self.tax_exempt or not self.exemption_certificate.strip():
            return False
        return self.exemption_expiry_date is None or day <= self.exemption_expiry_date
