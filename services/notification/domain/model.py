"""The words of the notification domain: kinds of e-mail, roles, people and the facts a mail tells."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class Kind(StrEnum):
    """What an e-mail is about (the proto's NotificationKind without its prefix)."""

    ORDER_CONFIRMATION = "ORDER_CONFIRMATION"
    RENEWAL_CONFIRMATION = "RENEWAL_CONFIRMATION"
    RENEWAL_REMINDER = "RENEWAL_REMINDER"
    SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
    SUBSCRIPTION_SUSPENDED = "SUBSCRIPTION_SUSPENDED"
    SUBSCRIPTION_CANCELLED = "SUBSCRIPTION_CANCELLED"
    SEATS_ADDED = "SEATS_ADDED"
    UPGRADE_CONFIRMATION = "UPGRADE_CONFIRMATION"
    REFUND_CONFIRMATION = "REFUND_CONFIRMATION"
    INVOICE_ISSUED = "INVOICE_ISSUED"
    INVOICE_OVERDUE = "INVOICE_OVERDUE"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PRODUCT_ACCESS = "PRODUCT_ACCESS"
    ROLE_CHANGED = "ROLE_CHANGED"
    SEAT_ASSIGNED = "SEAT_ASSIGNED"
    INVOICE_REMINDER = "INVOICE_REMINDER"
    USER_ASSIGNED = "USER_ASSIGNED"
    QUOTE_ISSUED = "QUOTE_ISSUED"
    QUOTE_ACCEPTED = "QUOTE_ACCEPTED"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    RENEWAL_OPPORTUNITY = "RENEWAL_OPPORTUNITY"

    @property
    def template_name(self) -> str:
        return self.value.lower()


# Billing and renewal mail: only the buyer (and, for invoices, the payers) may receive it.
BILLING_AND_RENEWAL_KINDS: frozenset[Kind] = frozenset(
    {
        Kind.ORDER_CONFIRMATION,
        Kind.RENEWAL_CONFIRMATION,
        Kind.RENEWAL_REMINDER,
        Kind.SUBSCRIPTION_EXPIRED,
        Kind.SUBSCRIPTION_SUSPENDED,
        Kind.SUBSCRIPTION_CANCELLED,
        Kind.SEATS_ADDED,
        Kind.UPGRADE_CONFIRMATION,
        Kind.REFUND_CONFIRMATION,
        Kind.INVOICE_ISSUED,
        Kind.INVOICE_OVERDUE,
        Kind.PAYMENT_FAILED,
        Kind.INVOICE_REMINDER,
    }
)

# Mail to a partner about its quotes and the renewals of what it sold (rules §9).
PARTNER_KINDS: frozenset[Kind] = frozenset(
    {Kind.QUOTE_ACCEPTED, Kind.QUOTE_EXPIRED, Kind.RENEWAL_OPPORTUNITY}
)

# Kinds whose e-mail carries the invoice PDF.
INVOICE_KINDS: frozenset[Kind] = frozenset({Kind.INVOICE_ISSUED, Kind.INVOICE_OVERDUE, Kind.INVOICE_REMINDER})

# Kinds that tell about one invoice as billing has it when the mail is made (paid or open, amount due).
INVOICE_STATE_KINDS: frozenset[Kind] = frozenset({Kind.INVOICE_ISSUED, Kind.INVOICE_REMINDER})


class Role(StrEnum):
    """A person's role on an account (the proto's tenure.common.v1.Role without its prefix)."""

    BUYER = "BUYER"
    PRIMARY_ADMIN = "PRIMARY_ADMIN"
    SECONDARY_ADMIN = "SECONDARY_ADMIN"
    PAYER = "PAYER"
    USER = "USER"
    PARTNER = "PARTNER"  # the partner that quoted or sold (no role on the account; rules §9)


ADMIN_ROLES: frozenset[Role] = frozenset({Role.PRIMARY_ADMIN, Role.SECONDARY_ADMIN})

# When one person holds several roles, the e-mail names the first of these.
ROLE_PRECEDENCE: tuple[Role, ...] = (
    Role.BUYER,
    Role.PRIMARY_ADMIN,
    Role.SECONDARY_ADMIN,
    Role.PAYER,
    Role.USER,
    Role.PARTNER,
)


class Status(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who may receive mail, with the roles they hold on the account."""

    email: str
    name: str = ""
    language: str = ""
    roles: frozenset[Role] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", normalize_email(self.email))
        object.__setattr__(self, "roles", frozenset(self.roles))

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)


@dataclass(frozen=True, slots=True)
class MailFacts:
    """Everything a template may tell. Every field has a value (None or empty when unknown), so a
    template can test any of them; per-recipient fields are filled in at planning time."""

    recipient_name: str = ""
    recipient_email: str = ""
    account_id: str = ""
    subscription_id: str = ""
    product_code: str = ""
    product_name: str = ""
    plan: str = ""  # STANDARD, PREMIUM
    term: str = ""  # MONTHLY, ANNUAL, THREE_YEAR
    seats: int | None = None
    seats_added: int | None = None
    order_number: str = ""
    amount: Decimal | None = None
    currency_code: str = ""
    order_kind: str = ""  # order confirmation: "" (a new subscription), trial_converted, aligned
    invoice_number: str = ""
    amount_due: Decimal | None = None  # what is still owed on the invoice (None: not known)
    paid: bool = False  # the invoice is paid in full
    paid_date: date | None = None  # when (the invoice's zone)
    payment_method: str = ""  # CARD, PAYPAL, INVOICE (how the invoice is paid)
    issue_date: date | None = None
    due_date: date | None = None
    renewal_date: date | None = None
    expiry_date: date | None = None
    auto_renew: bool = True
    days_before: int | None = None
    trial: bool = False
    reason: str = ""
    decline_reason: str = ""
    retry_attempt: int = 0  # payment_failed: declined attempts so far (0: not retried automatically)
    next_retry_date: date | None = None  # payment_failed: when the charge is tried again
    update_payment_method: bool = False  # payment_failed: only another payment method can pay now
    role: str = ""  # the role granted or revoked
    granted: bool = True
    member_name: str = ""
    member_email: str = ""
    actor_email: str = ""
    old_product_name: str = ""
    old_access_until_date: date | None = None
    next_stage_date: date | None = None  # stage e-mails: when the next shutoff stage begins
    immediate_shutoff: bool = False  # the product loses access the moment it expires
    quote_number: str = ""  # quote mail (rules §9)
    quote_version: int = 0
    valid_until_date: date | None = None  # the quote's last valid day
    partner_name: str = ""  # the partner organisation
    customer_name: str = ""  # partner mail: the buyer the quote names
    customer_email: str = ""
    subtotal: Decimal | None = None  # a quote before tax
    tax: Decimal | None = None
    portal_url: str = "https://manage.tenure.example"

    def for_recipient(self, person: Person) -> MailFacts:
        return replace(self, recipient_name=person.name or person.email, recipient_email=person.email)

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class EventFacts:
    """One consumed event, as the routing table needs it.

    `buyer` is the buyer named by the event itself (subscription snapshot or invoice); `subject`
    is the person the event is about (the newly assigned user, the member whose role changed);
    `payer_emails` are the payers listed on an invoice.
    """

    event_id: str
    event_type: str
    account_id: str
    subscription_id: str = ""
    to_stage: str = ""  # stage_changed only: EXPIRED, SUSPENDED, CANCELLED, ACTIVE, …
    reason: str = ""
    buyer: Person | None = None
    subject: Person | None = None
    payer_emails: tuple[str, ...] = ()
    partner: Person | None = None  # whom at the partner to tell (quote and renewal-opportunity mail)
    invoice_id: str = ""
    change: str = ""  # subscription.changed only: aligned, trial_converted, auto_renew, …
    time: datetime | None = None  # when the event happened (an invoice reminder: when it is due)
    facts: MailFacts = field(default_factory=MailFacts)


@dataclass(frozen=True, slots=True)
class Planned:
    """One e-mail to send: the exactly-once key is (event_id, recipient email, kind)."""

    event_id: str
    kind: Kind
    recipient: Person
    role: Role
    language: str
    facts: MailFacts

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.event_id, self.recipient.email, self.kind)


def dedupe_key(event_id: str, email: str, kind: Kind) -> str:
    return f"{event_id}|{normalize_email(email)}|{kind.value}"


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """An invoice as billing has it when a mail about it is made."""

    invoice_id: str
    invoice_number: str
    status: str  # OPEN, PAID, VOID
    total: Decimal | None
    amount_due: Decimal | None
    currency_code: str
    due_date: date | None
    paid_date: date | None = None
    payment_method: str = ""  # CARD, PAYPAL, INVOICE
    overdue: bool = False  # billing holds it overdue (its overdue e-mail has told)

    @property
    def is_open(self) -> bool:
        return self.status == "OPEN"

    @property
    def worth_a_reminder(self) -> bool:
        """Open and not yet overdue: once overdue, the overdue e-mail tells instead."""
        return self.is_open and not self.overdue


def with_invoice(facts: MailFacts, invoice: InvoiceState) -> MailFacts:
    """The facts of a mail about `invoice`: paid (how, when) or open (amount due, due date)."""
    return replace(
        facts,
        invoice_number=invoice.invoice_number or facts.invoice_number,
        amount=invoice.total if invoice.total is not None else facts.amount,
        currency_code=invoice.currency_code or facts.currency_code,
        due_date=invoice.due_date or facts.due_date,
        amount_due=invoice.amount_due if invoice.is_open else None,
        paid=invoice.status == "PAID",
        paid_date=invoice.paid_date if invoice.status == "PAID" else None,
        payment_method=invoice.payment_method or facts.payment_method,
    )
