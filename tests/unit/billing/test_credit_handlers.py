"""Credit notes, account credit and PO details on the fake unit of work (rules §5), with their numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.billing.domain.access import Caller
from services.billing.domain.commands import CreateInvoice, DetailsUpdate, ProfileInput
from services.billing.domain.invoice import AmountInput, LineInput
from services.billing.domain.model import (
    Address,
    Channel,
    InvoiceKind,
    InvoiceStatus,
    MethodType,
    PaymentStatus,
    Settlement,
)
from services.billing.handlers import accounts, credits, documents, invoices, payments
from services.billing.handlers.common import Policy
from shared.errors import RuleViolation
from tests.unit.billing.fakes import CountingGateway, FakeDatabase

OPS = Caller(actor="ops")
POLICY = Policy()
D = Decimal


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def gateway() -> CountingGateway:
    return CountingGateway()


def setup(db, gateway, account="acct-1", number="4242424242424242", kind=MethodType.CARD) -> str:
    if db.store.profiles.get(account) is None:
        cmd = ProfileInput(
            account_id=account,
            buyer_email=f"buyer@{account}.example",
            name="Fjordbygg AS",
            address=Address("NO"),
        )
        with db.unit_of_work() as uow:
            accounts.upsert_profile(uow, cmd, OPS)
    with db.unit_of_work() as uow:
        return accounts.add_payment_method(uow, gateway, account, kind, number, "", OPS).payment_method_id


def order(db, gateway, pm, net, *, account="acct-1", currency="NOK", kind=InvoiceKind.NEW, **kw):
    cmd = CreateInvoice(
        request_id=kw.pop("request_id", f"order-{len(db.store.invoices)}-{kind.value}"),
        account_id=account,
        subscription_id=kw.pop("subscription_id", "sub-1"),
        order_number="T-1",
        kind=kind,
        currency=currency,
        lines=[LineInput(description="AutoCAD LT, annual term", quantity=1, unit_price=D(net))],
        payment_method_id=pm,
        **kw,
    )
    with db.unit_of_work() as uow:
        return invoices.create_invoice(uow, gateway, POLICY, cmd)


def credit(db, gateway, invoice_id, amount, request_id, settlement=None, currency="NOK"):
    given = None
    if amount is not None:
        units, cents = divmod(D(amount) * 100, 100)
        given = AmountInput(currency, int(units), int(cents) * 10_000_000)
    with db.unit_of_work() as uow:
        return credits.issue_credit_note(uow, gateway, request_id, invoice_id, given, "goodwill", settlement)


def balance(db, account="acct-1", currency="NOK"):
    return credits.get_balance(db, account, currency)[0]


def view(db, invoice_id):
    return invoices.get_invoice(db, invoice_id)


def test_a_credited_open_invoice_owes_less_and_is_settled_when_credited_to_zero(db, gateway):
    pm = setup(db, gateway, kind=MethodType.INVOICE)
    inv = order(db, gateway, pm, "400.00", channel=Channel.PARTNER_QUOTE, quote=True).invoice.invoice
    assert (inv.status, inv.total) == (InvoiceStatus.OPEN.value, D("500.00"))  # 400.00 + 25 % MVA

    note = credit(db, gateway, inv.invoice_id, "125.00", "cn-1")
    assert note.settlement == Settlement.AMOUNT_DUE.value and not note.refund_id
    assert (note.amount_due_reduced, note.refunded_amount, note.account_credit_amount) == (D("125.00"), 0, 0)
    assert (note.creditable_before, note.invoice_amount_due_after) == (D("500.00"), D("375.00"))
    row = view(db, inv.invoice_id).invoice
    assert row.status == InvoiceStatus.OPEN.value and (row.amount_credited, row.amount_due_credited) == (
        D("125.00"),
        D("125.00"),
    )
    assert balance(db).open_amount == D("375.00")

    with pytest.raises(RuleViolation) as e:
        credit(db, gateway, inv.invoice_id, "375.01", "cn-2")
    assert e.value.reason == "CREDIT_EXCEEDS_PAID" and e.value.metadata == {"creditable": "375.00"}
    assert view(db, inv.invoice_id).invoice.amount_credited == D("125.00")  # refused: nothing changed
    with pytest.raises(RuleViolation):  # no amount: nothing was paid to give back
        credit(db, gateway, inv.invoice_id, None, "cn-3")

    last = credit(db, gateway, inv.invoice_id, "375.00", "cn-4")
    assert last.invoice_amount_due_after == 0
    row = view(db, inv.invoice_id).invoice
    assert row.status == InvoiceStatus.PAID.value and row.amount_paid == 0 and row.paid_time is not None
    assert db.events[-2:] == ["billing.invoice_paid", "billing.credit_note_issued"]
    assert gateway.charges == [] and gateway.refunds == []
    b = balance(db)
    assert (b.open_amount, b.due_credited_amount, b.credited_amount, b.cash_balance) == (
        0,
        D("500.00"),
        D("500.00"),
        0,
    )
    with pytest.raises(RuleViolation) as e:  # settled by credit notes: nothing left to credit
        credit(db, gateway, inv.invoice_id, "1.00", "cn-5")
    assert e.value.reason == "CREDIT_EXCEEDS_PAID"


def test_account_credit_is_applied_to_the_next_renewal_before_the_card_is_charged(db, gateway):
    pm = setup(db, gateway)
    first = order(db, gateway, pm, "1000.00").invoice.invoice
    assert (first.status, first.total) == (InvoiceStatus.PAID.value, D("1250.00"))
    # the buyer asks to keep 250.00 as account credit instead of a refund to the card
    note = credit(db, gateway, first.invoice_id, "250.00", "cn-1", Settlement.CASH_BALANCE)
    assert (note.settlement, note.account_credit_amount, note.refund_id) == ("cash_balance", D("250.00"), "")
    assert gateway.refunds == [] and balance(db).cash_balance == D("250.00")

    renewal = order(db, gateway, pm, "800.00", kind=InvoiceKind.RENEWAL, request_id="renew-1")
    inv = renewal.invoice.invoice
    assert (inv.total, inv.credit_applied, inv.status) == (
        D("1000.00"),
        D("250.00"),
        InvoiceStatus.PAID.value,
    )
    assert (inv.amount_paid, renewal.payment.amount) == (D("750.00"), D("750.00"))
    assert gateway.charges[-1][:2] == (D("750.00"), "NOK")  # only the rest is charged
    (applied,) = renewal.invoice.credit
    assert (applied.credit_note_id, applied.credit_note_number) == (
        note.credit_note_id,
        note.credit_note_number,
    )
    assert (applied.amount, applied.balance_before, applied.balance_after) == (D("-250.00"), D("250.00"), 0)
    b = balance(db)
    assert (b.cash_balance, b.credit_applied_amount, b.account_credit_amount) == (0, D("250.00"), D("250.00"))

    # the same request again: the same invoice, the credit applied once, no second charge
    again = order(db, gateway, pm, "800.00", kind=InvoiceKind.RENEWAL, request_id="renew-1")
    assert again.invoice.invoice.invoice_id == inv.invoice_id
    assert len(db.store.credit_entries) == 2 and len(gateway.charges) == 2


def test_credit_that_covers_an_invoice_pays_it_without_a_charge_and_the_rest_waits(db, gateway):
    pm = setup(db, gateway)
    first = order(db, gateway, pm, "1000.00").invoice.invoice
    credit(db, gateway, first.invoice_id, None, "cn-1", Settlement.CASH_BALANCE)  # all 1250.00 kept
    charges = len(gateway.charges)
    seats = order(db, gateway, pm, "800.00", kind=InvoiceKind.ADD_SEATS)
    inv = seats.invoice.invoice
    assert (inv.status, inv.credit_applied, inv.amount_paid) == (InvoiceStatus.PAID.value, D("1000.00"), 0)
    assert (seats.payment.status, seats.payment.amount) == (PaymentStatus.NOT_REQUIRED.value, 0)
    assert len(gateway.charges) == charges  # no card charge
    assert balance(db).cash_balance == D("250.00")
    # credit in NOK is not used by an invoice in USD
    usd = order(db, gateway, pm, "100.00", currency="USD").invoice.invoice
    assert (usd.credit_applied, usd.amount_paid) == (0, D("125.00"))
    assert balance(db).cash_balance == D("250.00")


def test_a_declined_rest_stays_due_and_paying_it_charges_only_the_rest(db, gateway):
    good = setup(db, gateway)
    first = order(db, gateway, good, "200.00").invoice.invoice
    credit(db, gateway, first.invoice_id, None, "cn-1", Settlement.CASH_BALANCE)  # 250.00 kept
    bad = setup(db, gateway, number="4000000000000002")
    declined = order(db, gateway, bad, "800.00", kind=InvoiceKind.RENEWAL).invoice.invoice
    assert (declined.status, declined.credit_applied) == (InvoiceStatus.OPEN.value, D("250.00"))
    assert balance(db).open_amount == D("750.00")
    with db.unit_of_work() as uow:
        paid_view, payment = payments.pay_invoice(uow, gateway, "pay-1", declined.invoice_id, good)
    assert (payment.amount, paid_view.invoice.status) == (D("750.00"), InvoiceStatus.PAID.value)
    assert gateway.charges[-1][0] == D("750.00")


def test_voiding_an_invoice_gives_its_account_credit_back(db, gateway):
    card = setup(db, gateway)
    first = order(db, gateway, card, "200.00").invoice.invoice
    note = credit(db, gateway, first.invoice_id, "100.00", "cn-1", Settlement.CASH_BALANCE)
    bank = setup(db, gateway, kind=MethodType.INVOICE)
    inv = order(db, gateway, bank, "400.00", channel=Channel.PARTNER_QUOTE, quote=True).invoice.invoice
    assert (inv.credit_applied, balance(db).cash_balance, balance(db).open_amount) == (
        D("100.00"),
        0,
        D("400.00"),
    )
    with db.unit_of_work() as uow:
        voided = invoices.void_invoice(uow, inv.invoice_id)
    assert (voided.invoice.status, voided.invoice.credit_applied) == (InvoiceStatus.VOID.value, 0)
    assert [(e.kind, e.amount, e.credit_note_id) for e in voided.credit] == [
        ("applied", D("-100.00"), note.credit_note_id),
        ("released", D("100.00"), note.credit_note_id),
    ]
    b = balance(db)
    assert (b.cash_balance, b.open_amount, b.credit_applied_amount) == (D("100.00"), 0, 0)


def test_a_refund_of_an_invoice_paid_partly_by_account_credit_gives_that_part_back_as_credit(db, gateway):
    pm = setup(db, gateway)
    first = order(db, gateway, pm, "200.00").invoice.invoice
    credit(db, gateway, first.invoice_id, None, "cn-1", Settlement.CASH_BALANCE)  # 250.00 kept
    inv = order(db, gateway, pm, "800.00", kind=InvoiceKind.RENEWAL).invoice.invoice  # 250 credit + 750 card
    note = credit(db, gateway, inv.invoice_id, None, "cn-2")
    assert (note.amount, note.refunded_amount, note.account_credit_amount) == (
        D("1000.00"),
        D("750.00"),
        D("250.00"),
    )
    assert note.settlement == "refund" and gateway.refunds[-1][1] == D("750.00")
    assert balance(db).cash_balance == D("250.00")


def test_po_details_saved_for_the_renewal_go_on_the_renewal_invoice_only(db, gateway):
    pm = setup(db, gateway)
    order(db, gateway, pm, "100.00", subscription_id="sub-po")
    with db.unit_of_work() as uow:
        documents.update_details(
            uow,
            POLICY,
            DetailsUpdate(
                invoice_id="",
                subscription_id="sub-po",
                po_number="PO-4711",
                notes="Attn. accounts payable",
                attachments=[("po-4711.pdf", "application/pdf", b"%PDF-1.4 po")],
                remove_attachment_ids=[],
            ),
        )
    for kind in (InvoiceKind.ADD_SEATS, InvoiceKind.ALIGN):
        other = order(db, gateway, pm, "50.00", subscription_id="sub-po", kind=kind).invoice
        assert (other.invoice.po_number, other.invoice.notes, list(other.attachments)) == ("", "", [])
    renewal = order(db, gateway, pm, "420.00", subscription_id="sub-po", kind=InvoiceKind.RENEWAL).invoice
    assert (renewal.invoice.po_number, renewal.invoice.notes) == ("PO-4711", "Attn. accounts payable")
    assert [a.filename for a in renewal.attachments] == ["po-4711.pdf"]
    later = order(db, gateway, pm, "50.00", subscription_id="sub-po", kind=InvoiceKind.ADD_SEATS).invoice
    assert (later.invoice.po_number, list(later.attachments)) == ("", [])
