"""What the notification service asks other services: the account team (entitlement), the payers
and invoice PDFs (billing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.notification.domain.model import InvoiceState, Person, Role
from shared.errors import InvalidInput, NotFound
from shared.money import from_proto
from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2

_TEAM_ROLES = (common_pb2.ROLE_BUYER, common_pb2.ROLE_PRIMARY_ADMIN, common_pb2.ROLE_SECONDARY_ADMIN)
_ROLE_OF = {
    common_pb2.ROLE_BUYER: Role.BUYER,
    common_pb2.ROLE_PRIMARY_ADMIN: Role.PRIMARY_ADMIN,
    common_pb2.ROLE_SECONDARY_ADMIN: Role.SECONDARY_ADMIN,
    common_pb2.ROLE_PAYER: Role.PAYER,
    common_pb2.ROLE_USER: Role.USER,
}


@dataclass(frozen=True, slots=True)
class Pdf:
    filename: str
    content: bytes


class Peers:
    """Clients of entitlement and billing (ServiceClient: deadlines, retries, domain errors)."""

    def __init__(self, entitlement, billing) -> None:
        self.entitlement = entitlement
        self.billing = billing

    def team(self, account_id: str) -> list[Person]:
        """The buyer and the admins of an account (users are not needed for routing)."""
        people: dict[str, Person] = {}
        for role in _TEAM_ROLES:
            token = ""
            while True:
                try:
                    resp = self.entitlement.ListMembers(
                        entitlement_pb2.ListMembersRequest(
                            account_id=account_id, role=role, page_size=500, page_token=token
                        )
                    )
                except NotFound:
                    return []
                for m in resp.members:
                    roles = frozenset(_ROLE_OF[r] for r in m.roles if r in _ROLE_OF)
                    known = people.get(m.email.lower())
                    if known:
                        roles = roles | known.roles
                    people[m.email.lower()] = Person(m.email, m.name, m.language, roles)
                token = resp.next_page_token
                if not token:
                    break
        return list(people.values())

    def payers(self, account_id: str) -> list[Person]:
        try:
            resp = self.billing.ListPayers(billing_pb2.ListPayersRequest(account_id=account_id))
        except NotFound:
            return []
        return [Person(p.email, p.name, p.language, frozenset({Role.PAYER})) for p in resp.payers]

    def invoice_pdf(self, invoice_id: str) -> Pdf | None:
        try:
            resp = self.billing.GetInvoicePdf(billing_pb2.GetInvoicePdfRequest(invoice_id=invoice_id))
        except NotFound:
            return None
        return Pdf(resp.filename or f"{invoice_id}.pdf", resp.pdf)

    def invoice(self, invoice_id: str) -> InvoiceState | None:
        """The invoice as billing has it now (None: billing does not know it)."""
        try:
            resp = self.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=invoice_id))
        except NotFound:
            return None
        return invoice_state(resp.invoice)

    def unpaid_invoice(self, account_id: str, subscription_id: str) -> InvoiceState | None:
        """The subscription's open invoice that fell due first (None: it has none)."""
        try:
            resp = self.billing.ListInvoices(
                billing_pb2.ListInvoicesRequest(
                    account_id=account_id,
                    subscription_id=subscription_id,
                    status=billing_pb2.INVOICE_STATUS_OPEN,
                    page_size=500,
                )
            )
        except NotFound:
            return None
        found = [invoice_state(i) for i in resp.invoices]
        dated = [i for i in found if i.due_date is not None]
        return min(dated, key=lambda i: (i.due_date, i.invoice_number)) if dated else None


_STATUS = {
    billing_pb2.INVOICE_STATUS_OPEN: "OPEN",
    billing_pb2.INVOICE_STATUS_PAID: "PAID",
    billing_pb2.INVOICE_STATUS_VOID: "VOID",
}
_METHOD = {
    common_pb2.PAYMENT_METHOD_TYPE_CARD: "CARD",
    common_pb2.PAYMENT_METHOD_TYPE_PAYPAL: "PAYPAL",
    common_pb2.PAYMENT_METHOD_TYPE_INVOICE: "INVOICE",
}


def _amount(msg) -> Decimal | None:
    if not msg.currency_code:
        return None
    try:
        return from_proto(msg).amount
    except InvalidInput:
        return None


def invoice_state(inv: billing_pb2.Invoice) -> InvoiceState:
    try:
        zone = ZoneInfo(inv.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    paid_date = None
    if inv.HasField("paid_time") and inv.paid_time.seconds:
        paid_date = datetime.fromtimestamp(inv.paid_time.seconds, tz=UTC).astimezone(zone).date()
    due = date(inv.due_date.year, inv.due_date.month, inv.due_date.day) if inv.due_date.year else None
    return InvoiceState(
        invoice_id=inv.invoice_id,
        invoice_number=inv.invoice_number,
        status=_STATUS.get(inv.status, ""),
        total=_amount(inv.total),
        amount_due=_amount(inv.amount_due),
        currency_code=inv.currency_code or inv.total.currency_code,
        due_date=due,
        paid_date=paid_date,
        payment_method=_METHOD.get(inv.payment_method_type, ""),
        overdue=inv.HasField("overdue_time") and inv.overdue_time.seconds > 0,
    )
