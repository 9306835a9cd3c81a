"""E-mails say what is true (rules §8): invoice reminders on their policy's days, a paid invoice says
paid, an open one what is due; an expiry an unpaid invoice caused names it and asks to pay it, a term's
expiry asks to renew; every order is confirmed with its number; admins hear of seats assigned and
added; Reply-To comes from settings; no internal id reaches a customer. Every new kind is routed and
renders in the four languages."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.notification import handlers
from services.notification.adapters.mailer import Outgoing, build_message
from services.notification.codec import to_facts
from services.notification.domain.languages import SUPPORTED_LANGUAGES
from services.notification.domain.model import (
    BILLING_AND_RENEWAL_KINDS,
    InvoiceState,
    Kind,
    MailFacts,
    Person,
    Role,
    with_invoice,
)
from services.notification.domain.reminders import (
    INVOICE_REMINDER_EVENT,
    ReminderPolicy,
    reminder_event_id,
    schedule,
)
from services.notification.domain.routing import CONSUMED_EVENT_TYPES, build_directory, plan
from services.notification.domain.samples import sample_facts
from services.notification.rendering import Renderer
from shared.clock import TestClock
from shared.money import to_proto
from tenure.events.v1 import events_pb2
from tests.service.notification.conftest import envelope, invoice_event, snapshot

from .fakes import FakeDatabase, FakeMailer, FakePeers

OSLO = ZoneInfo("Europe/Oslo")
RENDERER = Renderer()
BUYER = Person("kari@example.com", "Kari Nordmann", "nb", frozenset({Role.BUYER}))
ADMIN = Person("ola@example.com", "Ola Admin", "sv", frozenset({Role.PRIMARY_ADMIN}))
PAYER = Person("pia@example.com", "Pia Payer", "fr", frozenset({Role.PAYER}))
TEAM = (BUYER, ADMIN)


def oslo(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=OSLO).astimezone(UTC)


def spaces(text: str) -> str:
    return re.sub(r"[\u00a0\u202f]", " ", text)


# --- the reminder policy ---------------------------------------------------------------------


def test_an_invoice_due_2024_07_10_in_oslo_is_recalled_on_07_03_and_07_10_at_local_midnight() -> None:
    out = schedule(ReminderPolicy(), "inv_1", date(2024, 7, 10), OSLO, issued_at=oslo(2024, 6, 10))
    assert [(r.days_before, r.due_time) for r in out] == [(7, oslo(2024, 7, 3)), (0, oslo(2024, 7, 10))]
    assert out[0].due_time == datetime(2024, 7, 2, 22, 0, tzinfo=UTC)  # summer time: UTC+2
    assert out[0].event_id == reminder_event_id("inv_1", 7) != reminder_event_id("inv_1", 0)


def test_a_reminder_whose_day_began_before_the_invoice_was_issued_is_not_scheduled() -> None:
    issued = oslo(2024, 7, 5) + timedelta(hours=9)  # due 2024-07-10: 7 days before is already past
    assert [r.days_before for r in schedule(ReminderPolicy(), "i", date(2024, 7, 10), OSLO, issued)] == [0]
    assert schedule(ReminderPolicy(), "i", date(2024, 7, 10), OSLO, oslo(2024, 7, 10)) == []


def test_the_policy_is_a_table() -> None:
    out = schedule(ReminderPolicy((14, 3)), "i", date(2025, 3, 20), OSLO, oslo(2025, 2, 18))
    assert [(r.days_before, r.due_time) for r in out] == [(14, oslo(2025, 3, 6)), (3, oslo(2025, 3, 17))]
    with pytest.raises(ValueError):
        ReminderPolicy((7, 7))
    with pytest.raises(ValueError):
        ReminderPolicy((-1,))


# --- routing of the new mail --------------------------------------------------------------------


def _event(event_type: str, **kw) -> object:
    from services.notification.domain.model import EventFacts

    kw.setdefault("facts", MailFacts(order_number="ORD-2025-000321", product_name="AutoCAD LT"))
    return EventFacts(event_id="ev-1", event_type=event_type, account_id="acct-1", **kw)


def sent(planned) -> set[tuple[str, Kind]]:
    return {(p.recipient.email, p.kind) for p in planned}


def test_invoice_reminders_go_to_the_buyer_and_the_invoices_payers_and_no_admin() -> None:
    directory = build_directory(TEAM, [PAYER], payer_emails=[PAYER.email])
    out = plan(_event(INVOICE_REMINDER_EVENT), directory)
    assert sent(out) == {(BUYER.email, Kind.INVOICE_REMINDER), (PAYER.email, Kind.INVOICE_REMINDER)}
    assert {p.language for p in out} == {"nb", "fr"}
    assert Kind.INVOICE_REMINDER in BILLING_AND_RENEWAL_KINDS
    assert INVOICE_REMINDER_EVENT not in CONSUMED_EVENT_TYPES  # made here, not received


@pytest.mark.parametrize("change", ["trial_converted", "aligned"])
def test_a_trial_conversion_and_an_alignment_are_confirmed_to_the_buyer_with_the_order_number(change) -> None:
    out = plan(_event("subscription.changed", change=change), build_directory(TEAM))
    assert sent(out) == {(BUYER.email, Kind.ORDER_CONFIRMATION)}
    assert out[0].facts.order_number == "ORD-2025-000321"


@pytest.mark.parametrize("change", ["auto_renew", "term", "renewal_seats", "product_switch", ""])
def test_changes_that_are_no_order_send_no_confirmation(change) -> None:
    assert plan(_event("subscription.changed", change=change), build_directory(TEAM)) == []


def test_admins_hear_of_a_seat_assigned_and_of_seats_added_but_not_the_price() -> None:
    per = Person("per@example.com", "Per", "sv")
    out = plan(_event("entitlement.seat_assigned", subject=per), build_directory(TEAM))
    assert sent(out) == {("per@example.com", Kind.SEAT_ASSIGNED), (ADMIN.email, Kind.USER_ASSIGNED)}
    told = next(p for p in out if p.kind is Kind.USER_ASSIGNED)
    assert told.language == "sv" and told.facts.product_name == "AutoCAD LT"
    added = plan(_event("subscription.seats_added"), build_directory(TEAM))
    assert sent(added) == {(BUYER.email, Kind.SEATS_ADDED), (ADMIN.email, Kind.PRODUCT_ACCESS)}


# --- events to facts ------------------------------------------------------------------------------


def test_an_alignment_event_carries_its_order_number_amount_and_kind() -> None:
    ev = envelope(
        "subscription.changed",
        "acct-1",
        subscription_changed=events_pb2.SubscriptionChanged(
            subscription=snapshot("acct-1", BUYER.email, "nb"),
            change="aligned",
            order_number="ORD-2025-000321",
            amount=to_proto("301.32", "USD"),
            invoice_id="inv_9",
        ),
    )
    facts = to_facts(ev)
    assert (facts.change, facts.invoice_id) == ("aligned", "inv_9")
    assert (facts.facts.order_number, facts.facts.amount, facts.facts.order_kind) == (
        "ORD-2025-000321",
        Decimal("301.32"),
        "aligned",
    )
    assert facts.buyer is not None and facts.buyer.email == BUYER.email
    assert facts.time == datetime(2024, 6, 10, 8, 0, tzinfo=UTC)


# --- handlers: reminders scheduled, dropped when paid, dated by their instant -----------------------


class World:
    def __init__(self) -> None:
        self.db = FakeDatabase(TestClock(datetime(2024, 6, 10, 8, 0, tzinfo=UTC)))
        self.peers = FakePeers()
        self.mailing = handlers.Mailing(
            renderer=RENDERER, peers=self.peers, mailer=FakeMailer(), sender="Tenure <no-reply@t.test>"
        )
        self.peers.teams["acct-1"] = [BUYER, ADMIN]

    def receive(self, ev: events_pb2.Event) -> None:
        with self.db.unit_of_work() as uow:
            if ev.event_type == "billing.invoice_paid":
                handlers.invoice_paid(uow, ev)
            else:
                handlers.record_event(uow, ev)

    def mail(self, kind: Kind) -> list:
        return sorted(
            (n for n in self.db.notifications.rows.values() if n.kind == kind.value),
            key=lambda n: n.create_time,
        )


def _open(amount_due: str = "1762.50", overdue: bool = False) -> InvoiceState:
    return InvoiceState(
        "inv_1",
        "INV-2024-000042",
        "OPEN",
        Decimal("1762.50"),
        Decimal(amount_due),
        "USD",
        date(2024, 7, 10),
        payment_method="INVOICE",
        overdue=overdue,
    )


def _issued() -> events_pb2.Event:
    ev = invoice_event("acct-1", BUYER.email, "inv_1", payer_emails=[PAYER.email])
    ev.invoice_issued.invoice.time_zone = "Europe/Oslo"
    return ev


def test_an_open_invoice_is_recalled_at_each_instant_dated_by_it_and_answers_the_next() -> None:
    w = World()
    w.peers.payer_lists["acct-1"] = [PAYER]
    w.peers.invoices["inv_1"] = _open(amount_due="1000.00")
    w.receive(_issued())
    assert handlers.settle(w.db, w.mailing) == (oslo(2024, 7, 3), 0)  # issued mail made; reminder waits
    assert len(w.mail(Kind.INVOICE_ISSUED)) == 2 and w.mail(Kind.INVOICE_REMINDER) == []
    w.db.clock.set(oslo(2024, 7, 5))  # past the instant: made, dated by the reminder's instant
    assert handlers.settle(w.db, w.mailing) == (oslo(2024, 7, 10), 0)
    made = w.mail(Kind.INVOICE_REMINDER)
    assert {n.recipient_email for n in made} == {BUYER.email, PAYER.email}
    assert {n.create_time for n in made} == {oslo(2024, 7, 3)}
    nb = next(n for n in made if n.recipient_email == BUYER.email)
    assert "forfaller om 7 dager, 10. juli 2024" in nb.text_body
    assert "Å betale: 1 000,00 USD" in spaces(nb.text_body)  # what is still owed, not the total
    # on the due date billing holds it overdue: its overdue mail tells, no reminder
    w.peers.invoices["inv_1"] = _open(overdue=True)
    w.db.clock.set(oslo(2024, 7, 10))
    assert handlers.settle(w.db, w.mailing) == (None, 0)
    assert len(w.mail(Kind.INVOICE_REMINDER)) == 2


def test_a_paid_invoices_reminders_are_dropped_and_its_mail_says_paid_how_and_when() -> None:
    w = World()
    w.peers.invoices["inv_1"] = replace(
        _open(), status="PAID", amount_due=Decimal(0), paid_date=date(2024, 6, 10), payment_method="CARD"
    )
    issued = _issued()
    w.receive(issued)
    paid = envelope(
        "billing.invoice_paid",
        "acct-1",
        invoice_paid=events_pb2.InvoicePaid(invoice=issued.invoice_issued.invoice),
    )
    w.receive(paid)
    assert handlers.settle(w.db, w.mailing) == (None, 0)  # nothing left to come
    w.db.clock.set(oslo(2024, 7, 11))
    handlers.settle(w.db, w.mailing)
    assert w.mail(Kind.INVOICE_REMINDER) == []
    nb = next(n for n in w.mail(Kind.INVOICE_ISSUED) if n.recipient_email == BUYER.email)
    text = spaces(nb.text_body)
    assert "Betalt: 1 762,50 USD den 10. juni 2024 med kort" in text
    assert (
        "Å betale" not in text and "Forfallsdato" not in text and "betalt med kort eller PayPal" not in text
    )
    assert nb.subject.endswith(": betalt")


def test_a_reminder_of_an_invoice_paid_between_events_sends_nothing() -> None:
    w = World()
    w.peers.invoices["inv_1"] = _open()
    w.receive(_issued())
    w.peers.invoices["inv_1"] = replace(_open(), status="PAID")  # paid, its event not yet here
    w.db.clock.set(oslo(2024, 7, 4))
    handlers.settle(w.db, w.mailing)
    assert w.mail(Kind.INVOICE_REMINDER) == []


def _expired(reason: str) -> events_pb2.Event:
    snap = snapshot("acct-1", BUYER.email, "sv")
    snap.term = 3  # THREE_YEAR: the term ends 2027, long after the invoice fell due
    snap.expiry_date.year = 2027
    snap.expiry_date.month = 9
    snap.expiry_date.day = 30
    return envelope(
        "subscription.stage_changed",
        "acct-1",
        stage_changed=events_pb2.StageChanged(subscription=snap, from_stage=2, to_stage=3, reason=reason),
    )


def test_an_expiry_an_unpaid_invoice_caused_names_the_invoice_its_due_date_and_pay_the_invoice() -> None:
    w = World()
    w.peers.teams["acct-1"] = [Person(BUYER.email, "Kari", "sv", frozenset({Role.BUYER}))]
    w.peers.unpaid[("acct-1", "sub_1")] = replace(
        _open(), invoice_number="INV-2025-000777", due_date=date(2025, 10, 1), amount_due=Decimal("6345.00")
    )
    w.receive(_expired("invoice_overdue"))
    handlers.settle(w.db, w.mailing)
    (mail,) = w.mail(Kind.SUBSCRIPTION_EXPIRED)
    text = spaces(mail.text_body)
    assert "INV-2025-000777" in mail.subject and "INV-2025-000777" in text
    assert "1 oktober 2025" in text and "Betala fakturan" in text
    assert "30 september 2027" not in text and "Förnya nu" not in text


def test_a_terms_expiry_names_the_expiry_date_and_renew() -> None:
    w = World()
    w.peers.teams["acct-1"] = [Person(BUYER.email, "Kari", "sv", frozenset({Role.BUYER}))]
    w.receive(_expired("term_ended"))
    handlers.settle(w.db, w.mailing)
    (mail,) = w.mail(Kind.SUBSCRIPTION_EXPIRED)
    assert "gick ut den 30 september 2027" in mail.text_body and "Förnya nu" in mail.text_body
    assert "faktura" not in mail.text_body.lower()
    assert "unpaid_invoice" not in w.peers.calls  # a term's end asks billing nothing


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_paid_and_open_invoice_mail_and_both_expiries_differ_in_every_language(language) -> None:
    open_ = sample_facts(Kind.INVOICE_ISSUED)
    paid = replace(open_, paid=True, amount_due=None, paid_date=date(2025, 6, 10), payment_method="CARD")
    a = RENDERER.render(Kind.INVOICE_ISSUED, language, open_)
    b = RENDERER.render(Kind.INVOICE_ISSUED, language, paid)
    assert a.subject != b.subject and a.text != b.text
    due = {"en": "July 10, 2025", "nb": "10. juli 2025", "fr": "10 juillet 2025", "sv": "10 juli 2025"}[
        language
    ]
    assert due in a.text and due not in b.text  # a paid invoice names no due date
    term = sample_facts(Kind.SUBSCRIPTION_EXPIRED)
    unpaid = with_invoice(term, _open())
    x = RENDERER.render(Kind.SUBSCRIPTION_EXPIRED, language, term)
    y = RENDERER.render(Kind.SUBSCRIPTION_EXPIRED, language, unpaid)
    assert "INV-2024-000042" in y.text and "INV-2024-000042" not in x.text
    for kind, facts in (
        (
            Kind.ORDER_CONFIRMATION,
            replace(sample_facts(Kind.ORDER_CONFIRMATION), order_kind="trial_converted"),
        ),
        (Kind.ORDER_CONFIRMATION, replace(sample_facts(Kind.ORDER_CONFIRMATION), order_kind="aligned")),
        (Kind.PRODUCT_ACCESS, replace(sample_facts(Kind.PRODUCT_ACCESS), seats_added=3, seats=8)),
        (Kind.INVOICE_REMINDER, replace(sample_facts(Kind.INVOICE_REMINDER), days_before=0)),
    ):
        out = RENDERER.render(kind, language, facts)
        for part in (out.subject, out.text, out.html):
            for leftover in ("{{", "}}", "{%", "%}", "None", "Undefined"):
                assert leftover not in part
        if kind is Kind.ORDER_CONFIRMATION:
            assert "ORD-2024-000123" in out.subject and "ORD-2024-000123" in out.text
        if kind is Kind.PRODUCT_ACCESS:
            assert "3" in out.text and "8" in out.text
    variants = {
        RENDERER.render(
            Kind.ORDER_CONFIRMATION, language, replace(sample_facts(Kind.ORDER_CONFIRMATION), order_kind=k)
        ).text
        for k in ("", "trial_converted", "aligned")
    }
    assert len(variants) == 3


@pytest.mark.parametrize("kind", list(Kind))
def test_no_internal_id_reaches_a_customer(kind: Kind) -> None:
    facts = replace(sample_facts(kind), account_id="acct-INTERNAL-1", subscription_id="sub-INTERNAL-2")
    for language in SUPPORTED_LANGUAGES:
        out = RENDERER.render(kind, language, facts)
        for part in (out.subject, out.text, out.html):
            assert "INTERNAL" not in part, (kind, language)


def test_reply_to_comes_from_settings_and_is_left_out_when_empty() -> None:
    mail = Outgoing(
        "<m@t>", "kari@example.com", "Kari", "s", "t", "<p>h</p>", "nb", datetime(2025, 1, 1, tzinfo=UTC)
    )
    msg = build_message(mail, "Tenure <no-reply@t.test>", "Support <support@t.test>")
    assert msg["Reply-To"] == "Support <support@t.test>" and msg["From"] == "Tenure <no-reply@t.test>"
    assert build_message(mail, "Tenure <no-reply@t.test>")["Reply-To"] is None
    from shared.settings import NotificationSettings

    assert "no-reply" not in NotificationSettings().mail_reply_to


def test_settling_out_of_time_counts_the_events_left_and_the_next_call_plans_them() -> None:
    """DrainOutbox answers within its time: the events it had no time to plan are counted (as pending,
    so AdvanceClock asks again) and the next call plans them."""
    w = World()
    w.peers.payer_lists["acct-1"] = [PAYER]
    for i in range(3):
        ev = invoice_event("acct-1", BUYER.email, f"inv_{i}", payer_emails=[PAYER.email])
        ev.invoice_issued.invoice.time_zone = "Europe/Oslo"
        w.peers.invoices[f"inv_{i}"] = _open(amount_due="1000.00")
        w.receive(ev)
    next_due, left = handlers.settle(w.db, w.mailing, timeout=0)  # past its deadline before the first
    assert left == 3 and w.mail(Kind.INVOICE_ISSUED) == []
    next_due, left = handlers.settle(w.db, w.mailing)
    assert left == 0 and len(w.mail(Kind.INVOICE_ISSUED)) == 6  # the buyer and the payer, three times
