"""Credit notes and account credit through the real service, on SQLite and PostgreSQL (rules §5)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import grpc
import pytest

from services.billing.app import create
from services.billing.domain.gateway import SandboxGateway
from shared.money import to_proto
from tenure.billing.v1 import billing_pb2 as pb
from tests.service.billing.helpers import Billing, dec, reason


class CrashOnceGateway(SandboxGateway):
    """The sandbox, but the first charge of a marked amount dies after the credit was applied (a crash
    between the steps of issuing an invoice)."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_amounts: set[Decimal] = set()
        self.charged: list[tuple[Decimal, str]] = []
        self._lock = threading.Lock()

    def charge(self, token, amount, currency, *, idempotency_key):
        with self._lock:
            if amount in self.crash_amounts:
                self.crash_amounts.discard(amount)
                raise RuntimeError("the process died here")
            self.charged.append((amount, idempotency_key))
        return super().charge(token, amount, currency, idempotency_key=idempotency_key)


@pytest.fixture
def billing(start_service):
    gateway = CrashOnceGateway()
    b = Billing(
        start_service("billing", create=lambda s, c: create(s, c, gateway=gateway), sweep_interval_seconds=0)
    )
    b.gateway = gateway
    yield b
    b.channel.close()


def nok(amount: str):
    return to_proto(Decimal(amount), "NOK")


def credit(billing, invoice_id, amount=None, settlement=0, request_id=None):
    req = pb.IssueCreditNoteRequest(
        request_id=request_id or uuid.uuid4().hex,
        invoice_id=invoice_id,
        reason="goodwill",
        settlement=settlement,
    )
    if amount is not None:
        req.amount.CopyFrom(nok(amount))
    return billing.IssueCreditNote(req).credit_note


def invoice(billing, invoice_id):
    return billing.GetInvoice(pb.GetInvoiceRequest(invoice_id=invoice_id)).invoice


def balance(billing, account="acct-1"):
    return billing.GetBalance(pb.GetBalanceRequest(account_id=account, currency_code="NOK")).balance


def test_a_credited_open_invoice_owes_less(billing):
    billing.profile()
    inv = billing.create_invoice(
        billing.invoice_method(), amount="400.00", currency="NOK", quote=True
    ).invoice
    assert inv.status == pb.INVOICE_STATUS_OPEN and dec(inv.amount_due) == Decimal("500.00")

    cn = credit(billing, inv.invoice_id, "125.00")
    assert cn.settlement == pb.CREDIT_NOTE_SETTLEMENT_AMOUNT_DUE and not cn.refund_id
    assert dec(cn.amount_due_reduced) == Decimal("125.00") and dec(cn.refunded_amount) == 0
    assert dec(cn.creditable_before) == Decimal("500.00") and dec(cn.invoice_amount_due_after) == Decimal(
        "375.00"
    )
    got = invoice(billing, inv.invoice_id)
    assert got.status == pb.INVOICE_STATUS_OPEN
    assert [dec(got.amount_due), dec(got.amount_credited), dec(got.amount_due_credited)] == [
        Decimal("375.00"),
        Decimal("125.00"),
        Decimal("125.00"),
    ]
    for amount in (None, "375.01"):  # no amount: nothing was paid; more than is owed
        with pytest.raises(grpc.RpcError) as e:
            credit(billing, inv.invoice_id, amount)
        assert reason(e.value) == "ERROR_REASON_CREDIT_EXCEEDS_PAID"
    with pytest.raises(grpc.RpcError) as e:  # an open invoice's credit is not refunded
        credit(billing, inv.invoice_id, "10.00", pb.CREDIT_NOTE_SETTLEMENT_REFUND)
    assert reason(e.value) == "ERROR_REASON_CREDIT_EXCEEDS_PAID"
    assert dec(invoice(billing, inv.invoice_id).amount_due) == Decimal("375.00")  # refused: unchanged
    b = balance(billing)
    assert dec(b.open_amount) == Decimal("375.00") and dec(b.due_credited_amount) == Decimal("125.00")

    rest = credit(billing, inv.invoice_id, "375.00")
    assert dec(rest.invoice_amount_due_after) == 0
    got = invoice(billing, inv.invoice_id)
    assert got.status == pb.INVOICE_STATUS_PAID and dec(got.amount_due) == 0 and dec(got.amount_paid) == 0
    assert "billing.invoice_paid" in billing.events()
    b = balance(billing)
    assert (dec(b.open_amount), dec(b.credited_amount), dec(b.cash_balance), b.open_invoices) == (
        0,
        Decimal("500.00"),
        0,
        0,
    )
    assert billing.gateway.charged == []


def test_account_credit_is_applied_to_the_next_renewal_once(billing):
    billing.profile()
    pm = billing.card()
    first = billing.create_invoice(pm, amount="1000.00", currency="NOK", subscription_id="sub-r").invoice
    assert first.status == pb.INVOICE_STATUS_PAID and dec(first.total) == Decimal("1250.00")
    kept = credit(billing, first.invoice_id, "250.00", pb.CREDIT_NOTE_SETTLEMENT_CASH_BALANCE)
    assert kept.settlement == pb.CREDIT_NOTE_SETTLEMENT_CASH_BALANCE and not kept.refund_id
    assert dec(kept.account_credit_amount) == Decimal("250.00")
    assert dec(balance(billing).cash_balance) == Decimal("250.00")

    # the process dies after the credit was applied and before the card was charged: nothing is kept
    billing.gateway.crash_amounts.add(Decimal("750.00"))
    with pytest.raises(grpc.RpcError):
        billing.create_invoice(
            pm,
            amount="800.00",
            currency="NOK",
            kind=pb.INVOICE_KIND_RENEWAL,
            subscription_id="sub-r",
            request_id="r-1",
        )
    assert dec(balance(billing).cash_balance) == Decimal("250.00")
    renewal = billing.create_invoice(
        pm,
        amount="800.00",
        currency="NOK",
        kind=pb.INVOICE_KIND_RENEWAL,
        subscription_id="sub-r",
        request_id="r-1",
    )
    inv = renewal.invoice
    assert inv.status == pb.INVOICE_STATUS_PAID and dec(inv.total) == Decimal("1000.00")
    assert (dec(inv.credit_applied), dec(inv.amount_paid), dec(renewal.payment.amount)) == (
        Decimal("250.00"),
        Decimal("750.00"),
        Decimal("750.00"),
    )
    (line,) = inv.credit_applications
    assert line.credit_note_number == kept.credit_note_number and line.applied
    assert line.description == f"Credit applied from credit note {kept.credit_note_number}"
    assert (dec(line.amount), dec(line.balance_before), dec(line.balance_after)) == (
        Decimal("250.00"),
        Decimal("250.00"),
        0,
    )
    assert [a for a, _ in billing.gateway.charged] == [Decimal("1250.00"), Decimal("750.00")]

    # the same request again: the same invoice, the credit applied once, no second charge
    again = billing.create_invoice(
        pm,
        amount="800.00",
        currency="NOK",
        kind=pb.INVOICE_KIND_RENEWAL,
        subscription_id="sub-r",
        request_id="r-1",
    )
    assert again.invoice.invoice_id == inv.invoice_id and len(again.invoice.credit_applications) == 1
    b = balance(billing)
    assert (dec(b.cash_balance), dec(b.credit_applied_amount), dec(b.account_credit_amount)) == (
        0,
        Decimal("250.00"),
        Decimal("250.00"),
    )
    assert dec(b.invoiced_amount) == dec(b.paid_amount) + dec(b.credit_applied_amount) + dec(
        b.due_credited_amount
    )
    assert len(billing.gateway.charged) == 2


def test_two_invoices_at_once_never_use_the_same_credit(billing):
    billing.profile()
    pm = billing.card()
    first = billing.create_invoice(pm, amount="200.00", currency="NOK").invoice
    credit(billing, first.invoice_id, None, pb.CREDIT_NOTE_SETTLEMENT_CASH_BALANCE)  # 250.00 kept

    def order(n):
        return billing.create_invoice(pm, amount="160.00", currency="NOK", request_id=f"par-{n}").invoice

    with ThreadPoolExecutor(4) as pool:
        issued = list(pool.map(order, range(4)))  # 200.00 each
    assert sum(dec(i.credit_applied) for i in issued) == Decimal("250.00")
    assert sorted(dec(i.credit_applied) for i in issued) == [0, 0, Decimal("50.00"), Decimal("200.00")]
    assert dec(balance(billing).cash_balance) == 0
