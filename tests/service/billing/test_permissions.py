"""Who may do what on billing, with real tokens (SQLite and PostgreSQL).

Account A: Kari is its buyer (her first billing profile opened it), Pia a payer she named, Pam its
primary admin (entitlement's role event). Account B: Bo is its buyer, and a stranger to A.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import func, select

from services.billing.adapters.tables import PaymentMethodRow
from shared.outbox import OUTBOX_COLUMNS, events_of
from tenure.billing.v1 import billing_pb2 as pb
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests.auth import operator, person, service
from tests.service.billing.helpers import dec, reason

A, B = "acct-a", "acct-b"
KARI, PIA, PAM, BO, OLA = "kari@a.example", "pia@a.example", "pam@a.example", "bo@b.example", "ola@a.example"


def rid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def world(billing):
    billing.profile(A, email=KARI)
    billing.profile(B, email=BO)
    billing.AddPayer(pb.AddPayerRequest(request_id=rid(), account_id=A, email=PIA, name="Pia"))
    billing.card(B)
    billing.invoice_pm = billing.invoice_method(A)
    billing.inv = billing.create_invoice(
        billing.card(A), account=A, quantity=2, subscription_id="sub-a"
    ).invoice
    return billing


def deliver_role(billing, account: str, email: str, role: int, granted: bool = True) -> None:
    """Entitlement's `entitlement.role_changed` event, as its relay delivers it."""
    sink = events_pb2_grpc.EventSinkServiceStub(billing.channel)
    ev = events_pb2.Event(
        event_id=str(uuid.uuid4()),
        event_type="entitlement.role_changed",
        source="entitlement",
        account_id=account,
        role_changed=events_pb2.RoleChanged(account_id=account, email=email, role=role, granted=granted),
    )
    sink.Deliver(events_pb2.DeliverRequest(event=ev), metadata=service("entitlement"), timeout=10)


def outbox(billing) -> list:
    t = billing.app.db.tables["outbox"]
    with billing.app.db.read() as s:
        rows = s.execute(select(*(t.c[c] for c in OUTBOX_COLUMNS)).order_by(t.c.seq)).all()
    return [ev for row in rows for ev in events_of(row)]


def row_counts(billing) -> dict[str, int]:
    with billing.app.db.read() as s:
        return {
            t.name: s.execute(select(func.count()).select_from(t)).scalar_one()
            for t in billing.app.db.metadata.sorted_tables
        }


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code()


def test_a_stranger_finds_nothing_and_a_refused_call_changes_nothing(world):
    b, inv = world, world.inv
    before = row_counts(b)
    bo = person(BO)
    pay = pb.PayInvoiceRequest(request_id=rid(), invoice_id=inv.invoice_id, payment_method_id="")
    stranger = {
        "GetInvoice": lambda: b.GetInvoice(pb.GetInvoiceRequest(invoice_id=inv.invoice_id), metadata=bo),
        "ListPaymentMethods": lambda: b.ListPaymentMethods(
            pb.ListPaymentMethodsRequest(account_id=A), metadata=bo
        ),
        "AddPayer": lambda: b.AddPayer(
            pb.AddPayerRequest(request_id=rid(), account_id=A, email="bo@b.example"), metadata=bo
        ),
        "PayInvoice": lambda: b.PayInvoice(pay, metadata=bo),
        "GetInvoicePdf": lambda: b.GetInvoicePdf(
            pb.GetInvoicePdfRequest(invoice_id=inv.invoice_id), metadata=bo
        ),
    }
    assert {name: code_of(call) for name, call in stranger.items()} == dict.fromkeys(
        stranger, grpc.StatusCode.NOT_FOUND
    )
    # No token, or a person's token on an internal RPC (even the buyer's).
    assert code_of(lambda: b.ListPaymentMethods(pb.ListPaymentMethodsRequest(account_id=A), metadata=[])) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert code_of(
        lambda: b.AddPayer(
            pb.AddPayerRequest(request_id=rid(), account_id=A, email="x@a.example"), metadata=[]
        )
    ) == (grpc.StatusCode.UNAUTHENTICATED)
    assert code_of(lambda: b.create_invoice(b.invoice_pm, account=A, quote=True, metadata=person(KARI))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    credit = pb.IssueCreditNoteRequest(request_id=rid(), invoice_id=inv.invoice_id, reason="refund")
    assert (
        code_of(lambda: b.IssueCreditNote(credit, metadata=person(KARI))) == grpc.StatusCode.PERMISSION_DENIED
    )
    assert row_counts(b) == before


def test_one_buyer_a_profile_cannot_change_it_and_it_follows_entitlement(world):
    b = world
    with pytest.raises(grpc.RpcError) as e:
        b.profile(A, email=OLA, metadata=person(KARI))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(e.value) == "ERROR_REASON_BUYER_CHANGE_NOT_ALLOWED" and "ChangeBuyer" in e.value.details()
    assert b.profile(A, email="", name="Fjordbygg Vest AS").buyer_email == KARI  # naming none keeps her
    # A person opens an account only as its buyer; an operator may name anyone.
    with pytest.raises(grpc.RpcError) as e:
        b.profile("acct-c", email=OLA, metadata=person(KARI))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert b.profile("acct-d", email=OLA, metadata=operator()).buyer_email == OLA
    opened = [ev.account_opened for ev in outbox(b) if ev.event_type == "billing.account_opened"]
    assert [(o.account_id, o.buyer_email) for o in opened] == [(A, KARI), (B, BO), ("acct-d", OLA)]
    got = b.GetBillingProfile(pb.GetBillingProfileRequest(account_id="acct-d"), metadata=person(OLA))
    assert got.profile.buyer_email == OLA

    # An operator's ChangeBuyer in entitlement: billing follows the role events.
    deliver_role(b, A, KARI, common_pb2.ROLE_BUYER, granted=False)
    deliver_role(b, A, OLA, common_pb2.ROLE_BUYER)
    got = b.GetBillingProfile(pb.GetBillingProfileRequest(account_id=A), metadata=person(OLA))
    assert got.profile.buyer_email == OLA and got.profile.name == "Fjordbygg Vest AS"
    # Kari is primary admin still, no longer the buyer.
    assert code_of(
        lambda: b.GetBillingProfile(pb.GetBillingProfileRequest(account_id=A), metadata=person(KARI))
    ) == (grpc.StatusCode.PERMISSION_DENIED)


def test_payers_see_and_pay_but_only_the_buyer_names_them(world):
    b, inv = world, world.inv
    named = [ev.payer_changed for ev in outbox(b) if ev.event_type == "billing.payer_changed"]
    assert [(p.account_id, p.email, p.name, p.granted, p.actor_email) for p in named] == [
        (A, PIA, "Pia", True, KARI)
    ]
    with pytest.raises(grpc.RpcError) as e:
        b.AddPayer(
            pb.AddPayerRequest(request_id=rid(), account_id=A, email="x@a.example"), metadata=person(PIA)
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    invoice = b.create_invoice(b.invoice_pm, account=A, quote=True, amount="100.00").invoice
    assert dec(invoice.total) == 125  # 100.00 + 25 % MVA
    paid = b.PayInvoice(
        pb.PayInvoiceRequest(request_id=rid(), invoice_id=invoice.invoice_id), metadata=person(PIA)
    )
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID and dec(paid.payment.amount) == 125
    seen = b.GetInvoice(pb.GetInvoiceRequest(invoice_id=inv.invoice_id), metadata=person(PIA)).invoice
    assert dec(seen.total) == dec(inv.total) == 1175

    b.RemovePayer(pb.RemovePayerRequest(request_id=rid(), account_id=A, email=PIA))
    assert [ev.payer_changed.granted for ev in outbox(b) if ev.event_type == "billing.payer_changed"] == [
        True,
        False,
    ]
    # A removed payer is a stranger at once, whatever entitlement has not echoed yet.
    gone = lambda: b.GetInvoice(pb.GetInvoiceRequest(invoice_id=inv.invoice_id), metadata=person(PIA))  # noqa: E731
    assert code_of(gone) == grpc.StatusCode.NOT_FOUND


def test_an_admin_who_is_not_the_buyer_sees_status_and_dates_only(world, clock):
    b, inv = world, world.inv
    deliver_role(b, A, PAM, common_pb2.ROLE_PRIMARY_ADMIN)
    pam = person(PAM)
    seen = b.GetInvoice(pb.GetInvoiceRequest(invoice_id=inv.invoice_id), metadata=pam).invoice
    assert (seen.invoice_number, seen.status, seen.due_date) == (inv.invoice_number, inv.status, inv.due_date)
    assert seen.HasField("issue_time") and seen.HasField("paid_time")
    assert [(ln.description, ln.quantity) for ln in seen.lines] == [("AutoCAD LT, annual term", 2)]
    for amount in ("subtotal", "tax", "total", "amount_paid", "amount_due"):
        assert not seen.HasField(amount), amount
    assert not seen.lines[0].HasField("unit_price") and not seen.lines[0].HasField("amount")
    assert (seen.payment_method_id, seen.payment_method_type, seen.tax_id, len(seen.payers)) == ("", 0, "", 0)
    listed = b.ListInvoices(pb.ListInvoicesRequest(account_id=A), metadata=pam).invoices
    assert [i.invoice_id for i in listed] == [inv.invoice_id] and not listed[0].HasField("total")
    pdf = lambda: b.GetInvoicePdf(pb.GetInvoicePdfRequest(invoice_id=inv.invoice_id), metadata=pam)  # noqa: E731
    assert code_of(pdf) == grpc.StatusCode.PERMISSION_DENIED
    # The buyer sees the amounts.
    full = b.GetInvoice(pb.GetInvoiceRequest(invoice_id=inv.invoice_id), metadata=person(KARI)).invoice
    assert dec(full.total) == 1175 and full.payment_method_id and [p.email for p in full.payers] == [PIA]

    clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))  # 3-year terms are paid in installments
    b.create_invoice(
        b.card(A), account=A, subscription_id="sub-3y", amount="1310.00", term=common_pb2.TERM_THREE_YEAR
    )
    plan = pb.ListInstallmentsRequest(subscription_id="sub-3y")
    limited = b.ListInstallments(plan, metadata=pam).installments
    assert [(i.sequence, i.status, i.HasField("amount")) for i in limited] == [
        (1, pb.INSTALLMENT_STATUS_PAID, False),
        (2, pb.INSTALLMENT_STATUS_SCHEDULED, False),
        (3, pb.INSTALLMENT_STATUS_SCHEDULED, False),
    ]
    assert [i.due_date for i in limited] == [i.due_date for i in b.ListInstallments(plan).installments]
    assert [dec(i.amount) for i in b.ListInstallments(plan, metadata=person(KARI)).installments] == [
        Decimal("436.68"),
        Decimal("436.66"),
        Decimal("436.66"),
    ]


def test_an_order_on_an_account_billing_knows_no_buyer_of_records_it(billing):
    with billing.app.db.unit_of_work() as uow:  # a stored method from before accounts had teams here
        uow.session.add(
            PaymentMethodRow(
                payment_method_id="pm-old", account_id="acct-old", type="invoice", create_time=uow.now
            )
        )
    pm = pb.PaymentMethod(payment_method_id="pm-old")
    ada = person("ada@old.example")
    assert code_of(
        lambda: billing.ListInvoices(pb.ListInvoicesRequest(account_id="acct-old"), metadata=ada)
    ) == (grpc.StatusCode.NOT_FOUND)
    # Billing holds the account's data, so no newcomer may open it with a card of their own.
    card = pb.AddPaymentMethodRequest(account_id="acct-old", type=common_pb2.PAYMENT_METHOD_TYPE_INVOICE)
    assert code_of(lambda: billing.AddPaymentMethod(card, metadata=person(BO))) == grpc.StatusCode.NOT_FOUND
    inv = billing.create_invoice(
        pm, account="acct-old", quote=True, country_code="SE", buyer_email="Ada@Old.example"
    ).invoice
    listed = billing.ListInvoices(pb.ListInvoicesRequest(account_id="acct-old"), metadata=ada).invoices
    assert [i.invoice_id for i in listed] == [inv.invoice_id] and dec(listed[0].total) == dec(inv.total)
    assert "billing.account_opened" not in billing.events()  # subscription opened it and told entitlement
