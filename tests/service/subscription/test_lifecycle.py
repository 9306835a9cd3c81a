"""The lifecycle on the test clock, with the real subscription and billing services (billing's invoice
events delivered to subscription): the rules's Oslo walk, a monthly shutoff, reinstatement while Suspended,
a pay-by-invoice renewal that goes Expired at its due date, automatic renewals paid and declined, the
reminders, and AdvanceClock's refusals."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from services.billing.domain.gateway import DECLINES_AFTER_ATTACH
from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2 as c
from tenure.events.v1 import events_pb2
from tenure.subscription.v1 import subscription_pb2 as pb
from tenure.subscription.v1 import subscription_pb2_grpc
from tests.auth import channel

from .conftest import DECLINED_CARD, OPERATOR, Stack, error_info, money, outbox_events, rid

OSLO = ZoneInfo("Europe/Oslo")


def oslo(y, m, d, hh=0, mm=0, ss=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=OSLO).astimezone(UTC)


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Life(Stack):
    def advance(self, to: datetime) -> pb.AdvanceClockResponse:
        return self.sub.AdvanceClock(
            pb.AdvanceClockRequest(request_id=rid(), to_time=ts(to)), metadata=OPERATOR
        )

    def get(self, subscription_id: str) -> pb.Subscription:
        return self.sub.GetSubscription(
            pb.GetSubscriptionRequest(subscription_id=subscription_id)
        ).subscription

    def history(self, subscription_id: str) -> list[tuple[int, int, datetime, str]]:
        r = self.sub.GetLifecycleHistory(pb.GetLifecycleHistoryRequest(subscription_id=subscription_id))
        return [
            (t.from_stage, t.to_stage, t.transition_time.ToDatetime(tzinfo=UTC), t.reason)
            for t in r.transitions
        ]

    def events(self, subscription_id: str) -> list[events_pb2.Event]:
        return [e for e in outbox_events(self.sub_app.db) if e.subscription_id == subscription_id]

    def invoice_method(self, account_id: str) -> str:
        return self.billing.AddPaymentMethod(
            billing_pb2.AddPaymentMethodRequest(
                account_id=account_id, type=c.PAYMENT_METHOD_TYPE_INVOICE, request_id=rid()
            )
        ).payment_method.payment_method_id

    def invoice(self, invoice_id: str) -> billing_pb2.Invoice:
        return self.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=invoice_id)).invoice


@pytest.fixture
def life(start_service, clock) -> Life:
    """Subscription and billing on one test clock, billing's events delivered to subscription."""
    billing_addr = f"127.0.0.1:{_free_port()}"
    sub_app = start_service(
        "subscription",
        billing_addr=billing_addr,
        entitlement_addr="",
        notification_addr="",
        lifecycle_interval_seconds=0,
    )
    billing_app = start_service(
        "billing", addr=billing_addr, event_subscribers=f"127.0.0.1:{sub_app.port}", sweep_interval_seconds=0
    )
    return Life.at(sub_app, billing_app, clock, f"127.0.0.1:{sub_app.port}", billing_addr)


def test_oslo_annual_walk_on_the_test_clock(life):
    """Annual, auto-renew off, bought 2024-06-10 in Oslo: Active until 2025-06-09 23:59:59; Expired on
    2025-06-10; Suspended on 2025-06-25; Cancelled on 2025-07-25; renewal refused after that."""
    s = life.buy(auto_renew=False).subscription
    sid = s.subscription_id
    assert s.expiry_time.ToDatetime(tzinfo=UTC) == oslo(2025, 6, 9, 23, 59, 59)
    r = life.advance(oslo(2025, 6, 9, 23, 59, 59))
    assert r.now_time.ToDatetime(tzinfo=UTC) == oslo(2025, 6, 9, 23, 59, 59)
    assert life.get(sid).stage == c.STAGE_ACTIVE
    reminders = [e.renewal_reminder.days_before for e in life.events(sid) if e.HasField("renewal_reminder")]
    assert reminders == [45, 30, 4]
    life.advance(oslo(2025, 6, 10))
    assert life.get(sid).stage == c.STAGE_EXPIRED
    life.advance(oslo(2025, 6, 24, 23, 59, 59))
    assert life.get(sid).stage == c.STAGE_EXPIRED
    life.advance(oslo(2025, 6, 25))
    assert life.get(sid).stage == c.STAGE_SUSPENDED
    life.advance(oslo(2025, 7, 24, 23, 59, 59))
    assert life.get(sid).stage == c.STAGE_SUSPENDED
    life.advance(oslo(2025, 7, 25))
    assert life.get(sid).stage == c.STAGE_CANCELLED
    assert life.history(sid) == [
        (0, c.STAGE_ACTIVE, datetime(2024, 6, 10, 8, 0, tzinfo=UTC), "created"),
        (c.STAGE_ACTIVE, c.STAGE_EXPIRED, oslo(2025, 6, 10), "term_ended"),
        (c.STAGE_EXPIRED, c.STAGE_SUSPENDED, oslo(2025, 6, 25), "shutoff"),
        (c.STAGE_SUSPENDED, c.STAGE_CANCELLED, oslo(2025, 7, 25), "shutoff"),
    ]
    changes = [(e.stage_changed.to_stage, e.stage_changed.subscription.stage) for e in life.events(sid)]
    changes = [x for x in changes if x[0]]
    assert changes == [(st, st) for st in (c.STAGE_EXPIRED, c.STAGE_SUSPENDED, c.STAGE_CANCELLED)]
    with pytest.raises(grpc.RpcError) as e:
        life.sub.RenewSubscription(pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=sid))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(e.value).reason == "ERROR_REASON_SUBSCRIPTION_CANCELLED"


def test_monthly_is_cancelled_30_days_after_expiry(life):
    s = life.buy(auto_renew=False, term=c.TERM_MONTHLY).subscription  # renews 2024-07-10
    sid = s.subscription_id
    assert life.billing_app.relay.drain(10)  # an event being applied holds the row: a sweep would skip it
    r = life.sub.RunLifecycle(pb.RunLifecycleRequest(as_of_time=ts(oslo(2024, 7, 10))), metadata=OPERATOR)
    assert (r.expired, r.suspended, r.cancelled) == (1, 0, 0)
    life.advance(oslo(2024, 8, 8, 23, 59, 59))
    assert life.get(sid).stage == c.STAGE_SUSPENDED
    life.advance(oslo(2024, 8, 9))  # 30 days after 2024-07-10
    assert life.get(sid).stage == c.STAGE_CANCELLED
    assert [h[2] for h in life.history(sid)[1:]] == [oslo(2024, 7, 10), oslo(2024, 7, 25), oslo(2024, 8, 9)]
    again = life.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    assert (again.expired, again.suspended, again.cancelled) == (0, 0, 0)  # a repeat moves nothing


def test_renewed_while_suspended_keeps_its_anniversary_and_pays_the_renewal_price(life):
    s = life.buy(auto_renew=False, seats=2).subscription
    sid = s.subscription_id
    life.advance(oslo(2025, 6, 30, 12))
    assert life.get(sid).stage == c.STAGE_SUSPENDED
    r = life.sub.RenewSubscription(pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=sid))
    got = r.subscription
    assert got.stage == c.STAGE_ACTIVE
    assert (got.current_period_start_date.year, got.current_period_start_date.month) == (2025, 6)
    assert got.current_period_start_date.day == 10 and (got.renewal_date.year, got.renewal_date.day) == (
        2026,
        10,
    )
    assert money(got.unit_price) == Decimal("420.00")
    inv = life.invoice(r.invoice_id)
    assert money(inv.subtotal) == Decimal("840.00") and inv.status == billing_pb2.INVOICE_STATUS_PAID
    assert [h[1] for h in life.history(sid)] == [
        c.STAGE_ACTIVE,
        c.STAGE_EXPIRED,
        c.STAGE_SUSPENDED,
        c.STAGE_ACTIVE,
    ]
    life.advance(oslo(2026, 4, 25))  # the new term's 45-day reminder, and no shutoff on the way
    assert life.get(sid).stage == c.STAGE_ACTIVE
    days = [e.renewal_reminder.days_before for e in life.events(sid) if e.HasField("renewal_reminder")]
    assert days == [45, 30, 4, 45]  # the old term's three, then the new term's first


def test_pay_by_invoice_renewal_unpaid_at_its_due_date_goes_expired_on_the_due_date(life):
    pm = life.invoice_method("acct-1")
    bought = life.buy(pm=pm, channel=c.CHANNEL_PARTNER_QUOTE, partner_name="Nordic CAD AS")
    sid = bought.subscription.subscription_id
    assert life.invoice(bought.invoice_id).status == billing_pb2.INVOICE_STATUS_OPEN
    life.billing.PayInvoice(  # the purchase is paid by bank transfer within its terms
        billing_pb2.PayInvoiceRequest(request_id=rid(), invoice_id=bought.invoice_id, payment_method_id=pm)
    )
    life.advance(oslo(2025, 6, 10, 1))
    renewed = life.get(sid)
    assert renewed.stage == c.STAGE_ACTIVE and (renewed.renewal_date.year, renewed.renewal_date.day) == (
        2026,
        10,
    )
    renewal = [e.subscription_renewed for e in life.events(sid) if e.HasField("subscription_renewed")]
    assert len(renewal) == 1
    inv = life.invoice(renewal[0].invoice_id)
    assert inv.status == billing_pb2.INVOICE_STATUS_OPEN and money(inv.subtotal) == Decimal("420.00")
    due = (inv.due_date.year, inv.due_date.month, inv.due_date.day)
    assert due == (2025, 7, 10)
    life.advance(oslo(2025, 7, 9, 23, 59, 59))
    assert life.get(sid).stage == c.STAGE_ACTIVE
    life.advance(oslo(2025, 7, 10, 3))
    shut = life.get(sid)
    assert shut.stage == c.STAGE_EXPIRED and (shut.renewal_date.year, shut.renewal_date.day) == (2026, 10)
    assert life.history(sid)[-1] == (c.STAGE_ACTIVE, c.STAGE_EXPIRED, oslo(2025, 7, 10), "invoice_overdue")
    life.advance(oslo(2025, 7, 25, 12))
    assert life.get(sid).stage == c.STAGE_SUSPENDED
    life.billing.PayInvoice(
        billing_pb2.PayInvoiceRequest(request_id=rid(), invoice_id=inv.invoice_id, payment_method_id=pm)
    )
    life.advance(oslo(2025, 7, 25, 13))  # delivers billing.invoice_paid
    back = life.get(sid)
    assert back.stage == c.STAGE_ACTIVE and (back.renewal_date.year, back.renewal_date.day) == (2026, 10)
    assert life.history(sid)[-1][:2] == (c.STAGE_SUSPENDED, c.STAGE_ACTIVE)
    assert life.history(sid)[-1][3] == "paid"


def test_automatic_renewal_charges_the_renewal_price_at_the_renewal_instant(life):
    s = life.buy(seats=3).subscription
    sid = s.subscription_id
    life.advance(oslo(2025, 6, 9, 23, 59, 59))
    assert life.get(sid).renewal_date.year == 2025
    life.advance(oslo(2025, 6, 10))
    got = life.get(sid)
    assert got.stage == c.STAGE_ACTIVE and (got.renewal_date.year, got.renewal_date.day) == (2026, 10)
    assert money(got.unit_price) == Decimal("420.00") and got.seats == 3
    renewed = [e.subscription_renewed for e in life.events(sid) if e.HasField("subscription_renewed")]
    assert len(renewed) == 1
    inv = life.invoice(renewed[0].invoice_id)
    assert inv.status == billing_pb2.INVOICE_STATUS_PAID and money(inv.subtotal) == Decimal("1260.00")
    again = life.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    assert again.renewed == 0  # the same period never renews twice


def test_declined_renewal_starts_the_shutoff_and_paying_its_invoice_reinstates(life):
    s = life.buy(pm=life.card("acct-1")).subscription
    sid = s.subscription_id
    bad = life.card("acct-1", DECLINED_CARD)
    life.sub.ChangePaymentMethod(
        pb.ChangePaymentMethodRequest(request_id=rid(), subscription_id=sid, payment_method_id=bad)
    )
    life.advance(oslo(2025, 6, 10, 6))
    shut = life.get(sid)
    assert shut.stage == c.STAGE_EXPIRED and shut.renewal_date.year == 2025
    assert life.history(sid)[-1] == (c.STAGE_ACTIVE, c.STAGE_EXPIRED, oslo(2025, 6, 10), "payment_failed")
    open_ = life.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(account_id="acct-1", status=billing_pb2.INVOICE_STATUS_OPEN)
    ).invoices
    assert len(open_) == 1 and money(open_[0].subtotal) == Decimal("420.00")
    life.advance(oslo(2025, 6, 26))  # four retries (11, 13, 15 and 17 June) were declined as well
    assert life.get(sid).stage == c.STAGE_SUSPENDED
    assert len(life.invoice(open_[0].invoice_id).payment_attempts) == 5
    life.card("acct-1")  # a new card: the unpaid renewal is charged with it at once
    assert life.invoice(open_[0].invoice_id).status == billing_pb2.INVOICE_STATUS_PAID
    life.advance(oslo(2025, 6, 26, 1))
    back = life.get(sid)
    assert back.stage == c.STAGE_ACTIVE
    assert (back.current_period_start_date.year, back.current_period_start_date.day) == (2025, 10)
    assert (back.renewal_date.year, back.renewal_date.month, back.renewal_date.day) == (2026, 6, 10)
    assert life.history(sid)[-1][1:] == (c.STAGE_ACTIVE, life.history(sid)[-1][2], "paid")


def test_advance_clock_takes_a_duration_and_refuses_bad_input(life):
    with pytest.raises(grpc.RpcError) as e:
        life.sub.AdvanceClock(pb.AdvanceClockRequest(request_id=rid()), metadata=OPERATOR)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        life.advance(datetime(2024, 1, 1, tzinfo=UTC))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    key = rid()
    req = pb.AdvanceClockRequest(request_id=key, duration=duration_pb2.Duration(seconds=3 * 86400))
    first = life.sub.AdvanceClock(req, metadata=OPERATOR)
    assert (  # nothing comes due in those three days: one step, to the target
        first.now_time.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 13, 8, 0, tzinfo=UTC) and first.steps == 1
    )
    assert life.sub.AdvanceClock(req, metadata=OPERATOR) == first  # a repeat does not move it again
    assert life.clock.now() == datetime(2024, 6, 13, 8, 0, tzinfo=UTC)


def test_advance_clock_is_refused_on_the_system_clock(start_service):
    from services.subscription.app import create
    from shared.clock import SystemClock
    from shared.settings import SubscriptionSettings

    def system(settings: SubscriptionSettings, _clock):
        return create(settings, SystemClock())

    app = start_service("subscription", create=system, billing_addr="127.0.0.1:1", entitlement_addr="")
    stub = subscription_pb2_grpc.SubscriptionServiceStub(channel(f"127.0.0.1:{app.port}"))
    with pytest.raises(grpc.RpcError) as e:
        stub.AdvanceClock(
            pb.AdvanceClockRequest(request_id=rid(), duration=duration_pb2.Duration(seconds=60)),
            metadata=OPERATOR,
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(e.value).reason == "ERROR_REASON_TEST_CLOCK_DISABLED"


def test_a_declined_renewal_is_retried_then_paid_by_a_new_card_with_no_gap(life):
    """Dunning (rules §5): declined at the renewal instant, retried after 1 and 3 days (declined), paid when
    the buyer replaces the card: Active again, one charge, the anniversary unchanged."""
    s = life.buy(pm=life.card("acct-1")).subscription
    sid = s.subscription_id
    bad = life.card("acct-1", DECLINES_AFTER_ATTACH)
    life.sub.ChangePaymentMethod(
        pb.ChangePaymentMethodRequest(request_id=rid(), subscription_id=sid, payment_method_id=bad)
    )
    life.advance(oslo(2025, 6, 10, 6))
    assert life.get(sid).stage == c.STAGE_EXPIRED
    (inv,) = life.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(account_id="acct-1", status=billing_pb2.INVOICE_STATUS_OPEN)
    ).invoices
    assert inv.next_retry_time.ToDatetime(tzinfo=UTC) == oslo(2025, 6, 11)
    r = life.advance(oslo(2025, 6, 13, 12))  # the retries of 11 and 13 June
    assert r.steps == 3  # one step per retry instant, and the target
    inv = life.invoice(inv.invoice_id)
    assert [a.status for a in inv.payment_attempts] == [billing_pb2.PAYMENT_STATUS_DECLINED] * 3
    assert [a.create_time.ToDatetime(tzinfo=UTC) for a in inv.payment_attempts] == [
        oslo(2025, 6, 10),
        oslo(2025, 6, 11),
        oslo(2025, 6, 13),
    ]
    assert inv.next_retry_time.ToDatetime(tzinfo=UTC) == oslo(2025, 6, 15)
    failed = [
        e.payment_failed
        for e in outbox_events(life.billing_app.db)
        if e.event_type == "billing.payment_failed" and e.payment_failed.invoice.invoice_id == inv.invoice_id
    ]
    assert [(f.attempt, f.next_retry_time.ToDatetime(tzinfo=UTC)) for f in failed] == [
        (1, oslo(2025, 6, 11)),
        (2, oslo(2025, 6, 13)),
        (3, oslo(2025, 6, 15)),
    ]
    assert life.get(sid).stage == c.STAGE_EXPIRED

    life.card("acct-1")  # the buyer replaces the card: charged at once
    life.advance(oslo(2025, 6, 13, 13))  # delivers billing.invoice_paid
    back = life.get(sid)
    assert back.stage == c.STAGE_ACTIVE
    assert (back.current_period_start_date.month, back.current_period_start_date.day) == (6, 10)
    assert (back.renewal_date.year, back.renewal_date.month, back.renewal_date.day) == (2026, 6, 10)
    paid = life.invoice(inv.invoice_id)
    assert paid.status == billing_pb2.INVOICE_STATUS_PAID and not paid.HasField("next_retry_time")
    assert [a.status for a in paid.payment_attempts].count(billing_pb2.PAYMENT_STATUS_SUCCEEDED) == 1
    life.advance(oslo(2025, 6, 20))  # the 15 and 17 June retries do not happen
    assert len(life.invoice(inv.invoice_id).payment_attempts) == 4
    renewals = life.billing.ListInvoices(
        billing_pb2.ListInvoicesRequest(account_id="acct-1", subscription_id=sid)
    ).invoices
    assert len([i for i in renewals if i.kind == billing_pb2.INVOICE_KIND_RENEWAL]) == 1  # one renewal, once
