"""What an invoice document shows: seller, buyer, lines, tax, totals, due date, PO number, how to pay."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.billing.domain.model import Address, MethodType


@dataclass(frozen=True, slots=True)
class Seller:
    name: str = "Tenure Software AS"
    address_lines: tuple[str, ...] = ("Karl Johans gate 1", "0154 Oslo", "Norway")
    tax_id: str = "NO 999 999 999 MVA"
    email: str = "billing@tenure.example"
    bank_name: str = "Tenure Bank"
    iban: str = "NO93 8601 1117 947"
    bic: str = "TENUNO22"


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    tax: Decimal
    tax_rate: Decimal
    period_start: date | None = None
    period_end: date | None = None


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
    payment_method: MethodType | None = None
    payment_method_label: str = ""
    order_number: str = ""
    po_number: str = ""
    notes: str = ""
    buyer_tax_id: str = ""
    tax_exempt: bool = False
    tax_name: str = "Tax"
    payers: tuple[str, ...] = ()
    installment: str = ""
    seller: Seller = field(default_factory=Seller)

    def payment_instructions(self) -> list[str]:
        if self.status == "paid":
            return [f"Paid in full ({self.payment_method_label or 'payment received'}). Thank you."]
        if self.status == "void":
            return ["This invoice is void. Nothing is owed."]
        if self.payment_method in (MethodType.CARD, MethodType.PAYPAL):
            return [
                f"The amount due is charged to {self.payment_method_label or 'your payment method'}.",
                "If the charge was declined, pay the invoice in your account under Invoices and credit notes.",
            ]
        return [
            f"Pay by bank transfer by {self.due_date.isoformat()} to {self.seller.bank_name},",
            f"IBAN {self.seller.iban}, BIC {self.seller.bic}, quoting invoice {self.invoice_number}.",
            "Or pay by card or PayPal in your account under Invoices and credit notes.",
        ]


def payment_method_label(method_type: str, brand: str = "", last4: str = "", paypal_email: str = "") -> str:
    """How the document names the payment method: "visa card ending 4242", "PayPal (…)", "bank transfer"."""
    if method_type == MethodType.CARD.value:
        return f"{brand} card ending {last4}"
    if method_type == MethodType.PAYPAL.value:
        return f"PayPal ({paypal_email})"
    return "bank transfer"


def installment_label(sequence: int, count: int | None) -> str:
    """ "Installment 2 of 3" on an installment invoice ("" otherwise; three when the plan is gone)."""
    if not sequence:
        return ""
    return f"Installment {sequence} of {3 if count is None else count}"
