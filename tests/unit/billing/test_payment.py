"""Whether a payment succeeded, was declined or was not needed; an invoice's figures; installment shares."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.billing.domain import installments as inst
from services.billing.domain.document import installment_label, payment_method_label
from services.billing.domain.gateway import ChargeResult
from services.billing.domain.invoice import (
    AmountInput,
    LineInput,
    amount_in,
    draft_invoice,
    order_subtotal,
    price_lines,
)
from services.billing.domain.model import Address, InstallmentStatus, MethodType, PaymentStatus, TaxStatus
from services.billing.domain.payment import (
    METHOD_UNAVAILABLE,
    Collection,
    collection_at_issue,
    collection_on_payment,
    installment_status_after,
    payment_outcome,
)
from services.billing.domain.tax import decide_tax
from shared.errors import InvalidInput

NO = decide_tax(TaxStatus(Address("NO")), date(2024, 6, 10))


@pytest.mark.parametrize(
    ("total", "method", "removed", "expected"),
    [
        (Decimal("0"), MethodType.CARD, False, Collection.NOT_REQUIRED),
        (Decimal("0"), None, False, Collection.NOT_REQUIRED),
        (Decimal("587.50"), None, False, Collection.UNAVAILABLE),
        (Decimal("587.50"), MethodType.CARD, True, Collection.UNAVAILABLE),
        (Decimal("587.50"), MethodType.CARD, False, Collection.CHARGE),
        (Decimal("587.50"), MethodType.PAYPAL, False, Collection.CHARGE),
        (Decimal("587.50"), MethodType.INVOICE, False, Collection.AWAIT_TRANSFER),
    ],
)
def test_how_a_new_invoice_is_collected(total, method, removed, expected):
    assert collection_at_issue(total, method, removed) == expected


def test_what_came_of_a_payment():
    assert payment_outcome(Collection.NOT_REQUIRED).status == PaymentStatus.NOT_REQUIRED
    assert payment_outcome(Collection.NOT_REQUIRED).settles
    gone = payment_outcome(Collection.UNAVAILABLE)
    assert gone.declined and gone.decline_reason == METHOD_UNAVAILABLE and not gone.settles
    pending = payment_outcome(Collection.AWAIT_TRANSFER)
    assert pending.status == PaymentStatus.PENDING and not pending.settles and not pending.declined
    ok = payment_outcome(Collection.CHARGE, ChargeResult(True, charge_id="ch_1"))
    assert ok.settles and ok.charge_id == "ch_1"
    no = payment_outcome(Collection.CHARGE, ChargeResult(False, decline_reason="card_declined"))
    assert no.declined and no.decline_reason == "card_declined"
    with pytest.raises(ValueError):
        payment_outcome(Collection.CHARGE)
    assert collection_on_payment(MethodType.INVOICE) == Collection.TRANSFER_RECEIVED
    assert payment_outcome(Collection.TRANSFER_RECEIVED).settles
    assert collection_on_payment(MethodType.CARD) == Collection.CHARGE
    assert installment_status_after(True) == InstallmentStatus.PAID
    assert installment_status_after(False) == InstallmentStatus.INVOICED


def test_an_invoice_is_dated_in_the_buyers_zone_and_due_thirty_days_later():
    lines = price_lines(
        [LineInput("3 seats co-termed", 3, Decimal("470.00"), amount=Decimal("737.84"))], "NOK", NO
    )
    d = draft_invoice(lines, NO, datetime(2024, 6, 10, 22, 30, tzinfo=UTC), "Europe/Oslo")
    assert (d.subtotal, d.tax, d.total) == (Decimal("737.84"), Decimal("184.46"), Decimal("922.30"))
    assert (d.tax_rate, d.tax_name, d.tax_exempt) == (Decimal("0.25"), "MVA", False)
    assert d.issue_date == date(2024, 6, 11) and d.due_date == date(2024, 7, 11)
    assert draft_invoice(lines, NO, datetime(2024, 6, 10, 8, tzinfo=UTC), "UTC", 14).due_date == date(
        2024, 6, 24
    )


def test_negative_orders_and_invoices_are_refused():
    credit = price_lines([LineInput("credit", 1, Decimal("0"), amount=Decimal("-10.00"))], "USD", NO)
    with pytest.raises(InvalidInput) as e:
        order_subtotal(credit)
    assert e.value.reason == "INVOICE_TOTAL_NEGATIVE"
    with pytest.raises(InvalidInput):
        draft_invoice(credit, NO, datetime(2024, 6, 10, tzinfo=UTC), "UTC")


def test_installment_shares_keep_every_line_billed_once():
    inputs = [
        LineInput(" AutoCAD LT, 3-year term ", 2, Decimal("655.00")),
    ]
    lines = price_lines(inputs, "USD", decide_tax(TaxStatus(Address("US", "OR")), date(2024, 9, 16)))
    plan = inst.schedule([ln.amount for ln in lines], date(2024, 9, 16), "USD")
    shares = [inst.shares(inputs, item) for item in plan]
    assert [s[0].amount for s in shares] == [Decimal("436.68"), Decimal("436.66"), Decimal("436.66")]
    first = inst.installment_inputs(shares[0], 1, 3)
    assert first[0].description == "AutoCAD LT, 3-year term (installment 1 of 3)"
    stored = inst.share_from_json(inst.share_to_json(shares[1][0]))
    assert stored == shares[1][0]
    assert inst.installment_key("sub-n", date(2024, 9, 16), 2) == "sub-n:2024-09-16:2"


def test_an_amount_is_read_in_the_invoices_currency():
    assert amount_in(AmountInput("NOK", 25, 0), "NOK", "amount") == Decimal("25.00")
    assert amount_in(AmountInput("", 25, 500_000_000), "NOK", "amount") == Decimal("25.50")
    with pytest.raises(InvalidInput) as e:
        amount_in(AmountInput("USD", 25, 0), "NOK", "amount")
    assert e.value.reason == "CURRENCY_MISMATCH"
    with pytest.raises(InvalidInput) as e:
        amount_in(AmountInput("NOK", 0, 1_000_000), "NOK", "amount")
    assert e.value.field_violations == [("amount", e.value.message)]


def test_the_document_names_the_payment_method_and_the_installment():
    assert payment_method_label("card", "visa", "4242") == "visa card ending 4242"
    assert payment_method_label("paypal", paypal_email="ap@fjordbygg.no") == "PayPal (ap@fjordbygg.no)"
    assert payment_method_label("invoice") == "bank transfer"
    assert installment_label(0, 3) == ""
    assert installment_label(2, 3) == "Installment 2 of 3"
    assert installment_label(2, None) == "Installment 2 of 3"
