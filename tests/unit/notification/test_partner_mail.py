"""Partner mail (rules §9) on a fake unit of work: the quote to its buyer with the quote PDF, its acceptance
and expiry to the partner in the partner's language, and the partner's renewal opportunity 90 days before
the renewal date of what it sold — each once."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from google.type import date_pb2
from pypdf import PdfReader

from services.notification import handlers
from services.notification.adapters.quote_pdf import render_quote_pdf
from services.notification.domain import reminders
from services.notification.rendering import Renderer
from shared.clock import TestClock
from shared.money import to_proto
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tests.service.notification.conftest import envelope, snapshot

from .fakes import FakeDatabase, FakeMailer, FakePeers

ACCOUNT = "acct_q"
BUYER = "kari@example.no"
SALLY = "sally@acme.example"
ACME = "ACME Reseller AS"


class World:
    def __init__(self) -> None:
        self.db = FakeDatabase(TestClock(datetime(2024, 10, 1, 9, 0, tzinfo=UTC)))
        self.mailer = FakeMailer()
        self.mailing = handlers.Mailing(
            renderer=Renderer(), peers=FakePeers(), mailer=self.mailer, sender="Tenure <no-reply@tenure.test>"
        )

    def receive(self, ev: events_pb2.Event) -> None:
        with self.db.unit_of_work() as uow:
            handlers.record_event(uow, ev)

    def run(self) -> None:
        handlers.run_delivery(self.db, self.mailing)

    def mail(self) -> list:
        return sorted(self.db.notifications.rows.values(), key=lambda n: (n.create_time, n.kind))


@pytest.fixture
def world() -> World:
    return World()


def contact(language: str = "sv", email: str = SALLY) -> events_pb2.PartnerContact:
    return events_pb2.PartnerContact(partner=ACME, email=email, language=language)


def _d(y: int, m: int, d: int) -> date_pb2.Date:
    return date_pb2.Date(year=y, month=m, day=d)


def issued() -> events_pb2.Event:
    return envelope(
        "subscription.quote_issued",
        ACCOUNT,
        quote_issued=events_pb2.QuoteIssued(
            quote_number="Q-20241001-AAAA1111",
            version=2,
            partner_contact=contact(),
            buyer_email=BUYER,
            buyer_name="Kari Nordmann",
            buyer_language="nb",
            currency_code="USD",
            lines=[
                events_pb2.QuoteLine(
                    description="Quote Q-20241001-AAAA1111 v2: AutoCAD LT, 3 years, 1 seat",
                    quantity=1,
                    unit_price=to_proto("1310.00", "USD"),
                    amount=to_proto("1310.00", "USD"),
                    period_start_date=_d(2024, 10, 1),
                    period_end_date=_d(2027, 10, 1),
                )
            ],
            subtotal=to_proto("1310.00", "USD"),
            tax=to_proto("327.50", "USD"),
            total=to_proto("1637.50", "USD"),
            issue_date=_d(2024, 10, 1),
            valid_until_date=_d(2024, 10, 31),
            superseded_version=1,
        ),
    )


def accepted(partner: events_pb2.PartnerContact | None = None) -> events_pb2.Event:
    snap = snapshot(ACCOUNT, BUYER, "nb")  # renews 2025-06-10, Europe/Oslo
    snap.channel = common_pb2.CHANNEL_PARTNER_QUOTE
    return envelope(
        "subscription.quote_accepted",
        ACCOUNT,
        quote_accepted=events_pb2.QuoteAccepted(
            quote_number="Q-20240610-BBBB2222",
            version=1,
            partner=ACME,
            buyer_email=BUYER,
            order_number="ORD-2024-000555",
            invoice_id="inv_q",
            amount=to_proto("1762.50", "USD"),
            subscription=snap,
            partner_contact=partner or contact(),
        ),
    )


def test_the_quote_goes_to_its_buyer_in_the_buyers_language_with_the_quote_pdf(world):
    world.receive(issued())
    world.run()
    (n,) = world.mail()
    assert (n.recipient_email, n.kind, n.language, n.recipient_role) == (BUYER, "QUOTE_ISSUED", "nb", "BUYER")
    assert "Q-20241001-AAAA1111" in n.subject and ACME in n.subject
    assert "31. oktober 2024" in n.text_body  # valid until, in Norwegian
    (pdf,) = world.db.attachments.of(n.notification_id)
    assert pdf.filename == "Q-20241001-AAAA1111-v2.pdf" and pdf.content.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Tilbud" in text and "Q-20241001-AAAA1111" in text and "31.10.2024" in text
    assert "1 637,50" in text.replace("\u00a0", " ")  # the total, formatted for nb
    (sent,) = world.mailer.sent
    assert [a.filename for a in sent.attachments] == ["Q-20241001-AAAA1111-v2.pdf"]


def test_the_quote_pdf_is_written_in_each_language():
    ev = issued().quote_issued
    words = {"en": "Quote", "nb": "Tilbud", "fr": "Devis", "sv": "Offert"}
    for language, title in words.items():
        text = PdfReader(io.BytesIO(render_quote_pdf(ev, language))).pages[0].extract_text()
        assert title in text and "Q-20241001-AAAA1111" in text


def test_an_accepted_quote_tells_the_partner_in_the_partners_language_once(world):
    ev = accepted()
    world.receive(ev)
    world.run()
    # planned again (a second planner, or one restarted after storing): nothing new
    (row,) = [r for r in world.db.events.rows.values() if r.event_id == ev.event_id]
    row.status = "PENDING"
    world.run()
    (n,) = world.mail()
    assert (n.recipient_email, n.kind, n.language, n.recipient_role) == (
        SALLY,
        "QUOTE_ACCEPTED",
        "sv",
        "PARTNER",
    )
    assert "Q-20240610-BBBB2222" in n.subject and "Kari Nordmann" in n.subject
    assert "ORD-2024-000555" in n.text_body and "10 juni 2025" in n.text_body


def test_the_partner_is_told_90_days_before_the_renewal_of_what_it_sold(world):
    world.receive(accepted())
    world.run()
    # 2025-06-10 - 90 days = 2025-03-12, local midnight in Oslo (UTC+1)
    due = datetime(2025, 3, 11, 23, 0, tzinfo=UTC)
    (waiting,) = [
        r for r in world.db.events.rows.values() if r.event_type == reminders.RENEWAL_OPPORTUNITY_EVENT
    ]
    assert waiting.next_attempt_time == due and waiting.status == "PENDING"
    with world.db.reading() as uow:
        assert uow.events.latest(reminders.RENEWAL_OPPORTUNITY_EVENT, "sub_1") is waiting
    world.db.clock.set(due - timedelta(seconds=1))
    world.run()
    assert [n.kind for n in world.mail()] == ["QUOTE_ACCEPTED"]
    world.db.clock.set(due)
    world.run()
    world.run()
    kinds = [(n.recipient_email, n.kind, n.language) for n in world.mail()]
    assert kinds == [(SALLY, "QUOTE_ACCEPTED", "sv"), (SALLY, "RENEWAL_OPPORTUNITY", "sv")]
    opp = world.mail()[-1]
    assert "90" in opp.subject and "AutoCAD LT" in opp.subject and "10 juni 2025" in opp.text_body


def test_a_renewal_of_a_partner_subscription_schedules_the_next_opportunity_and_a_cancellation_drops_it(
    world,
):
    world.receive(accepted())
    snap = snapshot(ACCOUNT, BUYER, "nb")
    snap.channel = common_pb2.CHANNEL_PARTNER_QUOTE
    snap.renewal_date.CopyFrom(_d(2026, 6, 10))
    world.receive(
        envelope(
            "subscription.renewed",
            ACCOUNT,
            subscription_renewed=events_pb2.SubscriptionRenewed(subscription=snap, order_number="ORD-R"),
        )
    )
    ids = {r.event_id: r for r in world.db.events.rows.values()}
    nxt = ids[reminders.opportunity_event_id("sub_1", datetime(2026, 6, 10).date())]
    assert nxt.next_attempt_time == datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    payload = events_pb2.Event.FromString(nxt.payload).renewal_opportunity
    assert payload.partner_contact.email == SALLY and payload.days_before == 90
    cancelled = events_pb2.StageChanged(subscription=snap, to_stage=common_pb2.STAGE_CANCELLED, reason="x")
    world.receive(envelope("subscription.stage_changed", ACCOUNT, stage_changed=cancelled))
    assert nxt.status == "CANCELLED"


def test_a_direct_subscription_renewed_gets_no_partner_mail(world):
    snap = snapshot(ACCOUNT, BUYER, "nb")  # direct online
    world.receive(
        envelope(
            "subscription.renewed",
            ACCOUNT,
            subscription_renewed=events_pb2.SubscriptionRenewed(subscription=snap, order_number="ORD-R"),
        )
    )
    assert not [
        r for r in world.db.events.rows.values() if r.event_type == reminders.RENEWAL_OPPORTUNITY_EVENT
    ]


def test_an_expired_quote_tells_the_partner_and_a_partner_without_a_contact_gets_nothing(world):
    def expired(c: events_pb2.PartnerContact) -> events_pb2.Event:
        return envelope(
            "subscription.quote_expired",
            ACCOUNT,
            quote_expired=events_pb2.QuoteExpired(
                quote_number="Q-20241001-CCCC3333",
                version=1,
                partner_contact=c,
                buyer_email=BUYER,
                buyer_name="Kari Nordmann",
                total=to_proto("1637.50", "USD"),
                valid_until_date=_d(2024, 10, 31),
            ),
        )

    world.receive(expired(contact("fr")))
    world.receive(expired(contact("fr", email="")))
    world.run()
    (n,) = world.mail()
    assert (n.recipient_email, n.kind, n.language) == (SALLY, "QUOTE_EXPIRED", "fr")
    assert "Q-20241001-CCCC3333" in n.subject and "31 octobre 2024" in n.text_body
