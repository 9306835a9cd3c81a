"""What an invoice or credit-note document shows, as the customer reads it (rules §5 Invoices, Tax).

The stored invoice keeps periods half-open (a line runs up to its renewal date); the document shows the
last day the customer has (10.06.2024–09.06.2025, the expiry the e-mails name). An installment line
shows that installment's own year and adds up: quantity × unit price = amount. Credit applied to an
invoice is a negative line. The VAT is summed per rate, and the scheme (reverse charge, export,
exemption) decides the legal note. How it is laid out and worded per language is the renderer's
(`adapters.invoice_pdf`); this module holds the numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from services.billing.domain.installments import INSTALLMENT_COUNT, add_years
from services.billing.domain.model import Address, MethodType
from services.billing.domain.tax import Scheme, scheme_of
from shared.money import quantum, round_money

#: languages the documents are written in; any other reads English
LANGUAGES = ("en", "nb", "fr", "sv")
_LANGUAGE_ALIASES = {"no": "nb", "nn": "nb", "nob": "nb", "nno": "nb", "swe": "sv", "fra": "fr", "fre": "fr"}

#: seller details that are development examples: production refuses to start while one is left
EXAMPLE_SELLER_VALUES = frozenset(
    {
        "Tenure Software AS",
        "Karl Johans gate 1, 0154 Oslo",
        "NO 999 999 999 MVA",
        "billing@tenure.example",
        "Tenure Bank",
        "NO93 8601 1117 947",
        "TENUNO22",
    }
)


def document_language(language: str) -> str:
    """The document language for a profile's language tag: nb for no/nb/nn, sv-SE -> sv; else en."""
    tag = (language or "").strip().replace("_", "-").lower().split("-")[0]
    tag = _LANGUAGE_ALIASES.get(tag, tag)
    return tag if tag in LANGUAGES else "en"


@dataclass(frozen=True, slots=True)
class Seller:
    """The seller's legal details as every document prints them (development examples by default)."""

    name: str = "Tenure Software AS"
    address_lines: tuple[str, ...] = ("Karl Johans gate 1", "0154 Oslo")
    country_code: str = "NO"
    tax_id: str = "NO 999 999 999 MVA"
    #: the company register entry the law asks for on business documents (an AS: Foretaksregisteret)
    register: str = "Foretaksregisteret"
    email: str = "billing@tenure.example"
    bank_name: str = "Tenure Bank"
    iban: str = "NO93 8601 1117 947"
    bic: str = "TENUNO22"

    def missing(self) -> list[str]:
        """The details that are empty or still a development example (production refuses these)."""
        values = {
            "name": self.name,
            "address": ", ".join(self.address_lines),
            "country_code": self.country_code,
            "tax_id": self.tax_id,
            "register": self.register,
            "email": self.email,
            "bank_name": self.bank_name,
            "iban": self.iban,
            "bic": self.bic,
        }
        return [k for k, v in values.items() if not v.strip() or v.strip() in EXAMPLE_SELLER_VALUES]


class LineKind(StrEnum):
    CHARGE = "charge"
    #: credit applied to the invoice (an account's balance or an upgrade's unused value): negative
    CREDIT = "credit"


_INSTALLMENT_SUFFIX = re.compile(r"\s*\(installment \d+ of \d+\)\s*$", re.IGNORECASE)
_CREDIT_PREFIX = re.compile(r"^\s*credit applied\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """A line as stored: the period is half-open (`period_end` is the day after the last)."""

    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    tax: Decimal
    tax_rate: Decimal
    period_start: date | None = None
    period_end: date | None = None
    kind: str = ""


@dataclass(frozen=True, slots=True)
class ShownLine:
    """A line as the customer reads it: quantity × unit price = amount, last day inclusive."""

    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    tax: Decimal
    tax_rate: Decimal
    first_day: date | None
    last_day: date | None
    kind: LineKind = LineKind.CHARGE


@dataclass(frozen=True, slots=True)
class RateTotal:
    """The lines taxed at one rate: their net amount and the VAT on it."""

    rate: Decimal
    base: Decimal
    tax: Decimal


def last_day(period_start: date | None, period_end: date | None) -> date | None:
    """The last day of a half-open period (2024-06-10 to 2025-06-10 runs to 2025-06-09)."""
    if period_end is None:
        return None
    if period_start is not None and period_end <= period_start:
        return period_end
    return period_end - timedelta(days=1)


def installment_period(start: date, end: date | None, sequence: int, count: int) -> tuple[date, date | None]:
    """Installment `sequence`'s own year of a term starting `start`: anniversary to the day before the
    next one (the last one ends with the term)."""
    first = add_years(start, sequence - 1)
    upto = add_years(start, sequence)
    if end is not None and (sequence >= count or upto > end):
        upto = end
    return first, last_day(first, upto)


def line_kind(line: DocumentLine) -> LineKind:
    """A credit-applied line: marked so, or described "Credit applied …", or a negative amount."""
    if line.kind.lower() in ("credit", "credit_applied") or _CREDIT_PREFIX.match(line.description):
        return LineKind.CREDIT
    return LineKind.CREDIT if line.amount < 0 else LineKind.CHARGE


def shown_line(line: DocumentLine, currency: str, sequence: int = 0, count: int = 0) -> ShownLine:
    """How the document shows one stored line (see the module docstring)."""
    kind = line_kind(line)
    description = _INSTALLMENT_SUFFIX.sub("", line.description).strip()
    quantity, unit_price = line.quantity, line.unit_price
    first, last = line.period_start, last_day(line.period_start, line.period_end)
    amount = -abs(line.amount) if kind is LineKind.CREDIT else line.amount
    tax = -abs(line.tax) if kind is LineKind.CREDIT else line.tax
    if sequence and kind is LineKind.CHARGE:
        if line.period_start is not None:
            first, last = installment_period(line.period_start, line.period_end, sequence, count)
        each = amount / quantity if quantity else amount
        if quantity > 0 and round_money(each, currency) == each:
            unit_price = each.quantize(quantum(currency))
        else:
            quantity, unit_price = 1, amount
    elif kind is LineKind.CREDIT:
        quantity, unit_price = (quantity or 1), amount / (quantity or 1)
        if round_money(unit_price, currency) != unit_price:
            quantity, unit_price = 1, amount
    return ShownLine(description, quantity, unit_price, amount, tax, line.tax_rate, first, last, kind)


def rate_totals(lines: list[ShownLine]) -> list[RateTotal]:
    """Net amount and VAT per rate, highest rate first."""
    by_rate: dict[Decimal, tuple[Decimal, Decimal]] = {}
    for ln in lines:
        base, tax = by_rate.get(ln.tax_rate.normalize(), (Decimal(0), Decimal(0)))
        by_rate[ln.tax_rate.normalize()] = (base + ln.amount, tax + ln.tax)
    return [RateTotal(rate, b, t) for rate, (b, t) in sorted(by_rate.items(), reverse=True)]


class PaymentCase(StrEnum):
    """What the document says about paying."""

    PAID = "paid"
    VOID = "void"
    CHARGED = "charged"  # card or PayPal: charged when issued
    TRANSFER = "transfer"  # pay by invoice: bank transfer by the due date
    NOTHING_DUE = "nothing_due"  # credit covered it all


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    invoice_number: str
    issue_date: date
    due_date: date
    currency: str
    buyer_name: str
    buyer_email: str
    buyer_address: Address
    lines: tuple[DocumentLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    status: str = "open"
    amount_paid: Decimal = Decimal(0)
    amount_credited: Decimal = Decimal(0)
    #: account credit used when the invoice was issued, and credit notes that reduced what it owed
    account_credit_applied: Decimal = Decimal(0)
    due_credited: Decimal = Decimal(0)
    payment_method: MethodType | None = None
    #: the method in English ("visa card ending 4242"); `payment_method_shown` is what documents print
    payment_method_label: str = ""
    payment_method_shown: str = ""
    order_number: str = ""
    po_number: str = ""
    notes: str = ""
    buyer_tax_id: str = ""
    tax_exempt: bool = False
    tax_name: str = "Tax"
    payers: tuple[str, ...] = ()
    installment_sequence: int = 0
    installment_count: int = 0
    language: str = "en"
    seller: Seller = field(default_factory=Seller)

    @property
    def scheme(self) -> Scheme:
        return scheme_of(self.tax_name, self.tax_exempt)

    @property
    def installment(self) -> tuple[int, int] | None:
        """(sequence, count) of an installment invoice (three when the plan is gone)."""
        if not self.installment_sequence:
            return None
        return self.installment_sequence, self.installment_count or INSTALLMENT_COUNT

    def shown_lines(self) -> list[ShownLine]:
        seq, count = self.installment or (0, 0)
        return [shown_line(ln, self.currency, seq, count) for ln in self.lines]

    def rate_totals(self) -> list[RateTotal]:
        return rate_totals(self.shown_lines())

    @property
    def credit_applied(self) -> Decimal:
        """Credit applied: negative lines, and the account's credit used when it was issued, as a positive
        amount."""
        on_lines = -sum(
            (ln.amount + ln.tax for ln in self.shown_lines() if ln.kind is LineKind.CREDIT), Decimal(0)
        )
        return on_lines + self.account_credit_applied

    @property
    def amount_due(self) -> Decimal:
        if self.status in ("paid", "void"):
            return Decimal(0)
        owed = self.total - self.amount_paid - self.account_credit_applied - self.due_credited
        return max(owed, Decimal(0))

    def payment_case(self) -> PaymentCase:
        if self.status == "paid":
            return PaymentCase.PAID
        if self.status == "void":
            return PaymentCase.VOID
        if self.amount_due <= 0:
            return PaymentCase.NOTHING_DUE
        if self.payment_method in (MethodType.CARD, MethodType.PAYPAL):
            return PaymentCase.CHARGED
        return PaymentCase.TRANSFER


@dataclass(frozen=True, slots=True)
class CreditNoteDocument:
    """A credit note: an amount (VAT included) given back on an invoice, split into net and VAT at the
    invoice's rate."""

    credit_note_number: str
    issue_date: date
    invoice_number: str
    currency: str
    buyer_name: str
    buyer_email: str
    buyer_address: Address
    amount: Decimal
    tax_rate: Decimal
    tax_name: str
    tax_exempt: bool = False
    settlement: str = "refund"
    reason: str = ""
    buyer_tax_id: str = ""
    language: str = "en"
    invoice_issue_date: date | None = None
    seller: Seller = field(default_factory=Seller)

    @property
    def scheme(self) -> Scheme:
        return scheme_of(self.tax_name, self.tax_exempt)

    @property
    def tax(self) -> Decimal:
        """The VAT inside the amount: amount × rate / (1 + rate), rounded half up once (1 250,00 at 25 % -> 250,00)."""
        return round_money(self.amount * self.tax_rate / (1 + self.tax_rate), self.currency)

    @property
    def net(self) -> Decimal:
        return self.amount - self.tax


def payment_method_label(method_type: str, brand: str = "", last4: str = "", paypal_email: str = "") -> str:
    """How English text names the payment method: "visa card ending 4242", "PayPal (…)", "bank transfer"."""
    if method_type == MethodType.CARD.value:
        return f"{brand} card ending {last4}"
    if method_type == MethodType.PAYPAL.value:
        return f"PayPal ({paypal_email})"
    return "bank transfer"


def method_shown(method_type: str, brand: str = "", last4: str = "", paypal_email: str = "") -> str:
    """How a document in any language names the payment method: "Visa •••• 4242", "PayPal (…)"; "" for a
    bank transfer (the document says so in its own words)."""
    if method_type == MethodType.CARD.value:
        return f"{brand.capitalize()} •••• {last4}".strip()
    if method_type == MethodType.PAYPAL.value:
        return f"PayPal ({paypal_email})"
    return ""


def installment_label(sequence: int, count: int | None) -> str:
    """ "Installment 2 of 3" in English ("" otherwise; three when the plan is gone)."""
    if not sequence:
        return ""
    return f"Installment {sequence} of {INSTALLMENT_COUNT if count is None else count}"
