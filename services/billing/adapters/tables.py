"""SQLModel tables of the billing service (its own registry, so each service owns its metadata).

Money is stored as exact decimal text (`DecimalText`), never as a float; times as aware UTC
(`UTCDateTime`). Unique keys carry the rules that must hold under concurrency: one invoice per
`request_id`, one invoice per installment, one installment per (subscription, term start, sequence),
and one counter row per (series, year) for gapless numbering.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.auth.membership import add_members_table
from shared.db import UTCDateTime


class DecimalText(TypeDecorator):
    """Exact decimals as text on every backend (SQLite has no decimal type)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money is never stored as a float")
        return str(Decimal(value))

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


class BillingModel(SQLModel, registry=registry()):
    pass


def _money(**kw):
    return Field(default=Decimal(0), sa_column=Column(DecimalText(), nullable=False, **kw))


def _time(nullable: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class ProfileRow(BillingModel, table=True):
    __tablename__ = "billing_profiles"

    account_id: str = Field(primary_key=True, max_length=80)
    buyer_email: str = ""
    name: str = ""
    language: str = "en"
    country_code: str = ""
    region: str = ""
    city: str = ""
    postal_code: str = ""
    line1: str = ""
    line2: str = ""
    tax_id: str = ""
    tax_exempt: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    exemption_certificate: str = ""
    exemption_expiry_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    prepay_only: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    prepay_only_reason: str = ""
    create_time: datetime = _time()
    update_time: datetime = _time()


class PaymentMethodRow(BillingModel, table=True):
    __tablename__ = "payment_methods"

    payment_method_id: str = Field(primary_key=True, max_length=80)
    account_id: str = Field(index=True, max_length=80)
    type: str
    token: str = ""
    last4: str = ""
    brand: str = ""
    paypal_email: str = ""
    removed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    create_time: datetime = _time()


class PayerRow(BillingModel, table=True):
    __tablename__ = "payers"

    account_id: str = Field(primary_key=True, max_length=80)
    email: str = Field(primary_key=True, max_length=254)
    name: str = ""
    language: str = "en"
    create_time: datetime = _time()


class CounterRow(BillingModel, table=True):
    """The last number given per (series, year); incremented in the issuing transaction."""

    __tablename__ = "number_counters"

    series: str = Field(primary_key=True, max_length=8)
    year: int = Field(primary_key=True)
    last: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class InvoiceRow(BillingModel, table=True):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("invoice_number", name="uq_invoices_number"),
        UniqueConstraint("request_id", name="uq_invoices_request_id"),
        UniqueConstraint("installment_key", name="uq_invoices_installment"),
        Index("ix_invoices_account_issue", "account_id", "issue_time"),
        Index("ix_invoices_status_due", "status", "due_date"),
    )

    invoice_id: str = Field(primary_key=True, max_length=80)
    invoice_number: str = Field(max_length=40)
    request_id: str | None = Field(default=None, max_length=200)
    installment_key: str | None = Field(default=None, max_length=200)
    account_id: str = Field(max_length=80)
    subscription_id: str = Field(default="", index=True, max_length=80)
    order_number: str = ""
    kind: str
    status: str
    currency: str = Field(max_length=3)
    subtotal: Decimal = _money()
    tax: Decimal = _money()
    total: Decimal = _money()
    amount_paid: Decimal = _money()
    amount_credited: Decimal = _money()
    #: account credit applied when issued (the ledger in `credit_ledger` says from which credit notes)
    credit_applied: Decimal = _money()
    #: the part of amount_credited that reduced what was owed while the invoice was open
    amount_due_credited: Decimal = _money()
    tax_rate: Decimal = _money()
    tax_name: str = ""
    tax_exempt: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    issue_time: datetime = _time()
    issue_date: date = Field(sa_column=Column(Date, nullable=False))
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    time_zone: str = "UTC"
    po_number: str = ""
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    payment_method_id: str = ""
    payment_method_type: str = ""
    paid_time: datetime | None = _time(nullable=True)
    overdue_time: datetime | None = _time(nullable=True)
    installment_sequence: int = 0
    buyer_email: str = ""
    buyer_name: str = ""
    country_code: str = ""
    region: str = ""
    city: str = ""
    postal_code: str = ""
    line1: str = ""
    line2: str = ""
    tax_id: str = ""
    payers_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    decline_reason: str = ""
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class InvoiceLineRow(BillingModel, table=True):
    __tablename__ = "invoice_lines"

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(index=True, max_length=80)
    position: int
    description: str = Field(sa_column=Column(Text, nullable=False))
    quantity: int
    unit_price: Decimal = _money()
    amount: Decimal = _money()
    tax: Decimal = _money()
    tax_rate: Decimal = _money()
    period_start: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    period_end: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    product_code: str = ""
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class AttachmentRow(BillingModel, table=True):
    """A PO document of an invoice (invoice_id) or of a subscription's next invoice (subscription_id)."""

    __tablename__ = "attachments"

    attachment_id: str = Field(primary_key=True, max_length=80)
    invoice_id: str = Field(default="", index=True, max_length=80)
    subscription_id: str = Field(default="", index=True, max_length=80)
    filename: str
    content_type: str
    size_bytes: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    create_time: datetime = _time()


class PendingDetailsRow(BillingModel, table=True):
    """PO number and notes the buyer set for a subscription's next invoice."""

    __tablename__ = "pending_invoice_details"

    subscription_id: str = Field(primary_key=True, max_length=80)
    po_number: str = ""
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    update_time: datetime = _time()


class PaymentRow(BillingModel, table=True):
    __tablename__ = "payments"

    payment_id: str = Field(primary_key=True, max_length=80)
    invoice_id: str = Field(index=True, max_length=80)
    status: str
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    payment_method_id: str = ""
    charge_id: str = ""
    decline_reason: str = ""
    create_time: datetime = _time()


class InstallmentRow(BillingModel, table=True):
    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("subscription_id", "term_start_date", "sequence", name="uq_installments_sub_seq"),
        Index("ix_installments_status_due", "status", "due_date"),
    )

    installment_id: str = Field(primary_key=True, max_length=80)
    subscription_id: str = Field(max_length=80)
    account_id: str = Field(max_length=80)
    order_number: str = ""
    term_start_date: date = Field(sa_column=Column(Date, nullable=False))
    sequence: int
    count: int = 3
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    status: str
    invoice_id: str = ""
    payment_method_id: str = ""
    time_zone: str = "UTC"
    lines_json: str = Field(sa_column=Column(Text, nullable=False))
    first_invoice_id: str = ""
    create_time: datetime = _time()


class CreditNoteRow(BillingModel, table=True):
    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("credit_note_number", name="uq_credit_notes_number"),
        Index("ix_credit_notes_account_issue", "account_id", "issue_time"),
    )

    credit_note_id: str = Field(primary_key=True, max_length=80)
    credit_note_number: str = Field(max_length=40)
    account_id: str = Field(max_length=80)
    invoice_id: str = Field(index=True, max_length=80)
    invoice_number: str = ""
    subscription_id: str = ""
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    settlement: str
    refund_id: str = ""
    issue_time: datetime = _time()
    # how `amount` was settled: the parts add up to it
    amount_due_reduced: Decimal = _money()
    refunded_amount: Decimal = _money()
    account_credit_amount: Decimal = _money()
    # what it was computed from: the invoice's creditable amount before, its amount due after
    creditable_before: Decimal = _money()
    invoice_amount_due_after: Decimal = _money()


#: who holds which role on which account (shared/auth/membership.py), kept from entitlement's events
MEMBERS = add_members_table(BillingModel.metadata)
