"""The mail of the test clock, with all four services: AdvanceClock returns only when the notification
service has made the e-mail of every event up to each step, and each e-mail is dated by its event on the
test clock (rules §8; architecture "Time-driven work"). Invoice reminders go out 7 days before the due
date while the invoice is open, and AdvanceClock stops at their instants."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from google.protobuf import timestamp_pb2

from services.notification.domain.reminders import reminder_event_id
from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2 as c
from tenure.notification.v1 import notification_pb2 as npb
from tenure.notification.v1 import notification_pb2_grpc
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import channel, operator
from tests.service.subscription.conftest import KARI, Stack, day, rid

from .conftest import wait_for

OSLO = ZoneInfo("Europe/Oslo")
OPERATOR = operator()


def oslo(y, m, d, hh=0) -> datetime:
    return datetime(y, m, d, hh, tzinfo=OSLO).astimezone(UTC)


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Four(Stack):
    notification: notification_pb2_grpc.NotificationServiceStub
    mail_dir: Path

    def advance(self, to: datetime) -> pb.AdvanceClockResponse:
        return self.sub.AdvanceClock(
            pb.AdvanceClockRequest(request_id=rid(), to_time=ts(to)), metadata=OPERATOR
        )

    def mail(self, kind: int) -> list[npb.Notification]:
        """The log of one kind, oldest first."""
        r = self.notification.ListNotifications(npb.ListNotificationsRequest(kind=kind, page_size=500))
        return sorted(r.notifications, key=lambda n: n.create_time.ToDatetime())


@pytest.fixture
def four(start_service, clock, tmp_path) -> Four:
    """Subscription, billing, entitlement and notification on one test clock, each service's events
    delivered to its subscribers as in production; mail is written to files."""
    addr = {
        n: f"127.0.0.1:{_free_port()}" for n in ("subscription", "billing", "entitlement", "notification")
    }
    start_service(
        "notification",
        addr=addr["notification"],
        entitlement_addr=addr["entitlement"],
        billing_addr=addr["billing"],
        mail_dir=str(tmp_path / "mail"),
        delivery_interval_seconds=1.0,  # the background pass as deployed
    )
    start_service(
        "entitlement",
        addr=addr["entitlement"],
        event_subscribers=",".join(addr[n] for n in ("subscription", "billing", "notification")),
    )
    billing_app = start_service(
        "billing",
        addr=addr["billing"],
        sweep_interval_seconds=0,
        event_subscribers=",".join(addr[n] for n in ("subscription", "entitlement", "notification")),
    )
    sub_app = start_service(
        "subscription",
        addr=addr["subscription"],
        billing_addr=addr["billing"],
        entitlement_addr=addr["entitlement"],
        notification_addr=addr["notification"],
        lifecycle_interval_seconds=0,
        event_subscribers=",".join(addr[n] for n in ("entitlement", "notification")),
    )
    four = Four.at(sub_app, billing_app, clock, addr["subscription"], addr["billing"])
    four.notification = notification_pb2_grpc.NotificationServiceStub(
        channel(addr["notification"], default=OPERATOR)
    )
    four.mail_dir = tmp_path / "mail"
    return four


def test_renewal_reminders_are_dated_45_30_and_4_days_before_expiry_as_soon_as_advance_clock_returns(four):
    """An annual Oslo term bought 2024-06-10, auto-renew off, expires 2025-06-09: its reminders are
    made on 2025-04-25, 2025-05-10 and 2025-06-05 (Oslo), each listed when AdvanceClock returns."""
    four.buy(auto_renew=False)
    four.advance(oslo(2024, 6, 11))  # the order's mail is made at the order's instant
    (order,) = four.mail(npb.NOTIFICATION_KIND_ORDER_CONFIRMATION)
    assert order.create_time.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
    expected = [oslo(2025, 4, 25), oslo(2025, 5, 10), oslo(2025, 6, 5)]
    for n, at in enumerate(expected, start=1):
        four.advance(at)  # each reminder's own instant: no waiting for a background pass
        made = four.mail(npb.NOTIFICATION_KIND_RENEWAL_REMINDER)
        assert [m.create_time.ToDatetime(tzinfo=UTC) for m in made] == expected[:n]
        assert made[-1].recipient_email == KARI
    four.advance(oslo(2025, 7, 30))  # expiry, suspension, cancellation: the reminders stay as they were
    assert [
        m.create_time.ToDatetime(tzinfo=UTC) for m in four.mail(npb.NOTIFICATION_KIND_RENEWAL_REMINDER)
    ] == expected
    dates = [
        m.create_time.ToDatetime(tzinfo=UTC).astimezone(OSLO).date().isoformat()
        for m in four.mail(npb.NOTIFICATION_KIND_RENEWAL_REMINDER)
    ]
    assert dates == ["2025-04-25", "2025-05-10", "2025-06-05"]
    (expired,) = four.mail(npb.NOTIFICATION_KIND_SUBSCRIPTION_EXPIRED)
    assert expired.create_time.ToDatetime(tzinfo=UTC) == oslo(2025, 6, 10)
    body = four.notification.GetNotification(
        npb.GetNotificationRequest(notification_id=expired.notification_id)
    ).notification.text_body
    assert "utløp 9. juni 2025" in body and "Forny nå" in body and "faktura" not in body.lower()
    # the e-mail's Date header is its event's instant too
    path = four.mail_dir / f"{expired.notification_id}.eml"
    assert wait_for(path.exists, timeout=15)
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsedate_to_datetime(msg["Date"]) == oslo(2025, 6, 10)
    assert msg["Reply-To"] and "no-reply" not in msg["Reply-To"]


def test_an_open_invoice_is_recalled_7_days_before_its_due_date_and_a_paid_one_is_not(four):
    """Bought by invoice on 2024-06-10 (due 2024-07-10): the payer mail of 2024-07-03 (Oslo) says what
    is owed and when; AdvanceClock stops there. An invoice paid before then gets no reminder."""
    pm = four.billing.AddPaymentMethod(
        billing_pb2.AddPaymentMethodRequest(
            account_id="acct-1", type=c.PAYMENT_METHOD_TYPE_INVOICE, request_id=rid()
        )
    ).payment_method.payment_method_id
    open_one = four.buy(pm=pm, channel=c.CHANNEL_PARTNER_QUOTE, partner_name="Nordic CAD AS")
    paid_one = four.buy(pm=pm, channel=c.CHANNEL_PARTNER_QUOTE, partner_name="Nordic CAD AS")
    four.billing.PayInvoice(
        billing_pb2.PayInvoiceRequest(request_id=rid(), invoice_id=paid_one.invoice_id, payment_method_id=pm)
    )
    r = four.advance(oslo(2024, 7, 5))
    assert r.steps >= 2  # the reminder's instant is a step of its own
    (reminder,) = four.mail(npb.NOTIFICATION_KIND_INVOICE_REMINDER)
    assert reminder.create_time.ToDatetime(tzinfo=UTC) == oslo(2024, 7, 3)
    assert reminder.event_id == reminder_event_id(open_one.invoice_id, 7)
    assert reminder.attachments and reminder.attachments[0].content_type == "application/pdf"
    full = four.notification.GetNotification(
        npb.GetNotificationRequest(notification_id=reminder.notification_id)
    ).notification
    assert "forfaller om 7 dager, 10. juli 2024" in full.text_body
    assert "Å betale:" in full.text_body and "acct-1" not in full.text_body
    # the invoice e-mail says what is true when it is made: paid (how, when), or what is due and when
    card_order = four.buy(account_id="acct-2")
    four.advance(oslo(2024, 7, 5, 1))
    number = {
        inv_id: four.billing.GetInvoice(
            billing_pb2.GetInvoiceRequest(invoice_id=inv_id)
        ).invoice.invoice_number
        for inv_id in (open_one.invoice_id, card_order.invoice_id)
    }
    issued = {
        n.subject: four.notification.GetNotification(
            npb.GetNotificationRequest(notification_id=n.notification_id)
        ).notification.text_body
        for n in four.mail(npb.NOTIFICATION_KIND_INVOICE_ISSUED)
    }
    (open_body,) = [b for subject, b in issued.items() if number[open_one.invoice_id] in subject]
    (card_body,) = [b for subject, b in issued.items() if number[card_order.invoice_id] in subject]
    assert (
        "Å betale:" in open_body and "Forfallsdato: 10. juli 2024" in open_body and "Betalt" not in open_body
    )
    assert "Å betale" not in card_body and "Betalt:" in card_body
    assert "den 5. juli 2024 med kort" in card_body


def test_a_trial_conversion_and_an_alignment_are_confirmed_with_their_order_numbers(four):
    """Every order gets its confirmation with its number: the trial converted, and the alignment (one
    mail per subscription it extends, each naming the one order)."""
    trial = four.buy(trial=True, pm="", seats=1).subscription
    conv = four.sub.ConvertTrial(
        pb.ConvertTrialRequest(
            request_id=rid(),
            subscription_id=trial.subscription_id,
            term=c.TERM_ANNUAL,
            seats=2,
            payment_method_id=four.card("acct-1"),
        )
    )
    four.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    pm = four.card("acct-2")
    a = four.buy(account_id="acct-2", pm=pm, seats=2, start_date=day(2024, 6, 10)).subscription
    b = four.buy(account_id="acct-2", pm=pm, start_date=day(2024, 9, 1)).subscription
    aligned = four.sub.AlignRenewalDates(
        pb.AlignRenewalDatesRequest(
            request_id=rid(), account_id="acct-2", subscription_ids=[a.subscription_id, b.subscription_id]
        )
    )
    four.advance(datetime(2024, 10, 1, 9, 5, tzinfo=UTC))
    confirmations = four.mail(npb.NOTIFICATION_KIND_ORDER_CONFIRMATION)
    by_subject = {n.subject: n for n in confirmations}
    converted = [s for s in by_subject if conv.order_number in s]
    assert len(converted) == 1
    body = four.notification.GetNotification(
        npb.GetNotificationRequest(notification_id=by_subject[converted[0]].notification_id)
    ).notification.text_body
    assert "er nå et betalt abonnement" in body and conv.order_number in body
    alignment = [n for n in confirmations if aligned.order_number in n.subject]
    assert len(alignment) == 1  # only the subscription whose renewal date moved was extended
    assert {n.subscription_id for n in alignment} <= {a.subscription_id, b.subscription_id}
    assert all(n.recipient_email == KARI for n in alignment)
