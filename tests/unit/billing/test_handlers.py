"""Billing's handlers on the fake unit of work: the rules that were tested only through a server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.billing.domain.access import Caller
from services.billing.domain.commands import CreateInvoice, DetailsUpdate, ProfileInput
from services.billing.domain.invoice import AmountInput, LineInput
from services.billing.domain.model import (
    Address,
    Channel,
    InstallmentStatus,
    InvoiceKind,
    InvoiceStatus,
    MethodType,
    PaymentStatus,
    Term,
)
from services.billing.handlers import accounts, credits, documents, invoices, payments, sweep
from services.billing.handlers.common import Policy
from shared.errors import InvalidInput, LimitReached, RuleViolation
from tests.unit.billing.fakes import CountingGateway, FakeDatabase

OPS = Caller(actor="ops")
POLICY = Policy()


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def gateway() -> CountingGateway:
    return CountingGateway()


def profile(db, account="acct-1", country="NO", region="", **kw):
    cmd = ProfileInput(
        account_id=account,
        buyer_email=f"buyer@{account}.example",
        name=kw.pop("name", "Fjordbygg AS"),
        address=Address(country, region),
        **kw,
    )
    with db.unit_of_work() as uow:
        return accounts.upsert_profile(uow, cmd, OPS)


def method(db, gateway, account="acct-1", kind=MethodType.CARD, number="4242424242424242"):
    with db.unit_of_work() as uow:
        return accounts.add_payment_method(uow, gateway, account, kind, number, "", OPS).payment_method_id


_orders = iter(range(1, 10_000))


def order(db, gateway, pm, account="acct-1", amount="470.00", quantity=1, currency="USD", **kw):
    cmd = CreateInvoice(
        request_id=kw.pop("request_id", f"order-{next(_orders)}"),
        account_id=account,
        subscription_id=kw.pop("subscription_id", "sub-1"),
        order_number="T-1",
        kind=kw.pop("kind", InvoiceKind.NEW),
        currency=currency,
        lines=[
            LineInput(
                description=kw.pop("description", "AutoCAD LT, annual term"),
                quantity=quantity,
                unit_price=Decimal(amount),
            )
        ],
        payment_method_id=pm,
        **kw,
    )
    with db.unit_of_work() as uow:
        return invoices.create_invoice(uow, gateway, POLICY, cmd)


def test_the_sixth_payer_is_refused_and_payers_are_listed_on_invoices(db, gateway):
    profile(db)
    for n in range(5):
        with db.unit_of_work() as uow:
            accounts.add_payer(uow, "acct-1", f"AP{n}@fjordbygg.no", f"AP {n}", "", OPS)
    with db.unit_of_work() as uow, pytest.raises(LimitReached) as e:
        accounts.add_payer(uow, "acct-1", "sixth@fjordbygg.no", "", "", OPS)
    assert e.value.reason == "PAYER_LIMIT_REACHED" and "at most 5 payers" in e.value.message
    assert len(accounts.list_payers(db, "acct-1")) == 5
    assert db.events.count("billing.payer_changed") == 5

    with db.unit_of_work() as uow:
        accounts.remove_payer(uow, "acct-1", "ap4@fjordbygg.no", OPS)
    inv = order(db, gateway, method(db, gateway)).invoice.invoice
    assert [p["email"] for p in json.loads(inv.payers_json)] == [f"ap{n}@fjordbygg.no" for n in range(4)]


def test_a_card_is_charged_at_once_and_a_declined_card_leaves_the_invoice_open(db, gateway):
    profile(db)
    issued = order(db, gateway, method(db, gateway), request_id="o-1")
    assert issued.payment.status == PaymentStatus.SUCCEEDED.value
    assert issued.invoice.invoice.status == InvoiceStatus.PAID.value
    assert issued.invoice.invoice.total == Decimal("587.50")  # 470.00 + 25 % MVA
    assert issued.invoice.invoice.invoice_number == "INV-2024-000001"
    # the same request again: the same invoice, no second charge
    again = order(db, gateway, method(db, gateway), request_id="o-1")
    assert again.invoice.invoice.invoice_id == issued.invoice.invoice.invoice_id
    assert len(gateway.charges) == 1

    declined = order(db, gateway, method(db, gateway, number="4000000000000002"))
    assert declined.payment.status == PaymentStatus.DECLINED.value
    assert declined.invoice.invoice.status == InvoiceStatus.OPEN.value
    assert declined.invoice.invoice.decline_reason == "card_declined"
    assert db.events[-1] == "billing.payment_failed"


def test_credit_notes_never_exceed_what_was_paid(db, gateway):
    profile(db, "acct-c", "NO")
    paid = order(
        db, gateway, method(db, gateway, "acct-c"), "acct-c", "100.00", currency="NOK"
    ).invoice.invoice
    assert paid.total == Decimal("125.00")

    def credit(amount, request_id):
        given = AmountInput("NOK", *divmod_units(amount)) if amount is not None else None
        with db.unit_of_work() as uow:
            return credits.issue_credit_note(uow, gateway, request_id, paid.invoice_id, given, "")

    with pytest.raises(RuleViolation) as e:
        credit(Decimal("125.01"), "cn-0")
    assert e.value.reason == "CREDIT_EXCEEDS_PAID"
    cn = credit(Decimal("25.00"), "cn-1")
    assert cn.credit_note_number.startswith("CN-2024-") and cn.settlement == "refund" and cn.refund_id
    assert credit(None, "cn-2").amount == Decimal("100.00")
    with pytest.raises(RuleViolation):
        credit(None, "cn-3")
    with pytest.raises(InvalidInput) as e:
        with db.unit_of_work() as uow:
            credits.issue_credit_note(uow, gateway, "cn-4", paid.invoice_id, AmountInput("USD", 1, 0), "")
    assert e.value.reason == "CURRENCY_MISMATCH"

    balance, _ = credits.get_balance(db, "acct-c", "")
    assert balance.currency == "NOK" and balance.paid_amount == Decimal("125.00")
    assert balance.credited_amount == balance.refunded_amount == Decimal("125.00")
    assert len(credits.list_credit_notes(db, "acct-c", 0, "").credit_notes) == 2


def divmod_units(amount: Decimal) -> tuple[int, int]:
    units = int(amount)
    return units, int((amount - units) * 1_000_000_000)


def test_a_three_year_purchase_is_split_1310_with_the_remainder_first(db, gateway):
    db.clock.set(datetime(2024, 9, 16, 12, 0, tzinfo=UTC))
    profile(db, "acct-n", "US", "OR")  # no sales tax in Oregon
    issued = order(
        db,
        gateway,
        method(db, gateway, "acct-n"),
        "acct-n",
        "1310.00",
        term=Term.THREE_YEAR,
        subscription_id="sub-n",
    )
    assert [i.amount for i in issued.installments] == [
        Decimal("436.68"),
        Decimal("436.66"),
        Decimal("436.66"),
    ]
    assert [i.due_date for i in issued.installments] == [
        date(2024, 9, 16),
        date(2025, 9, 16),
        date(2026, 9, 16),
    ]
    assert [i.status for i in issued.installments] == ["paid", "scheduled", "scheduled"]
    inv = issued.invoice
    assert inv.invoice.total == Decimal("436.68") and inv.invoice.installment_sequence == 1
    assert inv.lines[0].description == "AutoCAD LT, annual term (installment 1 of 3)"

    assert sweep.sweep(db, gateway, POLICY, datetime(2025, 9, 15, 23, 59, tzinfo=UTC)).issued == 0
    second = sweep.sweep(db, gateway, POLICY, datetime(2025, 9, 16, 0, 0, tzinfo=UTC))
    assert (second.issued, second.paid) == (1, 1)
    with db.reading() as uow:
        again = uow.invoices.get(uow.installments.of_subscription("sub-n")[1].invoice_id)
        assert again.kind == InvoiceKind.INSTALLMENT.value and again.total == Decimal("436.66")
        assert uow.invoices.lines(again.invoice_id)[0].description.endswith("(installment 2 of 3)")

    with db.unit_of_work() as uow:
        assert sweep.cancel_installments(uow, "sub-n") == 1
    assert sweep.sweep(db, gateway, POLICY, datetime(2027, 1, 1, tzinfo=UTC)).issued == 0
    assert [i.status for i in sweep.list_installments(db, "sub-n")] == [
        InstallmentStatus.PAID.value,
        InstallmentStatus.PAID.value,
        InstallmentStatus.CANCELLED.value,
    ]


def test_pay_by_invoice_needs_a_quote_and_a_prepay_only_account_must_prepay(db, gateway):
    profile(db)
    inv_pm = method(db, gateway, kind=MethodType.INVOICE)
    with pytest.raises(RuleViolation) as e:
        order(db, gateway, inv_pm, channel=Channel.DIRECT_ONLINE)
    assert e.value.reason == "PAY_BY_INVOICE_NOT_ALLOWED"
    quoted = order(db, gateway, inv_pm, channel=Channel.PARTNER_QUOTE, subscription_id="sub-q")
    assert quoted.payment.status == PaymentStatus.PENDING.value
    assert quoted.invoice.invoice.status == InvoiceStatus.OPEN.value
    order(db, gateway, inv_pm, channel=Channel.DIRECT_ONLINE, subscription_id="sub-d")  # pays one by invoice

    with db.unit_of_work() as uow:
        accounts.mark_prepay_only(uow, "acct-1", "sub-q cancelled for non-payment")
    with pytest.raises(RuleViolation) as e:
        order(db, gateway, inv_pm, channel=Channel.PARTNER_QUOTE)
    assert e.value.reason == "ACCOUNT_PREPAY_ONLY"
    check = accounts.check_payment_method(db, "acct-1", "", MethodType.INVOICE, None, True)
    assert not check.allowed and check.reason == "ACCOUNT_PREPAY_ONLY"
    assert order(db, gateway, method(db, gateway)).invoice.invoice.status == InvoiceStatus.PAID.value
    assert accounts.get_profile(db, "acct-1").prepay_only

    # a bank transfer received pays the open invoice
    with db.unit_of_work() as uow:
        view, payment = payments.pay_invoice(uow, gateway, "bt-1", quoted.invoice.invoice.invoice_id, "")
    assert payment.status == PaymentStatus.SUCCEEDED.value and view.invoice.status == InvoiceStatus.PAID.value


def test_po_details_set_before_a_renewal_go_on_its_invoice(db, gateway):
    profile(db)
    pm = method(db, gateway)
    first = order(db, gateway, pm, subscription_id="sub-po").invoice.invoice
    with db.unit_of_work() as uow:
        d = documents.update_details(
            uow,
            POLICY,
            DetailsUpdate(
                invoice_id="",
                subscription_id="sub-po",
                po_number=" PO-4711 ",
                notes="Attn. accounts payable",
                attachments=[("po-4711.pdf", "application/pdf", b"%PDF-1.4 po")],
                remove_attachment_ids=[],
            ),
        )
    assert d.invoice is None and d.po_number == "PO-4711" and len(d.attachments) == 1

    renewal = order(
        db,
        gateway,
        pm,
        subscription_id="sub-po",
        kind=InvoiceKind.RENEWAL,
        quantity=3,
        amount="420.00",
        description="AutoCAD LT renewal, 3 seats",
    ).invoice
    assert renewal.invoice.po_number == "PO-4711" and renewal.invoice.notes == "Attn. accounts payable"
    assert [a.filename for a in renewal.attachments] == ["po-4711.pdf"]
    with db.reading() as uow:
        assert uow.pending_details.get("sub-po") is None
        doc = documents.invoice_document(uow, renewal.invoice.invoice_id, POLICY)
    assert doc.total == Decimal("1575.00") and doc.po_number == "PO-4711"
    assert doc.payment_method_label == "visa card ending 4242"

    with db.unit_of_work() as uow, pytest.raises(RuleViolation) as e:
        documents.update_details(uow, POLICY, DetailsUpdate(first.invoice_id, "", "PO-2", None, [], []))
    assert e.value.reason == "INVOICE_NOT_OPEN"
    big = [("x.pdf", "application/pdf", b"x" * (5 * 1024 * 1024 + 1))]
    with db.unit_of_work() as uow, pytest.raises(InvalidInput) as e:
        documents.update_details(uow, POLICY, DetailsUpdate("", "sub-po", None, None, big, []))
    assert e.value.reason == "ATTACHMENT_TOO_LARGE"


def test_an_unpaid_invoice_is_overdue_at_local_midnight_of_its_due_date(db, gateway):
    profile(db)
    inv = order(
        db, gateway, method(db, gateway, kind=MethodType.INVOICE), quote=True, time_zone="Europe/Oslo"
    )
    assert inv.invoice.invoice.due_date == date(2024, 7, 10)
    assert sweep.sweep(db, gateway, POLICY, datetime(2024, 7, 9, 21, 59, tzinfo=UTC)).overdue == 0
    assert sweep.sweep(db, gateway, POLICY, datetime(2024, 7, 9, 22, 0, tzinfo=UTC)).overdue == 1
    assert sweep.sweep(db, gateway, POLICY, datetime(2024, 7, 20, tzinfo=UTC)).overdue == 0
    got = invoices.get_invoice(db, inv.invoice.invoice.invoice_id).invoice
    assert got.overdue_time == datetime(2024, 7, 9, 22, 0, tzinfo=UTC)
    assert db.events[-1] == "billing.invoice_overdue"
    db.clock.set(datetime(2024, 7, 11, tzinfo=UTC))
    balance, _ = credits.get_balance(db, "acct-1", "")
    assert balance.overdue_amount == inv.invoice.invoice.total
