"""Invoices: lines and totals, payment terms, due and overdue, payments, voiding and editable details."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.billing.domain.model import InvoiceStatus
from services.billing.domain.tax import TaxDecision, line_tax
from shared.errors import InvalidInput, RuleViolation
from shared.money import from_proto_fields, round_money, to_decimal

DEFAULT_NET_DAYS = 30
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
ATTACHMENT_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg"})
MAX_PO_NUMBER = 64
MAX_NOTES = 2000


@dataclass(frozen=True, slots=True)
class LineInput:
    description: str
    quantity: int
    unit_price: Decimal
    period_start: date | None = None
    period_end: date | None = None
    amount: Decimal | None = None
    product_code: str = ""
    explanation: str = ""  # how a computed amount was reached (prorated or credited lines)


@dataclass(frozen=True, slots=True)
class Line:
    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    tax: Decimal
    tax_rate: Decimal
    period_start: date | None = None
    period_end: date | None = None
    product_code: str = ""
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def line_amount(line: LineInput, currency: str, index: int = 0) -> Decimal:
    """The amount before tax of one line: the given amount, or quantity × unit price rounded half up."""
    where = f"lines[{index}]"
    if not line.description.strip():
        raise InvalidInput("every line needs a description", field=f"{where}.description")
    if line.quantity < 1:
        raise InvalidInput("quantity must be at least 1", field=f"{where}.quantity")
    if line.period_start and line.period_end and line.period_end <= line.period_start:
        raise InvalidInput("the period must end after it starts", field=f"{where}.period_end_date")
    unit_price = to_decimal(line.unit_price)
    if line.amount is None:
        if unit_price < 0:
            raise InvalidInput("a unit price cannot be negative", field=f"{where}.unit_price")
        return round_money(unit_price * line.quantity, currency)
    amount = to_decimal(line.amount)
    if amount != round_money(amount, currency):
        raise InvalidInput(
            f"the line amount has more decimals than {currency} allows", field=f"{where}.amount"
        )
    return amount


def price_lines(inputs: list[LineInput], currency: str, tax: TaxDecision) -> list[Line]:
    """Lines with their amount and tax (per line, rounded half up once per line)."""
    if not inputs:
        raise InvalidInput("an invoice needs at least one line", field="lines")
    lines = []
    for i, li in enumerate(inputs):
        amount = line_amount(li, currency, i)
        lines.append(
            Line(
                description=li.description.strip(),
                quantity=li.quantity,
                unit_price=to_decimal(li.unit_price),
                amount=amount,
                tax=line_tax(amount, tax.rate, currency),
                tax_rate=tax.rate,
                period_start=li.period_start,
                period_end=li.period_end,
                product_code=li.product_code,
                explanation=li.explanation,
            )
        )
    return lines


def totals(lines: list[Line]) -> Totals:
    subtotal = sum((ln.amount for ln in lines), Decimal(0))
    tax = sum((ln.tax for ln in lines), Decimal(0))
    return Totals(subtotal, tax, subtotal + tax)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="time_zone") from None


def local_date(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(zone(time_zone)).date()


def local_midnight(day: date, time_zone: str) -> datetime:
    """The instant a calendar day starts in a zone, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone(time_zone)).astimezone(UTC)


def due_date(issue_date: date, net_days: int = DEFAULT_NET_DAYS) -> date:
    if net_days < 0:
        raise InvalidInput("payment terms cannot be negative", field="net_days")
    return issue_date + timedelta(days=net_days)


def overdue_at(due: date, time_zone: str) -> datetime:
    """An unpaid invoice becomes overdue at its due date: local midnight that starts it."""
    return local_midnight(due, time_zone)


def next_local_midnight(days: Iterable[tuple[date, str]], after: datetime) -> datetime | None:
    """The earliest start of one of `days` (each a date in a zone) that is later than `after`."""
    starts = [m for d, z in days if (m := local_midnight(d, z)) > after]
    return min(starts, default=None)


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    attachment_id: str
    filename: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class NewAttachment:
    filename: str
    content_type: str
    size_bytes: int


def check_attachments(
    existing: int, removing: int, new: list[NewAttachment], max_bytes: int = MAX_ATTACHMENT_BYTES
) -> None:
    """PO documents: PDF, PNG or JPEG, at most `max_bytes` each (2 MiB unless set) and five per invoice."""
    for i, a in enumerate(new):
        where = f"attachments[{i}]"
        if not a.filename.strip():
            raise InvalidInput("an attachment needs a file name", field=f"{where}.filename")
        if a.content_type not in ATTACHMENT_TYPES:
            raise InvalidInput(
                f"attachments must be PDF, PNG or JPEG, not {a.content_type!r}", field=f"{where}.content_type"
            )
        if a.size_bytes == 0:
            raise InvalidInput("an attachment cannot be empty", field=f"{where}.content")
        if a.size_bytes > max_bytes:
            raise InvalidInput(
                f"{a.filename} is {a.size_bytes} bytes; an attachment may be at most {max_bytes} bytes",
                field=f"{where}.content",
                reason="ATTACHMENT_TOO_LARGE",
            )
    count = existing - removing + len(new)
    if count > MAX_ATTACHMENTS:
        raise InvalidInput(
            f"an invoice can carry at most {MAX_ATTACHMENTS} PO documents ({count} requested)",
            field="attachments",
            reason="TOO_MANY_ATTACHMENTS",
        )


def check_details(po_number: str | None, notes: str | None) -> None:
    if po_number is not None and len(po_number) > MAX_PO_NUMBER:
        raise InvalidInput(f"a PO number has at most {MAX_PO_NUMBER} characters", field="po_number")
    if notes is not None and len(notes) > MAX_NOTES:
        raise InvalidInput(f"notes have at most {MAX_NOTES} characters", field="notes")


def amount_due(
    status: InvoiceStatus, total: Decimal, paid: Decimal, credit_applied: Decimal, due_credited: Decimal
) -> Decimal:
    """What an invoice still owes: nothing unless open; else its total less what was paid, the account
    credit applied to it and the credit notes that reduced it."""
    if status != InvoiceStatus.OPEN:
        return Decimal(0)
    return total - paid - credit_applied - due_credited


@dataclass(slots=True)
class InvoiceState:
    """The money state of an invoice and the rules that move it."""

    invoice_number: str
    currency: str
    total: Decimal
    status: InvoiceStatus = InvoiceStatus.OPEN
    amount_paid: Decimal = Decimal(0)
    amount_credited: Decimal = Decimal(0)
    paid_time: datetime | None = None
    overdue_time: datetime | None = None
    credit_applied: Decimal = Decimal(0)  # account credit used when it was issued
    amount_due_credited: Decimal = Decimal(0)  # credit notes that reduced it while open

    @property
    def amount_due(self) -> Decimal:
        """What is still owed: the total less payments, account credit applied and credit notes (while open)."""
        return amount_due(
            self.status, self.total, self.amount_paid, self.credit_applied, self.amount_due_credited
        )

    def require_open(self) -> None:
        if self.status != InvoiceStatus.OPEN:
            raise RuleViolation(
                f"invoice {self.invoice_number} is {self.status.value}, not open", reason="INVOICE_NOT_OPEN"
            )

    def pay(self, amount: Decimal, when: datetime) -> InvoiceState:
        """Records a payment of what is due; the invoice is then paid."""
        self.require_open()
        if amount != self.amount_due:
            raise InvalidInput(
                f"a payment must be the amount due, {self.amount_due} {self.currency}", field="amount"
            )
        return replace(self, amount_paid=self.amount_paid + amount, status=InvoiceStatus.PAID, paid_time=when)

    def void(self) -> InvoiceState:
        """Void an open invoice nothing was paid or credited on (account credit it used goes back to the
        account: the handler releases it)."""
        self.require_open()
        if self.amount_paid:
            raise RuleViolation(
                f"invoice {self.invoice_number} has payments; issue a credit note instead",
                reason="INVOICE_HAS_PAYMENTS",
            )
        if self.amount_credited:
            raise RuleViolation(
                f"invoice {self.invoice_number} has credit notes; credit what is still due instead",
                reason="INVOICE_HAS_PAYMENTS",
            )
        return replace(self, status=InvoiceStatus.VOID, credit_applied=Decimal(0))

    def is_overdue_at(self, now: datetime, due: date, time_zone: str) -> bool:
        return self.status == InvoiceStatus.OPEN and self.amount_due > 0 and now >= overdue_at(due, time_zone)


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """The figures of an invoice about to be issued: its priced lines, totals, tax and dates."""

    lines: tuple[Line, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    tax_rate: Decimal
    tax_name: str
    tax_exempt: bool
    issue_date: date
    due_date: date


def order_subtotal(lines: list[Line]) -> Decimal:
    """The subtotal of an order's lines; an order cannot add up to less than zero."""
    subtotal = totals(lines).subtotal
    if subtotal < 0:
        raise InvalidInput(
            "the lines add up to less than zero", field="lines", reason="INVOICE_TOTAL_NEGATIVE"
        )
    return subtotal


def draft_invoice(
    lines: list[Line],
    tax: TaxDecision,
    issue_time: datetime,
    time_zone: str,
    net_days: int = DEFAULT_NET_DAYS,
) -> InvoiceDraft:
    """An invoice of these lines issued at `issue_time`: dated in the buyer's zone, due `net_days` later."""
    issue_day = local_date(issue_time, time_zone)
    t = totals(lines)
    if t.total < 0:
        raise InvalidInput(
            "the invoice total would be negative", field="lines", reason="INVOICE_TOTAL_NEGATIVE"
        )
    return InvoiceDraft(
        lines=tuple(lines),
        subtotal=t.subtotal,
        tax=t.tax,
        total=t.total,
        tax_rate=tax.rate,
        tax_name=tax.name,
        tax_exempt=tax.exempt,
        issue_date=issue_day,
        due_date=due_date(issue_day, net_days),
    )


@dataclass(frozen=True, slots=True)
class AmountInput:
    """An amount as a request gives it (google.type.Money's fields), read once the currency is known."""

    currency_code: str
    units: int
    nanos: int


def amount_in(given: AmountInput, currency: str, field: str) -> Decimal:
    """The amount in `currency` (the invoice's); another currency or too many decimals are bad input."""
    if given.currency_code and given.currency_code != currency:
        raise InvalidInput(
            f"amount is in {given.currency_code}, the invoice in {currency}",
            field=field,
            reason="CURRENCY_MISMATCH",
        )
    try:
        return from_proto_fields(currency, given.units, given.nanos)
    except InvalidInput as e:
        raise InvalidInput(e.message, field=field) from None
