"""Previews against the real billing service (tax, installments) on both backends: a quote is what the order
placed right after it charges, and a term change's quote and the account's upcoming payments are what the
automatic renewal then charges (rules §3, §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import person

from .conftest import OPERATOR, day, money, rid

OCT = datetime(2024, 10, 1, 8, 0, tzinfo=UTC)  # 10:00 in Oslo, after installments began (2024-09-16)


def _invoice(stack, invoice_id: str) -> billing_pb2.Invoice:
    return stack.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=invoice_id)).invoice


def _lines(msgs) -> list[tuple]:
    return [(ln.description, ln.quantity, money(ln.unit_price), money(ln.amount)) for ln in msgs]


def test_each_quote_is_what_the_order_after_it_charges(stack):
    stack.clock.set(OCT)
    order = stack.order(term=common_pb2.TERM_THREE_YEAR, seats=2)
    q = stack.sub.QuoteOrder(pb.QuoteOrderRequest(create=order))
    # 2 x 1310.00 = 2620.00, billed 873.34 now and 873.33 on each of the next two anniversaries
    assert money(q.subtotal) == Decimal("2620.00")
    assert [(p.sequence, money(p.subtotal)) for p in q.installments] == [
        (1, Decimal("873.34")),
        (2, Decimal("873.33")),
        (3, Decimal("873.33")),
    ]
    assert [p.due_date for p in q.installments] == [day(2024, 10, 1), day(2025, 10, 1), day(2026, 10, 1)]
    r = stack.sub.CreateSubscription(order)
    inv = _invoice(stack, r.invoice_id)
    assert money(r.total) == money(inv.total) == money(q.due_now) == money(q.installments[0].total)
    assert money(inv.tax) == money(q.installments[0].tax) and money(inv.tax) > 0
    held = stack.billing.ListInstallments(
        billing_pb2.ListInstallmentsRequest(subscription_id=r.subscription.subscription_id)
    ).installments
    assert [(i.sequence, i.due_date, money(i.amount)) for i in held] == [
        (p.sequence, p.due_date, money(p.subtotal)) for p in q.installments
    ]

    sid = r.subscription.subscription_id
    stack.clock.set(datetime(2025, 2, 14, 9, 0, tzinfo=UTC))
    q = stack.sub.QuoteOrder(pb.QuoteOrderRequest(add_seats=pb.AddSeatsRequest(subscription_id=sid, seats=3)))
    added = stack.sub.AddSeats(pb.AddSeatsRequest(request_id=rid(), subscription_id=sid, seats=3))
    assert _lines(q.lines) == _lines(added.lines)
    assert (
        money(q.total)
        == money(q.due_now)
        == money(added.total)
        == money(_invoice(stack, added.invoice_id).total)
    )
    assert not q.installments  # added seats are paid at once


def test_a_term_changes_quote_and_the_upcoming_payments_are_what_the_renewal_charges(stack):
    stack.clock.set(OCT)
    r = stack.buy(seats=2)
    sid = r.subscription.subscription_id
    change = pb.ChangeTermRequest(subscription_id=sid, term=common_pb2.TERM_THREE_YEAR, request_id=rid())
    q = stack.sub.QuoteOrder(pb.QuoteOrderRequest(change_term=change))
    # 2 renewal seats x 1179.00 = 2358.00 in three installments of 786.00, from the renewal date
    assert (money(q.subtotal), q.due_date, list(q.applied_changes)) == (
        Decimal("2358.00"),
        day(2025, 10, 1),
        ["term"],
    )
    assert [money(p.subtotal) for p in q.installments] == [Decimal("786.00")] * 3
    stack.sub.ChangeTerm(change)

    upcoming = stack.sub.ListUpcomingPayments(
        pb.ListUpcomingPaymentsRequest(account_id="acct-1", horizon_days=1098)
    )
    assert [
        (p.kind, p.due_date, p.seats, money(p.unit_price), money(p.subtotal), money(p.tax), money(p.total))
        for p in upcoming.payments
    ] == [
        (
            pb.UPCOMING_PAYMENT_KIND_RENEWAL,
            i.due_date,
            2,
            Decimal("1179.00"),
            money(i.subtotal),
            money(i.tax),
            money(i.total),
        )
        for i in q.installments
    ]
    assert all(p.term == common_pb2.TERM_THREE_YEAR and p.installment_count == 3 for p in upcoming.payments)
    paged = stack.sub.ListUpcomingPayments(
        pb.ListUpcomingPaymentsRequest(account_id="acct-1", horizon_days=1098, page_size=2)
    )
    assert len(paged.payments) == 2 and paged.next_page_token

    stack.clock.set(datetime(2025, 9, 30, 22, 0, tzinfo=UTC))  # 2025-10-01 00:00 in Oslo
    stack.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    renewed = stack.sub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid)).subscription
    assert renewed.term == common_pb2.TERM_THREE_YEAR and renewed.current_period_start_date == day(
        2025, 10, 1
    )
    invoices = stack.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(account_id="acct-1", subscription_id=sid)
    ).invoices
    renewal = next(
        i for i in invoices if i.issue_time.ToDatetime(tzinfo=UTC) >= datetime(2025, 9, 30, tzinfo=UTC)
    )
    assert money(renewal.total) == money(q.due_now) == money(upcoming.payments[0].total)
    assert money(renewal.tax) == money(q.installments[0].tax)
    held = stack.billing.ListInstallments(
        billing_pb2.ListInstallmentsRequest(subscription_id=sid)
    ).installments
    assert [(i.due_date, money(i.amount)) for i in held if i.order_number == renewal.order_number] == [
        (p.due_date, money(p.subtotal)) for p in q.installments
    ]


def test_a_reinstatement_is_quoted_as_the_renewal_that_reinstates(stack):
    r = stack.buy(auto_renew=False)
    sid = r.subscription.subscription_id
    stack.clock.set(datetime(2025, 6, 12, 9, 0, tzinfo=UTC))  # the term ended on 2025-06-10
    stack.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    on = pb.SetAutoRenewRequest(request_id=rid(), subscription_id=sid, auto_renew=True)
    q = stack.sub.QuoteOrder(pb.QuoteOrderRequest(reinstate=on))
    assert [(ln.period_start_date, money(ln.unit_price)) for ln in q.lines] == [
        (day(2025, 6, 10), Decimal("420.00"))
    ]
    done = stack.sub.SetAutoRenew(on)
    assert done.subscription.stage == common_pb2.STAGE_ACTIVE
    inv = stack.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(account_id="acct-1", subscription_id=sid)
    )
    assert money(inv.invoices[0].total) == money(q.total) == money(q.due_now)


def test_upcoming_payments_are_hidden_from_strangers_and_refuse_a_bad_horizon(stack):
    stack.buy()
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.ListUpcomingPayments(
            pb.ListUpcomingPaymentsRequest(account_id="acct-1"), metadata=person("stranger@example.no")
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.ListUpcomingPayments(pb.ListUpcomingPaymentsRequest(account_id="acct-1", horizon_days=-1))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
