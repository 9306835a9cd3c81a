"""Whether a payment is needed, how it is collected, and what came of it.

An invoice of zero needs no payment; card and PayPal are charged at once; pay by invoice waits for the
bank transfer (a transfer received settles it); a method that is gone declines. The charge itself is
the gateway's: these rules decide before it and read its answer after.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from services.billing.domain.gateway import ChargeResult
from services.billing.domain.model import InstallmentStatus, MethodType, PaymentStatus

#: the decline reason of an invoice whose payment method was removed before it was charged
METHOD_UNAVAILABLE = "payment_method_unavailable"


class Collection(StrEnum):
    NOT_REQUIRED = "not_required"  # nothing is owed
    UNAVAILABLE = "unavailable"  # no usable payment method
    CHARGE = "charge"  # card or PayPal: charge through the gateway now
    AWAIT_TRANSFER = "await_transfer"  # pay by invoice: the invoice stays open until the transfer
    TRANSFER_RECEIVED = "transfer_received"  # a bank transfer was received for the invoice


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    status: PaymentStatus
    charge_id: str = ""
    decline_reason: str = ""

    @property
    def settles(self) -> bool:
        """The invoice is paid by this outcome."""
        return self.status in (PaymentStatus.SUCCEEDED, PaymentStatus.NOT_REQUIRED)

    @property
    def declined(self) -> bool:
        return self.status == PaymentStatus.DECLINED


def collection_at_issue(
    total: Decimal, method: MethodType | None, method_removed: bool = False
) -> Collection:
    """How a new invoice of `total` is collected with `method` (None: the order has none)."""
    if total == 0:
        return Collection.NOT_REQUIRED
    if method is None or method_removed:
        return Collection.UNAVAILABLE
    if method in (MethodType.CARD, MethodType.PAYPAL):
        return Collection.CHARGE
    return Collection.AWAIT_TRANSFER


def collection_on_payment(method: MethodType) -> Collection:
    """How paying an open invoice with `method` is collected (pay by invoice: the transfer came in)."""
    return Collection.TRANSFER_RECEIVED if method == MethodType.INVOICE else Collection.CHARGE


def payment_outcome(collection: Collection, charge: ChargeResult | None = None) -> PaymentOutcome:
    """The payment's outcome: `charge` is the gateway's answer when `collection` is CHARGE."""
    if collection == Collection.NOT_REQUIRED:
        return PaymentOutcome(PaymentStatus.NOT_REQUIRED)
    if collection == Collection.UNAVAILABLE:
        return PaymentOutcome(PaymentStatus.DECLINED, decline_reason=METHOD_UNAVAILABLE)
    if collection == Collection.AWAIT_TRANSFER:
        return PaymentOutcome(PaymentStatus.PENDING)
    if collection == Collection.TRANSFER_RECEIVED:
        return PaymentOutcome(PaymentStatus.SUCCEEDED)
    if charge is None:
        raise ValueError("a charge's outcome needs the gateway's answer")
    if charge.succeeded:
        return PaymentOutcome(PaymentStatus.SUCCEEDED, charge_id=charge.charge_id)
    return PaymentOutcome(PaymentStatus.DECLINED, decline_reason=charge.decline_reason)


def installment_status_after(invoice_paid: bool) -> InstallmentStatus:
    """An installment once its invoice is issued: paid with it, or invoiced and waiting."""
    return InstallmentStatus.PAID if invoice_paid else InstallmentStatus.INVOICED
