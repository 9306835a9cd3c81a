"""Protobuf encoding of billing rows and decoding of requests (the only place that knows both)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING

from google.protobuf import field_mask_pb2

from services.billing.adapters.credit_ledger import APPLIED, RELEASED, CreditEntryRow
from services.billing.adapters.tables import (
    AttachmentRow,
    CreditNoteRow,
    InstallmentRow,
    InvoiceLineRow,
    InvoiceRow,
    PayerRow,
    PaymentMethodRow,
    PaymentRow,
    ProfileRow,
)
from services.billing.domain.balance import BalanceFigures
from services.billing.domain.commands import CreateInvoice, DetailsUpdate, ProfileInput
from services.billing.domain.credits import application_text
from services.billing.domain.invoice import AmountInput, Line, LineInput, amount_due, amount_in
from services.billing.domain.model import (
    Address,
    Channel,
    InstallmentPlan,
    InvoiceKind,
    InvoiceStatus,
    MethodType,
    Settlement,
    Term,
)
from shared.errors import InvalidInput
from shared.grpc.codec import date_of, date_pb, timestamp
from shared.money import to_proto
from tenure.billing.v1 import billing_pb2 as pb
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2

if TYPE_CHECKING:
    from services.billing.handlers.common import InvoiceView
    from services.billing.handlers.invoices import Priced

KIND_TO_PB = {
    InvoiceKind.NEW: pb.INVOICE_KIND_NEW,
    InvoiceKind.ADD_SEATS: pb.INVOICE_KIND_ADD_SEATS,
    InvoiceKind.RENEWAL: pb.INVOICE_KIND_RENEWAL,
    InvoiceKind.INSTALLMENT: pb.INVOICE_KIND_INSTALLMENT,
    InvoiceKind.ALIGN: pb.INVOICE_KIND_ALIGN,
    InvoiceKind.UPGRADE: pb.INVOICE_KIND_UPGRADE,
}
KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}
STATUS_TO_PB = {
    InvoiceStatus.OPEN: pb.INVOICE_STATUS_OPEN,
    InvoiceStatus.PAID: pb.INVOICE_STATUS_PAID,
    InvoiceStatus.VOID: pb.INVOICE_STATUS_VOID,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}
METHOD_TO_PB = {
    MethodType.CARD: common_pb2.PAYMENT_METHOD_TYPE_CARD,
    MethodType.PAYPAL: common_pb2.PAYMENT_METHOD_TYPE_PAYPAL,
    MethodType.INVOICE: common_pb2.PAYMENT_METHOD_TYPE_INVOICE,
}
METHOD_FROM_PB = {v: k for k, v in METHOD_TO_PB.items()}
PAYMENT_STATUS_TO_PB = {
    "succeeded": pb.PAYMENT_STATUS_SUCCEEDED,
    "declined": pb.PAYMENT_STATUS_DECLINED,
    "pending": pb.PAYMENT_STATUS_PENDING,
    "not_required": pb.PAYMENT_STATUS_NOT_REQUIRED,
}
INSTALLMENT_STATUS_TO_PB = {
    "scheduled": pb.INSTALLMENT_STATUS_SCHEDULED,
    "invoiced": pb.INSTALLMENT_STATUS_INVOICED,
    "paid": pb.INSTALLMENT_STATUS_PAID,
    "cancelled": pb.INSTALLMENT_STATUS_CANCELLED,
}
SETTLEMENT_TO_PB = {
    "refund": pb.CREDIT_NOTE_SETTLEMENT_REFUND,
    "cash_balance": pb.CREDIT_NOTE_SETTLEMENT_CASH_BALANCE,
    "amount_due": pb.CREDIT_NOTE_SETTLEMENT_AMOUNT_DUE,
}
SETTLEMENT_FROM_PB = {v: Settlement(k) for k, v in SETTLEMENT_TO_PB.items()}
PLAN_FROM_PB = {
    pb.INSTALLMENT_PLAN_UNSPECIFIED: InstallmentPlan.AUTO,
    pb.INSTALLMENT_PLAN_UP_FRONT: InstallmentPlan.UP_FRONT,
    pb.INSTALLMENT_PLAN_ANNUAL: InstallmentPlan.ANNUAL,
}
TERM_FROM_PB = {
    common_pb2.TERM_MONTHLY: Term.MONTHLY,
    common_pb2.TERM_ANNUAL: Term.ANNUAL,
    common_pb2.TERM_THREE_YEAR: Term.THREE_YEAR,
}
CHANNEL_FROM_PB = {
    common_pb2.CHANNEL_DIRECT_ONLINE: Channel.DIRECT_ONLINE,
    common_pb2.CHANNEL_PARTNER_QUOTE: Channel.PARTNER_QUOTE,
    common_pb2.CHANNEL_RESELLER: Channel.RESELLER,
    common_pb2.CHANNEL_LEGACY: Channel.LEGACY,
}


ts = timestamp
pb_date = date_pb
from_pb_date = date_of


def money(amount: Decimal, currency: str):
    return to_proto(amount, currency)


def money_in(msg, currency: str, field: str) -> Decimal:
    return amount_in(amount_input(msg), currency, field)


def amount_input(msg) -> AmountInput:
    return AmountInput(msg.currency_code, msg.units, msg.nanos)


def line_inputs(lines, currency: str) -> list[LineInput]:
    out = []
    for i, ln in enumerate(lines):
        out.append(
            LineInput(
                description=ln.description,
                quantity=ln.quantity,
                unit_price=money_in(ln.unit_price, currency, f"lines[{i}].unit_price"),
                period_start=from_pb_date(ln.period_start_date, f"lines[{i}].period_start_date"),
                period_end=from_pb_date(ln.period_end_date, f"lines[{i}].period_end_date"),
                amount=money_in(ln.amount, currency, f"lines[{i}].amount") if ln.HasField("amount") else None,
                product_code=ln.product_code,
                explanation=ln.explanation,
            )
        )
    return out


def address(row) -> pb.Address:
    return pb.Address(
        country_code=row.country_code,
        region=row.region,
        city=row.city,
        postal_code=row.postal_code,
        line1=row.line1,
        line2=row.line2,
    )


def profile(row: ProfileRow) -> pb.BillingProfile:
    return pb.BillingProfile(
        account_id=row.account_id,
        buyer_email=row.buyer_email,
        name=row.name,
        address=address(row),
        tax_id=row.tax_id,
        tax_exempt=row.tax_exempt,
        exemption_certificate=row.exemption_certificate,
        exemption_expiry_date=pb_date(row.exemption_expiry_date),
        prepay_only=row.prepay_only,
        prepay_only_reason=row.prepay_only_reason,
        language=row.language,
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )


def payment_method(row: PaymentMethodRow) -> pb.PaymentMethod:
    return pb.PaymentMethod(
        payment_method_id=row.payment_method_id,
        account_id=row.account_id,
        type=METHOD_TO_PB[MethodType(row.type)],
        last4=row.last4,
        brand=row.brand,
        paypal_email=row.paypal_email,
        create_time=ts(row.create_time),
    )


def payer(row: PayerRow) -> pb.Payer:
    return pb.Payer(email=row.email, name=row.name, language=row.language, create_time=ts(row.create_time))


def invoice_line(row: InvoiceLineRow | Line, currency: str) -> pb.InvoiceLine:
    """A stored invoice line, or a priced line of a tax preview (the same fields)."""
    return pb.InvoiceLine(
        description=row.description,
        quantity=row.quantity,
        unit_price=money(row.unit_price, currency),
        period_start_date=pb_date(row.period_start),
        period_end_date=pb_date(row.period_end),
        amount=money(row.amount, currency),
        tax=money(row.tax, currency),
        tax_rate=rate(row.tax_rate),
        product_code=row.product_code,
        explanation=row.explanation,
    )


def rate(value: Decimal) -> str:
    s = format(value.normalize(), "f")
    return s if s != "-0" else "0"


def attachment(row: AttachmentRow) -> pb.AttachmentInfo:
    return pb.AttachmentInfo(
        attachment_id=row.attachment_id,
        filename=row.filename,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
    )


def invoice(row: InvoiceRow, lines: list[InvoiceLineRow], attachments: list[AttachmentRow]) -> pb.Invoice:
    cur = row.currency
    status = InvoiceStatus(row.status)
    return pb.Invoice(
        invoice_id=row.invoice_id,
        invoice_number=row.invoice_number,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        order_number=row.order_number,
        kind=KIND_TO_PB[InvoiceKind(row.kind)],
        status=STATUS_TO_PB[status],
        lines=[invoice_line(ln, cur) for ln in lines],
        subtotal=money(row.subtotal, cur),
        tax=money(row.tax, cur),
        total=money(row.total, cur),
        currency_code=cur,
        issue_time=ts(row.issue_time),
        due_date=pb_date(row.due_date),
        po_number=row.po_number,
        notes=row.notes,
        payers=[pb.Payer(**p) for p in json.loads(row.payers_json)],
        attachments=[attachment(a) for a in attachments],
        issue_date=pb_date(row.issue_date),
        payment_method_id=row.payment_method_id,
        payment_method_type=METHOD_TO_PB.get(MethodType(row.payment_method_type), 0)
        if row.payment_method_type
        else 0,
        amount_paid=money(row.amount_paid, cur),
        amount_credited=money(row.amount_credited, cur),
        amount_due=money(
            amount_due(status, row.total, row.amount_paid, row.credit_applied, row.amount_due_credited), cur
        ),
        credit_applied=money(row.credit_applied, cur),
        amount_due_credited=money(row.amount_due_credited, cur),
        paid_time=ts(row.paid_time),
        overdue_time=ts(row.overdue_time),
        installment_sequence=row.installment_sequence,
        buyer_email=row.buyer_email,
        buyer_name=row.buyer_name,
        billing_address=address(row),
        tax_id=row.tax_id,
        tax_exempt=row.tax_exempt,
        time_zone=row.time_zone,
        decline_reason=row.decline_reason,
    )


#: What an admin who is neither the buyer nor a payer sees (rules §7): what an invoice or installment is for,
#: its status and its dates. No amounts, prices, payment details, billing details or PO documents.
INVOICE_STATUS_FIELDS = field_mask_pb2.FieldMask(
    paths=[
        "invoice_id",
        "invoice_number",
        "account_id",
        "subscription_id",
        "order_number",
        "kind",
        "status",
        "issue_time",
        "issue_date",
        "due_date",
        "paid_time",
        "overdue_time",
        "installment_sequence",
        "time_zone",
    ]
)
LINE_STATUS_FIELDS = field_mask_pb2.FieldMask(
    paths=["description", "quantity", "period_start_date", "period_end_date", "product_code"]
)
INSTALLMENT_STATUS_FIELDS = field_mask_pb2.FieldMask(
    paths=["subscription_id", "sequence", "due_date", "status", "invoice_id", "order_number"]
)


def invoice_status_only(full: pb.Invoice) -> pb.Invoice:
    """`full` narrowed to INVOICE_STATUS_FIELDS (and each line to LINE_STATUS_FIELDS)."""
    out = pb.Invoice()
    INVOICE_STATUS_FIELDS.MergeMessage(full, out)
    for line in full.lines:
        LINE_STATUS_FIELDS.MergeMessage(line, out.lines.add())
    return out


def payment(row: PaymentRow | None) -> pb.Payment | None:
    if row is None:
        return None
    return pb.Payment(
        payment_id=row.payment_id,
        invoice_id=row.invoice_id,
        status=PAYMENT_STATUS_TO_PB[row.status],
        decline_reason=row.decline_reason,
        amount=money(row.amount, row.currency),
        payment_method_id=row.payment_method_id,
        charge_id=row.charge_id,
        create_time=ts(row.create_time),
    )


def installment(row: InstallmentRow) -> pb.Installment:
    return pb.Installment(
        subscription_id=row.subscription_id,
        sequence=row.sequence,
        due_date=pb_date(row.due_date),
        amount=money(row.amount, row.currency),
        status=INSTALLMENT_STATUS_TO_PB[row.status],
        invoice_id=row.invoice_id,
        order_number=row.order_number,
    )


def installment_status_only(full: pb.Installment) -> pb.Installment:
    """An installment without its amount (INSTALLMENT_STATUS_FIELDS)."""
    out = pb.Installment()
    INSTALLMENT_STATUS_FIELDS.MergeMessage(full, out)
    return out


def credit_note(row: CreditNoteRow) -> pb.CreditNote:
    return pb.CreditNote(
        credit_note_id=row.credit_note_id,
        credit_note_number=row.credit_note_number,
        account_id=row.account_id,
        invoice_id=row.invoice_id,
        invoice_number=row.invoice_number,
        amount=money(row.amount, row.currency),
        reason=row.reason,
        settlement=SETTLEMENT_TO_PB[row.settlement],
        refund_id=row.refund_id,
        issue_time=ts(row.issue_time),
        subscription_id=row.subscription_id,
        amount_due_reduced=money(row.amount_due_reduced, row.currency),
        refunded_amount=money(row.refunded_amount, row.currency),
        account_credit_amount=money(row.account_credit_amount, row.currency),
        creditable_before=money(row.creditable_before, row.currency),
        invoice_amount_due_after=money(row.invoice_amount_due_after, row.currency),
    )


def credit_applications(entries: list[CreditEntryRow], currency: str) -> list[pb.CreditApplication]:
    """An invoice's "credit applied" lines: each part of account credit it used, from which credit note,
    and the account's credit before and after; `applied` is False once a void gave it back."""
    released = {e.credit_note_id for e in entries if e.kind == RELEASED}
    return [
        pb.CreditApplication(
            description=application_text(e.credit_note_number),
            credit_note_id=e.credit_note_id,
            credit_note_number=e.credit_note_number,
            amount=money(-e.amount, currency),
            balance_before=money(e.balance_before, currency),
            balance_after=money(e.balance_after, currency),
            applied=e.credit_note_id not in released,
        )
        for e in entries
        if e.kind == APPLIED
    ]


def balance(b: BalanceFigures) -> pb.Balance:
    c = b.currency
    return pb.Balance(
        currency_code=c,
        open_amount=money(b.open_amount, c),
        overdue_amount=money(b.overdue_amount, c),
        paid_amount=money(b.paid_amount, c),
        credited_amount=money(b.credited_amount, c),
        refunded_amount=money(b.refunded_amount, c),
        cash_balance=money(b.cash_balance, c),
        open_invoices=b.open_invoices,
        invoiced_amount=money(b.invoiced_amount, c),
        credit_applied_amount=money(b.credit_applied_amount, c),
        due_credited_amount=money(b.due_credited_amount, c),
        account_credit_amount=money(b.account_credit_amount, c),
    )


def settlement_in(value: int) -> Settlement | None:
    """The settlement a credit note request asks for (None: the default)."""
    return enum_in(SETTLEMENT_FROM_PB, value, "settlement")


def invoice_summary(row: InvoiceRow) -> events_pb2.InvoiceSummary:
    return events_pb2.InvoiceSummary(
        invoice_id=row.invoice_id,
        invoice_number=row.invoice_number,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        order_number=row.order_number,
        kind=row.kind,
        total=money(row.total, row.currency),
        due_date=pb_date(row.due_date),
        issue_time=ts(row.issue_time),
        buyer_email=row.buyer_email,
        payer_emails=[p["email"] for p in json.loads(row.payers_json)],
        payment_method_type=METHOD_TO_PB.get(MethodType(row.payment_method_type), 0)
        if row.payment_method_type
        else 0,
        time_zone=row.time_zone,
    )


# --- requests -----------------------------------------------------------------------------------


def method_type(value: int, field: str = "type") -> MethodType | None:
    """A payment method type (None when unset); an unknown value is bad input."""
    if value == 0:
        return None
    if value not in METHOD_FROM_PB:
        raise InvalidInput("unknown payment method type", field=field)
    return METHOD_FROM_PB[value]


def enum_in(table: dict, value: int, field: str):
    """The enum member of `value` in `table` (None when unset); an unknown value is bad input."""
    if value == 0:
        return None
    if value not in table:
        raise InvalidInput(f"unknown {field} value {value}", field=field)
    return table[value]


def required(value: str, field: str) -> str:
    if not value:
        raise InvalidInput(f"{field} is required", field=field)
    return value


def required_request_id(request, what: str) -> str:
    """Calls that charge or refund need a request id (`what` says what it protects against)."""
    if not request.request_id:
        raise InvalidInput(f"request_id is required: it keeps {what}", field="request_id")
    return request.request_id


def currency_code(value: str) -> str:
    currency = value.strip().upper()
    if not currency:
        raise InvalidInput("currency_code is required", field="currency_code")
    return currency


def profile_input(request) -> ProfileInput:
    a = request.address
    return ProfileInput(
        account_id=request.account_id,
        buyer_email=request.buyer_email,
        name=request.name,
        address=Address(a.country_code, a.region, a.city, a.postal_code, a.line1, a.line2),
        tax_id=request.tax_id,
        tax_exempt=request.tax_exempt,
        exemption_certificate=request.exemption_certificate,
        exemption_expiry_date=from_pb_date(request.exemption_expiry_date, "exemption_expiry_date"),
        language=request.language,
    )


def create_invoice(request) -> CreateInvoice:
    required_request_id(request, "a retried order from charging twice")
    currency = currency_code(request.currency_code)
    return CreateInvoice(
        request_id=request.request_id,
        account_id=request.account_id,
        subscription_id=request.subscription_id,
        order_number=request.order_number,
        kind=enum_in(KIND_FROM_PB, request.kind, "kind"),
        currency=currency,
        lines=line_inputs(request.lines, currency),
        payment_method_id=request.payment_method_id,
        plan=PLAN_FROM_PB.get(request.installment_plan)
        or enum_in({}, request.installment_plan, "installment_plan"),
        term=enum_in(TERM_FROM_PB, request.term, "term"),
        term_start_date=from_pb_date(request.term_start_date, "term_start_date"),
        channel=enum_in(CHANNEL_FROM_PB, request.channel, "channel"),
        quote=request.quote,
        time_zone=request.time_zone or "UTC",
        buyer_email=request.buyer_email,
        buyer_name=request.buyer_name,
        country_code=request.country_code,
        region=request.region,
        language=request.language,
    )


def details_update(request) -> DetailsUpdate:
    target = request.WhichOneof("target")
    return DetailsUpdate(
        invoice_id=request.invoice_id if target == "invoice_id" else "",
        subscription_id=request.subscription_id if target == "subscription_id" else "",
        po_number=request.po_number if request.HasField("po_number") else None,
        notes=request.notes if request.HasField("notes") else None,
        attachments=[(a.filename, a.content_type, a.content) for a in request.attachments],
        remove_attachment_ids=list(request.remove_attachment_ids),
    )


# --- responses ----------------------------------------------------------------------------------


def invoice_view(view: InvoiceView, sees_amounts: bool) -> pb.Invoice:
    """The invoice as the caller may see it (amounts only for those who see them)."""
    full = invoice(view.invoice, list(view.lines), list(view.attachments))
    full.payment_attempts.extend(payment(p) for p in view.payments)
    full.credit_applications.extend(credit_applications(list(view.credit), view.invoice.currency))
    if view.next_retry_time is not None:
        full.next_retry_time.CopyFrom(ts(view.next_retry_time))
    if not sees_amounts:
        return invoice_status_only(full)
    return full


def installment_for(row: InstallmentRow, sees_amounts: bool) -> pb.Installment:
    full = installment(row)
    return full if sees_amounts else installment_status_only(full)


def preview_tax(priced: Priced, currency: str) -> pb.PreviewTaxResponse:
    return pb.PreviewTaxResponse(
        subtotal=money(priced.subtotal, currency),
        tax=money(priced.tax, currency),
        total=money(priced.total, currency),
        lines=[invoice_line(ln, currency) for ln in priced.lines],
        tax_rate=rate(priced.decision.rate),
        tax_name=priced.decision.name,
    )
