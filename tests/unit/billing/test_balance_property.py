"""GetBalance adds up to the cent with the lists of invoices, credit notes and payments, whatever an
account did (a property test over orders, credit notes, payments and voids in two currencies)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.billing.domain.access import Caller
from services.billing.domain.commands import CreateInvoice, ProfileInput
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
from services.billing.handlers import accounts, credits, invoices, payments
from services.billing.handlers.common import Policy
from shared.errors import InvalidInput, RuleViolation
from tests.unit.billing.fakes import CountingGateway, FakeDatabase

ACCOUNT = "acct-p"
OPS = Caller(actor="ops")
ZERO = Decimal(0)

orders = st.tuples(
    st.just("order"),
    st.sampled_from(["NOK", "USD"]),
    st.integers(min_value=1, max_value=300_000),  # net amount in cents
    st.sampled_from(["card", "declined", "invoice"]),
    st.sampled_from([InvoiceKind.NEW, InvoiceKind.RENEWAL, InvoiceKind.ADD_SEATS]),
)
credit_notes = st.tuples(
    st.just("credit"),
    st.integers(min_value=0, max_value=50),  # which invoice
    st.one_of(st.none(), st.integers(min_value=1, max_value=110)),  # percent of the total, None: all
    st.sampled_from([None, None, Settlement.CASH_BALANCE, Settlement.CASH_BALANCE, Settlement.REFUND]),
)
pays = st.tuples(st.just("pay"), st.integers(min_value=0, max_value=50))
voids = st.tuples(st.just("void"), st.integers(min_value=0, max_value=50))


def _setup(db: FakeDatabase, gateway: CountingGateway) -> dict[str, str]:
    with db.unit_of_work() as uow:
        accounts.upsert_profile(
            uow,
            ProfileInput(
                account_id=ACCOUNT, buyer_email="buyer@acct-p.example", name="P AS", address=Address("NO")
            ),
            OPS,
        )
    methods = {}
    for name, kind, number in [
        ("card", MethodType.CARD, "4242424242424242"),
        ("declined", MethodType.CARD, "4000000000000002"),
        ("invoice", MethodType.INVOICE, ""),
    ]:
        with db.unit_of_work() as uow:
            methods[name] = accounts.add_payment_method(
                uow, gateway, ACCOUNT, kind, number, "", OPS
            ).payment_method_id
    return methods


def _run(db, gateway, methods, op, n: int, ids: list[str]) -> None:
    with db.unit_of_work() as uow:
        if op[0] == "order":
            _, currency, cents, method, kind = op
            invoices.create_invoice(
                uow,
                gateway,
                Policy(),
                CreateInvoice(
                    request_id=f"o-{n}",
                    account_id=ACCOUNT,
                    subscription_id=f"sub-{n % 3}",
                    order_number=f"O-{n}",
                    kind=kind,
                    currency=currency,
                    lines=[LineInput("AutoCAD LT", 1, Decimal(cents) / 100)],
                    payment_method_id=methods[method],
                    channel=Channel.PARTNER_QUOTE,
                    quote=True,
                ),
            )
            return
        if not ids:
            return
        invoice_id = ids[op[1] % len(ids)]
        if op[0] == "credit":
            percent, settlement = op[2], op[3]
            row = uow.invoices.get(invoice_id)
            cents = max(int(row.total * percent), 1) if percent is not None else 0
            amount = AmountInput(row.currency, cents // 100, (cents % 100) * 10_000_000) if cents else None
            credits.issue_credit_note(uow, gateway, f"cn-{n}", invoice_id, amount, "", settlement)
        elif op[0] == "pay":
            payments.pay_invoice(uow, gateway, f"pay-{n}", invoice_id, methods["card"])
        else:
            invoices.void_invoice(uow, invoice_id)


def _figures(db) -> list:
    return credits.get_balance(db, ACCOUNT, "NOK")[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(orders, orders, orders, credit_notes, credit_notes, pays, voids), min_size=6, max_size=30
    )
)
def test_the_balance_adds_up_with_the_lists_of_invoices_credit_notes_and_payments(ops):
    db, gateway = FakeDatabase(), CountingGateway()
    methods = _setup(db, gateway)
    ids: list[str] = []
    for n, op in enumerate(ops):
        before = _figures(db)
        try:
            _run(db, gateway, methods, op, n, ids)
        except (RuleViolation, InvalidInput):
            assert _figures(db) == before  # refused: nothing changed
        ids = sorted(db.store.invoices)

    everything = invoices.list_invoices(db, ACCOUNT, None, "", 500, "").invoices
    notes = credits.list_credit_notes(db, ACCOUNT, 500, "").credit_notes
    assert len(everything) == len(db.store.invoices) and len(notes) == len(db.store.credit_notes)
    _, per_currency = credits.get_balance(db, ACCOUNT, "")
    for b in per_currency:
        cur = b.currency
        mine = [v for v in everything if v.invoice.currency == cur]
        issued = [v.invoice for v in mine if v.invoice.status != InvoiceStatus.VOID.value]
        open_ = [i for i in issued if i.status == InvoiceStatus.OPEN.value]
        paid_payments = [p for v in mine for p in v.payments if p.status == PaymentStatus.SUCCEEDED.value]
        applied = [
            -e.amount
            for v in mine
            for e in v.credit
            if e.kind == "applied"
            and not any(r.kind == "released" and r.credit_note_id == e.credit_note_id for r in v.credit)
        ]
        cur_notes = [cn for cn in notes if cn.currency == cur]
        ledger = [e.amount for e in db.store.credit_entries if e.currency == cur]

        assert b.invoiced_amount == sum((i.total for i in issued), ZERO)
        assert (
            b.paid_amount
            == sum((p.amount for p in paid_payments), ZERO)
            == sum((v.invoice.amount_paid for v in mine), ZERO)
        )
        assert b.credit_applied_amount == sum(applied, ZERO) == sum((i.credit_applied for i in issued), ZERO)
        assert b.open_amount == sum(
            (i.total - i.amount_paid - i.credit_applied - i.amount_due_credited for i in open_), ZERO
        )
        assert b.open_invoices == len(open_)
        assert b.credited_amount == sum((cn.amount for cn in cur_notes), ZERO)
        assert b.refunded_amount == sum((cn.refunded_amount for cn in cur_notes), ZERO)
        assert b.due_credited_amount == sum((cn.amount_due_reduced for cn in cur_notes), ZERO)
        assert b.account_credit_amount == sum((cn.account_credit_amount for cn in cur_notes), ZERO)
        # the identities the balance documents
        assert (
            b.invoiced_amount
            == b.paid_amount + b.credit_applied_amount + b.due_credited_amount + b.open_amount
        )
        assert b.credited_amount == b.due_credited_amount + b.refunded_amount + b.account_credit_amount
        assert b.cash_balance == b.account_credit_amount - b.credit_applied_amount == sum(ledger, ZERO)
        assert b.cash_balance >= 0 and b.open_amount >= 0
        for i in issued:  # each invoice adds up: nothing owed below zero, nothing settled twice
            due = i.total - i.amount_paid - i.credit_applied - i.amount_due_credited
            assert due >= 0 and (due == 0) == (i.status == InvoiceStatus.PAID.value)
        for cn in cur_notes:
            assert cn.amount == cn.amount_due_reduced + cn.refunded_amount + cn.account_credit_amount > 0
    refunds = sum((amount for _, amount in gateway.refunds), ZERO)
    assert refunds == sum((b.refunded_amount for b in per_currency), ZERO)
