"""Credit notes and account credit (rules §5), with their numbers."""

from decimal import Decimal

import pytest

from services.billing.domain.credits import (
    CreditedInvoice,
    LedgerEntry,
    apply_credit,
    balance,
    refunds_by_default,
    split_credit,
)
from services.billing.domain.model import InvoiceStatus, MethodType, Settlement
from shared.errors import InvalidInput, RuleViolation

D = Decimal


def paid(total="786.00", credited="0", applied="0", cash=None) -> CreditedInvoice:
    t = D(total)
    return CreditedInvoice(
        "INV-2025-000001",
        "USD",
        InvoiceStatus.PAID,
        t,
        paid=D(cash) if cash is not None else t - D(applied),
        credit_applied=D(applied),
        credited=D(credited),
    )


def open_(total="500.00", due_credited="0", applied="0") -> CreditedInvoice:
    return CreditedInvoice(
        "INV-2025-000002",
        "NOK",
        InvoiceStatus.OPEN,
        D(total),
        credit_applied=D(applied),
        due_credited=D(due_credited),
        credited=D(due_credited),
    )


def card(inv, requested, asked=None, refundable=None):
    room = D(refundable) if refundable is not None else inv.paid
    return split_credit(
        inv,
        D(requested) if requested is not None else None,
        asked=asked,
        refundable=room,
        refunds_by_default=True,
    )


def test_a_paid_invoice_is_credited_at_most_what_was_paid_minus_earlier_credit_notes():
    assert card(paid(), None).amount == D("786.00")
    left = card(paid(credited="86.00"), None, refundable="700.00")
    assert (left.amount, left.refunded, left.settlement) == (D("700.00"), D("700.00"), Settlement.REFUND)
    assert left.creditable_before == D("700.00")
    assert card(paid(credited="86.00"), "700.00", refundable="700.00").amount == D("700.00")
    with pytest.raises(RuleViolation) as e:
        card(paid(credited="86.00"), "700.01", refundable="700.00")
    assert e.value.reason == "CREDIT_EXCEEDS_PAID" and e.value.metadata == {"creditable": "700.00"}
    with pytest.raises(RuleViolation):
        card(paid(credited="786.00"), None, refundable="0")


def test_a_credit_note_amount_is_positive_and_in_minor_units():
    with pytest.raises(InvalidInput):
        card(paid(), "0")
    with pytest.raises(InvalidInput):
        card(paid(), "1.005")


def test_an_open_invoice_is_credited_by_reducing_what_it_owes():
    first = split_credit(open_(), D("125.00"), asked=None, refundable=D(0), refunds_by_default=False)
    assert (first.due_reduced, first.refunded, first.account_credit) == (D("125.00"), D(0), D(0))
    assert first.settlement == Settlement.AMOUNT_DUE
    assert (first.creditable_before, first.amount_due_after) == (D("500.00"), D("375.00"))
    rest = split_credit(
        open_(due_credited="125.00"), D("375.00"), asked=None, refundable=D(0), refunds_by_default=False
    )
    assert rest.amount_due_after == D("0.00")
    with pytest.raises(RuleViolation) as e:
        split_credit(
            open_(due_credited="125.00"), D("375.01"), asked=None, refundable=D(0), refunds_by_default=False
        )
    assert e.value.reason == "CREDIT_EXCEEDS_PAID" and e.value.metadata == {"creditable": "375.00"}


def test_an_open_invoice_needs_an_amount_and_cannot_be_refunded():
    # no amount: "everything paid" is nothing here (subscription voids such an invoice instead)
    with pytest.raises(RuleViolation) as e:
        split_credit(open_(), None, asked=None, refundable=D(0), refunds_by_default=True)
    assert e.value.reason == "CREDIT_EXCEEDS_PAID"
    for asked in (Settlement.REFUND, Settlement.CASH_BALANCE):
        with pytest.raises(RuleViolation):
            split_credit(open_(), D("10.00"), asked=asked, refundable=D(0), refunds_by_default=True)
    # an open invoice that used 200.00 of account credit still owes 300.00: that is what can be credited
    with pytest.raises(RuleViolation) as e:
        split_credit(
            open_(applied="200.00"), D("300.01"), asked=None, refundable=D(0), refunds_by_default=True
        )
    assert e.value.metadata == {"creditable": "300.00"}


def test_the_buyer_may_keep_a_card_refund_as_account_credit():
    kept = card(paid("1250.00"), "250.00", asked=Settlement.CASH_BALANCE)
    assert (kept.refunded, kept.account_credit, kept.settlement) == (
        D(0),
        D("250.00"),
        Settlement.CASH_BALANCE,
    )


def test_account_credit_an_invoice_used_goes_back_as_account_credit_not_to_the_card():
    # 1000.00 invoice: 250.00 account credit applied, 750.00 charged to the card
    inv = paid("1000.00", applied="250.00")
    whole = card(inv, None)
    assert (whole.amount, whole.refunded, whole.account_credit) == (D("1000.00"), D("750.00"), D("250.00"))
    with pytest.raises(RuleViolation) as e:
        card(inv, "750.01", asked=Settlement.REFUND)
    assert e.value.metadata == {"refundable": "750.00"}
    assert card(inv, "750.00", asked=Settlement.REFUND).refunded == D("750.00")


def test_a_bank_transfer_is_kept_as_account_credit():
    bank = split_credit(paid("50.00"), None, asked=None, refundable=D(0), refunds_by_default=False)
    assert (bank.account_credit, bank.settlement) == (D("50.00"), Settlement.CASH_BALANCE)
    assert refunds_by_default(MethodType.CARD) and refunds_by_default(MethodType.PAYPAL)
    assert not refunds_by_default(MethodType.INVOICE)


def test_a_paid_invoice_is_not_credited_against_an_amount_due_and_a_void_one_not_at_all():
    with pytest.raises(RuleViolation) as e:
        card(paid(), "10.00", asked=Settlement.AMOUNT_DUE)
    assert e.value.reason == "INVOICE_NOT_OPEN"
    void = CreditedInvoice("INV-1", "USD", InvoiceStatus.VOID, D("100.00"))
    with pytest.raises(RuleViolation):
        split_credit(void, D("1.00"), asked=None, refundable=D(0), refunds_by_default=True)


def test_account_credit_is_applied_oldest_credit_note_first_up_to_what_is_due():
    ledger = [
        LedgerEntry("cn-1", "CN-2025-000001", D("100.00")),
        LedgerEntry("cn-2", "CN-2025-000002", D("250.00")),
        LedgerEntry("cn-1", "CN-2025-000001", D("-40.00")),  # applied to an earlier invoice
    ]
    assert balance(ledger) == D("310.00")
    parts = apply_credit(ledger, D("200.00"))
    assert [(p.credit_note_number, p.amount, p.balance_before, p.balance_after) for p in parts] == [
        ("CN-2025-000001", D("60.00"), D("310.00"), D("250.00")),
        ("CN-2025-000002", D("140.00"), D("250.00"), D("110.00")),
    ]
    everything = apply_credit(ledger, D("1000.00"))
    assert sum(p.amount for p in everything) == D("310.00") and everything[-1].balance_after == 0
    assert apply_credit(ledger, D(0)) == [] and apply_credit([], D("10.00")) == []
