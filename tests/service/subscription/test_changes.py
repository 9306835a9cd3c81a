"""Catalog, exchange rates, trials, upgrades, alignment, self-service options and the outbox events."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.subscription.v1 import subscription_pb2 as pb

from .conftest import OPERATOR, day, error_info, money, outbox_events, rid


def _events(stack) -> list[events_pb2.Event]:
    return outbox_events(stack.sub_app.db)


def test_catalog_prices_and_capped_exchange_rates(stack):
    products = {p.product_code: p for p in stack.sub.ListProducts(pb.ListProductsRequest()).products}
    assert {"ACDLT", "ACD", "AEC_COLLECTION", "DOCS"} <= set(products)
    assert list(products["ACDLT"].upgrades_to) == ["ACD"]
    assert products["DOCS"].shutoff_policy == common_pb2.SHUTOFF_POLICY_IMMEDIATE
    prices = stack.sub.ListPrices(pb.ListPricesRequest(product_code="ACDLT", currency_code="USD")).prices
    std = {p.term: p for p in prices if p.plan == common_pb2.PLAN_STANDARD}
    assert (
        money(std[common_pb2.TERM_ANNUAL].list_price),
        money(std[common_pb2.TERM_ANNUAL].renewal_price),
    ) == (
        Decimal("470.00"),
        Decimal("420.00"),
    )
    assert money(std[common_pb2.TERM_THREE_YEAR].renewal_price) == Decimal("1179.00")
    assert money(std[common_pb2.TERM_MONTHLY].renewal_price) == money(std[common_pb2.TERM_MONTHLY].list_price)
    seen, token, pages = [], "", 0
    while True:
        page = stack.sub.ListPrices(pb.ListPricesRequest(product_code="ACDLT", page_size=5, page_token=token))
        seen += [(p.plan, p.term, p.currency_code) for p in page.prices]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 2 * 3 * 4 and pages == 5

    def eur_annual() -> tuple[Decimal, int]:
        r = stack.sub.ListPrices(pb.ListPricesRequest(product_code="ACDLT", currency_code="EUR"))
        p = next(
            p for p in r.prices if p.plan == common_pb2.PLAN_STANDARD and p.term == common_pb2.TERM_ANNUAL
        )
        return money(p.list_price), r.price_book_version

    before, version = eur_annual()  # read (and kept by the service) before the rate changes
    req = pb.SetExchangeRateRequest(
        request_id=rid(), currency_code="EUR", channel=common_pb2.CHANNEL_DIRECT_ONLINE, rate="1.00"
    )
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.SetExchangeRate(req)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    applied = stack.sub.SetExchangeRate(req, metadata=OPERATOR)
    assert (
        applied.capped and Decimal(applied.applied_rate) == Decimal("0.9292") and applied.period == "2024-06"
    )
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.SetExchangeRate(
            pb.SetExchangeRateRequest(request_id=rid(), currency_code="EUR", rate="0.93"), metadata=OPERATOR
        )
    assert error_info(e.value).reason == "ERROR_REASON_EXCHANGE_RATE_ALREADY_ADJUSTED"
    # the new rate is a new price-book version, and the very next read prices with it
    assert eur_annual() == (Decimal("436.72"), version + 1) and before != Decimal("436.72")
    partner = stack.sub.SetExchangeRate(
        pb.SetExchangeRateRequest(
            request_id=rid(), currency_code="NOK", channel=common_pb2.CHANNEL_RESELLER, rate="12"
        ),
        metadata=OPERATOR,
    )
    assert (
        partner.capped and Decimal(partner.applied_rate) == Decimal("11.124") and partner.period == "2024-Q2"
    )


def test_trial_converts_to_a_paid_subscription_without_a_new_id(stack):
    trial = stack.buy(trial=True, pm="", seats=1)
    t = trial.subscription
    assert t.stage == common_pb2.STAGE_TRIAL and not trial.invoice_id and not t.auto_renew
    assert (t.trial_end_date.month, t.trial_end_date.day) == (7, 9)
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.RenewSubscription(
            pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=t.subscription_id)
        )
    assert error_info(e.value).reason == "ERROR_REASON_TRIAL_NOT_RENEWABLE"
    conv = stack.sub.ConvertTrial(
        pb.ConvertTrialRequest(
            request_id=rid(),
            subscription_id=t.subscription_id,
            term=common_pb2.TERM_ANNUAL,
            seats=2,
            payment_method_id=stack.card("acct-1"),
        )
    )
    c = conv.subscription
    assert c.subscription_id == t.subscription_id and c.stage == common_pb2.STAGE_ACTIVE
    assert conv.invoice_id and money(c.unit_price) == Decimal("470.00") and c.seats == 2
    history = stack.sub.GetLifecycleHistory(pb.GetLifecycleHistoryRequest(subscription_id=t.subscription_id))
    assert [x.to_stage for x in history.transitions] == [common_pb2.STAGE_TRIAL, common_pb2.STAGE_ACTIVE]


def test_upgrade_lt_to_full_credits_the_unused_days(stack):
    old = stack.buy(seats=2).subscription
    stack.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    quote = stack.sub.QuoteOrder(
        pb.QuoteOrderRequest(
            upgrade=pb.UpgradeSubscriptionRequest(
                subscription_id=old.subscription_id, target_product_code="ACD"
            )
        )
    )
    assert money(quote.credit) == Decimal("491.89") and money(quote.subtotal) == Decimal("3458.11")
    up = stack.sub.UpgradeSubscription(
        pb.UpgradeSubscriptionRequest(
            request_id=rid(), subscription_id=old.subscription_id, target_product_code="ACD"
        )
    )
    assert money(up.credit) == Decimal("491.89")
    assert up.new_subscription.product_code == "ACD" and up.new_subscription.seats == 2
    assert up.old_subscription.upgraded_to_subscription_id == up.new_subscription.subscription_id
    assert not up.old_subscription.auto_renew
    # 30 days from the order date, at local midnight in Oslo (UTC+1 in winter).
    assert up.old_access_until_time.ToDatetime(tzinfo=UTC) == datetime(2024, 12, 30, 23, 0, tzinfo=UTC)
    assert not up.serial_number_update_required and not up.reinstall_required
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.UpgradeSubscription(
            pb.UpgradeSubscriptionRequest(
                request_id=rid(),
                subscription_id=up.new_subscription.subscription_id,
                target_product_code="DOCS",
            )
        )
    assert error_info(e.value).reason == "ERROR_REASON_UPGRADE_NOT_ALLOWED"


def test_upgrade_to_a_collection_names_its_products_and_the_order_total_in_the_event(stack):
    old = stack.buy(product_code="ACD", seats=1).subscription
    stack.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    up = stack.sub.UpgradeSubscription(
        pb.UpgradeSubscriptionRequest(
            request_id=rid(), subscription_id=old.subscription_id, target_product_code="AEC_COLLECTION"
        )
    )
    ev = [e for e in _events(stack) if e.event_type == "subscription.upgraded"][-1].subscription_upgraded
    assert list(ev.new_subscription.included_product_codes) == ["ACD", "DOCS"]
    assert list(ev.old_subscription.included_product_codes) == []
    assert ev.invoice_id == up.invoice_id
    invoice = stack.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=up.invoice_id)).invoice
    assert money(ev.amount) == money(invoice.total) > 0


def test_align_renewal_dates_and_paypal_refusal(stack):
    stack.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    pm = stack.card("acct-1")
    a = stack.buy(pm=pm, seats=2, start_date=day(2024, 6, 10)).subscription
    b = stack.buy(pm=pm, start_date=day(2024, 9, 1)).subscription
    quote = stack.sub.QuoteOrder(
        pb.QuoteOrderRequest(
            align=pb.AlignRenewalDatesRequest(
                account_id="acct-1", subscription_ids=[a.subscription_id, b.subscription_id]
            )
        )
    )
    assert money(quote.subtotal) == Decimal("213.75")
    r = stack.sub.AlignRenewalDates(
        pb.AlignRenewalDatesRequest(
            request_id=rid(), account_id="acct-1", subscription_ids=[a.subscription_id, b.subscription_id]
        )
    )
    assert {(s.renewal_date.year, s.renewal_date.month, s.renewal_date.day) for s in r.subscriptions} == {
        (2025, 9, 1)
    }
    assert len(r.invoice_ids) == 1 and money(r.total) >= Decimal("213.75")
    pp = stack.paypal("acct-1")
    c = stack.buy(pm=pp, start_date=day(2024, 7, 1)).subscription
    d = stack.buy(pm=pp, start_date=day(2024, 8, 1)).subscription
    assert c.payment_method_type == common_pb2.PAYMENT_METHOD_TYPE_PAYPAL
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.AlignRenewalDates(
            pb.AlignRenewalDatesRequest(
                request_id=rid(), account_id="acct-1", subscription_ids=[c.subscription_id, d.subscription_id]
            )
        )
    assert error_info(e.value).reason == "ERROR_REASON_ALIGN_PAYPAL"


def test_self_service_changes_options_and_events(stack):
    created = stack.buy(seats=3)
    s = created.subscription
    sid = s.subscription_id
    off = stack.sub.SetAutoRenew(
        pb.SetAutoRenewRequest(request_id=rid(), subscription_id=sid, auto_renew=False)
    )
    assert not off.subscription.auto_renew
    seats = stack.sub.SetRenewalSeats(
        pb.SetRenewalSeatsRequest(subscription_id=sid, seats=2, request_id=rid())
    )
    assert (seats.subscription.seats, seats.subscription.renewal_seats) == (3, 2)
    opts = {
        o.action: o
        for o in stack.sub.GetSelfServiceOptions(pb.GetSelfServiceOptionsRequest(subscription_id=sid)).options
    }
    assert opts[pb.SELF_SERVICE_ACTION_ADD_SEATS].available
    assert opts[pb.SELF_SERVICE_ACTION_TURN_ON_AUTO_RENEW].available
    assert not opts[pb.SELF_SERVICE_ACTION_TURN_OFF_AUTO_RENEW].available
    assert opts[pb.SELF_SERVICE_ACTION_RENEW].error_reason == "ERROR_REASON_RENEWAL_WINDOW_NOT_OPEN"
    partner = stack.buy(channel=common_pb2.CHANNEL_PARTNER_QUOTE, partner_name="Nordic CAD AS").subscription
    popts = stack.sub.GetSelfServiceOptions(
        pb.GetSelfServiceOptionsRequest(subscription_id=partner.subscription_id)
    )
    add = next(o for o in popts.options if o.action == pb.SELF_SERVICE_ACTION_ADD_SEATS)
    assert not add.available and "Nordic CAD AS" in add.reason

    events = [e for e in _events(stack) if e.subscription_id == sid]
    assert [e.event_type for e in events] == [
        "subscription.created",
        "subscription.changed",
        "subscription.changed",
    ]
    first = events[0]
    assert first.source == "subscription" and first.account_id == "acct-1"
    snap = first.subscription_created.subscription
    assert (snap.buyer_email, snap.buyer_language, snap.product_name) == (
        "kari@example.no",
        "nb",
        "AutoCAD LT",
    )
    assert snap.seats == 3 and snap.stage == common_pb2.STAGE_ACTIVE
    assert first.subscription_created.order_number == created.order_number
    assert first.subscription_created.invoice_id == created.invoice_id
    assert [e.subscription_changed.change for e in events[1:]] == ["auto_renew", "renewal_seats"]
    assert events[2].subscription_changed.subscription.renewal_seats == 2


def test_clock_and_the_lifecycle_rpcs_need_the_operator(stack):
    now = stack.sub.GetClock(pb.GetClockRequest())
    assert now.now_time.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 10, 8, 0, tzinfo=UTC) and now.test_clock
    r = stack.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    assert (r.renewed, r.reminded, r.expired, r.suspended, r.cancelled) == (0, 0, 0, 0, 0)
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.AdvanceClock(pb.AdvanceClockRequest(request_id=rid()))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.RunLifecycle(pb.RunLifecycleRequest())
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_quote_of_a_new_purchase_needs_no_payment_method_and_writes_nothing(stack):
    q = stack.sub.QuoteOrder(
        pb.QuoteOrderRequest(create=stack.order(pm="", term=common_pb2.TERM_THREE_YEAR, seats=2))
    )
    assert money(q.subtotal) == Decimal("2620.00") and money(q.total) >= money(q.subtotal)
    assert [money(ln.amount) for ln in q.lines] == [Decimal("2620.00")]
    assert not stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest()).subscriptions
