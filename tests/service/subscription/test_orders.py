"""The subscription service over gRPC, beside the real billing service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from tenure.common.v1 import common_pb2
from tenure.subscription.v1 import subscription_pb2 as pb

from .conftest import day, error_info, money, rid


def test_oslo_annual_purchase_and_three_seats_added_on_1_december(stack):
    created = stack.buy(seats=2, start_date=day(2024, 6, 10))
    s = created.subscription
    assert created.order_number.startswith("ORD-") and created.invoice_id
    assert (s.renewal_date.year, s.renewal_date.month, s.renewal_date.day) == (2025, 6, 10)
    assert (s.expiry_date.year, s.expiry_date.month, s.expiry_date.day) == (2025, 6, 9)
    assert s.renewal_time.ToDatetime(tzinfo=UTC) == datetime(2025, 6, 9, 22, 0, tzinfo=UTC)
    assert money(s.unit_price) == Decimal("470.00")
    stack.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    added = stack.sub.AddSeats(
        pb.AddSeatsRequest(request_id=rid(), subscription_id=s.subscription_id, seats=3)
    )
    assert money(added.prorated_amount) == Decimal("737.84")
    assert added.subscription.seats == 5 and added.subscription.renewal_seats == 5
    assert added.invoice_id and added.invoice_id != created.invoice_id
    assert money(added.total) >= Decimal("737.84")


def _reason(err) -> str:
    info = error_info(err)
    assert info.domain == "subscription.tenure"
    return info.reason


def test_renewal_prices_list_vs_renewal_and_term_change(stack):
    new3 = stack.buy(term=common_pb2.TERM_THREE_YEAR, start_date=day(2024, 6, 10))
    assert money(new3.subscription.unit_price) == Decimal("1310.00")
    annual = stack.buy(start_date=day(2024, 6, 10)).subscription
    monthly = stack.buy(term=common_pb2.TERM_MONTHLY, start_date=day(2024, 6, 10)).subscription
    changed = stack.sub.ChangeTerm(
        pb.ChangeTermRequest(
            subscription_id=annual.subscription_id, term=common_pb2.TERM_THREE_YEAR, request_id=rid()
        )
    ).subscription
    assert changed.term == common_pb2.TERM_ANNUAL and changed.pending_term == common_pb2.TERM_THREE_YEAR
    # Too early: the window opens 90 days before 2025-06-10.
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.RenewSubscription(
            pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=annual.subscription_id)
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(e.value) == "ERROR_REASON_RENEWAL_WINDOW_NOT_OPEN"
    # A monthly renewal pays the list price.
    m = stack.sub.RenewSubscription(
        pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=monthly.subscription_id)
    )
    assert money(m.subscription.unit_price) == Decimal("60.00")
    assert (m.subscription.renewal_date.month, m.subscription.renewal_date.day) == (8, 10)
    stack.clock.set(datetime(2025, 5, 1, 9, 0, tzinfo=UTC))
    quote = stack.sub.QuoteOrder(
        pb.QuoteOrderRequest(renew=pb.RenewSubscriptionRequest(subscription_id=annual.subscription_id))
    )
    assert money(quote.subtotal) == Decimal("1179.00")
    r = stack.sub.RenewSubscription(
        pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=annual.subscription_id)
    )
    assert money(r.subscription.unit_price) == Decimal("1179.00")
    assert r.subscription.term == common_pb2.TERM_THREE_YEAR and r.subscription.installments == 3
    assert (r.subscription.renewal_date.year, r.subscription.renewal_date.month) == (2028, 6)
    assert r.invoice_id and r.order_number


def test_refund_windows_and_access_ends(stack):
    # The test clock starts 2024-06-10 10:00 in Oslo: day 1 of both purchases.
    monthly = stack.buy(term=common_pb2.TERM_MONTHLY).subscription
    annual = stack.buy().subscription
    annual_30 = stack.buy().subscription
    m_late = stack.buy(term=common_pb2.TERM_MONTHLY).subscription
    stack.clock.set(datetime(2024, 6, 24, 20, 0, tzinfo=UTC))  # day 15 in Oslo (22:00)
    r = stack.sub.RequestRefund(
        pb.RequestRefundRequest(request_id=rid(), subscription_id=monthly.subscription_id)
    )
    assert r.subscription.stage == common_pb2.STAGE_CANCELLED and r.credit_note_id
    assert money(r.refunded_amount) > Decimal("60.00")  # the full charge, tax included
    assert r.subscription.access_until_time.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 24, 20, 0, tzinfo=UTC)
    stack.clock.set(datetime(2024, 6, 24, 22, 0, tzinfo=UTC))  # day 16 in Oslo (00:00)
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.RequestRefund(
            pb.RequestRefundRequest(request_id=rid(), subscription_id=m_late.subscription_id)
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(e.value) == "ERROR_REASON_REFUND_WINDOW_CLOSED"
    assert (
        stack.sub.GetSubscription(
            pb.GetSubscriptionRequest(subscription_id=m_late.subscription_id)
        ).subscription.stage
        == common_pb2.STAGE_ACTIVE
    )
    stack.clock.set(datetime(2024, 7, 9, 12, 0, tzinfo=UTC))  # day 30: the annual one is still refundable
    opts = stack.sub.GetSelfServiceOptions(
        pb.GetSelfServiceOptionsRequest(subscription_id=annual.subscription_id)
    )
    refund_opt = next(o for o in opts.options if o.action == pb.SELF_SERVICE_ACTION_REQUEST_REFUND)
    assert refund_opt.available
    r30 = stack.sub.RequestRefund(
        pb.RequestRefundRequest(request_id=rid(), subscription_id=annual_30.subscription_id)
    )
    assert r30.subscription.stage == common_pb2.STAGE_CANCELLED and money(r30.refunded_amount) > Decimal(
        "470.00"
    )
    stack.clock.set(datetime(2024, 7, 10, 12, 0, tzinfo=UTC))  # day 31
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.RequestRefund(
            pb.RequestRefundRequest(request_id=rid(), subscription_id=annual.subscription_id)
        )
    assert _reason(e.value) == "ERROR_REASON_REFUND_WINDOW_CLOSED"
    history = stack.sub.GetLifecycleHistory(
        pb.GetLifecycleHistoryRequest(subscription_id=monthly.subscription_id)
    )
    assert [(t.from_stage, t.to_stage, t.reason) for t in history.transitions] == [
        (common_pb2.STAGE_UNSPECIFIED, common_pb2.STAGE_ACTIVE, "created"),
        (common_pb2.STAGE_ACTIVE, common_pb2.STAGE_CANCELLED, "refunded"),
    ]


def test_reseller_subscription_add_seats_names_the_partner(stack):
    s = stack.buy(channel=common_pb2.CHANNEL_RESELLER, partner_name="Acme CAD AS").subscription
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.AddSeats(pb.AddSeatsRequest(request_id=rid(), subscription_id=s.subscription_id, seats=1))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(e.value) == "ERROR_REASON_SELF_SERVICE_PARTNER"
    assert "Acme CAD AS" in e.value.details()
    after = stack.sub.GetSubscription(
        pb.GetSubscriptionRequest(subscription_id=s.subscription_id)
    ).subscription
    assert after.seats == 1 and after.etag == s.etag


def test_request_id_repeats_return_the_first_order_and_bad_input_changes_nothing(stack):
    req = stack.order(seats=2)
    first = stack.sub.CreateSubscription(req)
    again = stack.sub.CreateSubscription(req)
    assert again == first
    listed = stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(account_id="acct-1"))
    assert [s.subscription_id for s in listed.subscriptions] == [first.subscription.subscription_id]
    with pytest.raises(grpc.RpcError) as e:
        stack.buy(seats=0)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.GetSubscription(pb.GetSubscriptionRequest(subscription_id="sub_nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert _reason(e.value) == "ERROR_REASON_SUBSCRIPTION_NOT_FOUND"
    assert (
        len(stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(account_id="acct-1")).subscriptions) == 1
    )


def test_declined_card_orders_nothing(stack):
    from .conftest import DECLINED_CARD

    pm = stack.card("acct-9", DECLINED_CARD)
    with pytest.raises(grpc.RpcError) as e:
        stack.buy("acct-9", pm=pm)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(e.value) == "ERROR_REASON_PAYMENT_DECLINED"
    # the order's account was not opened either (its team is written in the order's transaction)
    assert not stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest()).subscriptions
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(account_id="acct-9"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
