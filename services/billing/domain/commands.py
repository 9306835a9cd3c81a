"""The commands billing's handlers take, as decoded from requests (plain values, no protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.billing.domain.invoice import LineInput
from services.billing.domain.model import Address, Channel, InstallmentPlan, InvoiceKind, Term


@dataclass(frozen=True)
class ProfileInput:
    account_id: str
    buyer_email: str
    name: str
    address: Address
    tax_id: str = ""
    tax_exempt: bool = False
    exemption_certificate: str = ""
    exemption_expiry_date: date | None = None
    language: str = ""


@dataclass(frozen=True)
class CreateInvoice:
    request_id: str
    account_id: str
    subscription_id: str
    order_number: str
    kind: InvoiceKind | None
    currency: str
    lines: list[LineInput]
    payment_method_id: str
    plan: InstallmentPlan = InstallmentPlan.AUTO
    term: Term | None = None
    term_start_date: date | None = None
    channel: Channel | None = None
    quote: bool = False
    time_zone: str = "UTC"
    buyer_email: str = ""
    buyer_name: str = ""
    country_code: str = ""
    region: str = ""
    language: str = ""


@dataclass(frozen=True)
class DetailsUpdate:
    """PO number and notes (None: unchanged) and PO documents to add (file name, type, content) or remove,
    of an open invoice (`invoice_id`) or of a subscription's next invoice (`subscription_id`)."""

    invoice_id: str
    subscription_id: str
    po_number: str | None
    notes: str | None
    attachments: list[tuple[str, str, bytes]]
    remove_attachment_ids: list[str]
