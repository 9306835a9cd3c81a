"""The notification handlers on a fake unit of work (no server, no database): planning gives each
recipient each kind of e-mail once per event, delivery retries and gives up as the retry rules say,
and the log shows each caller only their part of it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.notification import handlers
from services.notification.adapters.mailer import SendFailed
from services.notification.domain.model import Kind, Person, Role, Status
from services.notification.rendering import Renderer
from shared.auth.principal import Access, Principal
from shared.auth.principal import Kind as PrincipalKind
from shared.errors import InvalidInput, NotFound
from tenure.events.v1 import events_pb2
from tests.service.notification.conftest import envelope, invoice_event, order_event, snapshot

from .fakes import FakeDatabase, FakeMailer, FakePeers

ACCOUNT, OTHER = "acct_a", "acct_b"
BUYER = "kari@example.com"  # buyer and secondary admin
ADMIN = "ola@example.com"  # primary admin
PAYER = "pia@example.com"
USER = "per@example.com"
STRANGER = "eve@example.com"

_RENDERER = Renderer()


class World:
    def __init__(self) -> None:
        self.db = FakeDatabase()
        self.peers = FakePeers()
        self.mailer = FakeMailer()
        self.mailing = handlers.Mailing(
            renderer=_RENDERER, peers=self.peers, mailer=self.mailer, sender="Tenure <no-reply@tenure.test>"
        )
        self.peers.teams[ACCOUNT] = [
            Person(BUYER, "Kari Nordmann", "nb", frozenset({Role.BUYER, Role.SECONDARY_ADMIN})),
            Person(ADMIN, "Ola Admin", "sv", frozenset({Role.PRIMARY_ADMIN})),
        ]

    def receive(self, ev: events_pb2.Event) -> None:
        with self.db.unit_of_work() as uow:
            handlers.record_event(uow, ev)

    def run(self) -> handlers.DeliveryCounts:
        return handlers.run_delivery(self.db, self.mailing)

    def log(self) -> list[tuple[str, str]]:
        return sorted((n.recipient_email, n.kind) for n in self.db.notifications.rows.values())


@pytest.fixture
def world() -> World:
    return World()


def person(email: str, account_id: str = "", *roles: str) -> Access:
    return Access(Principal(PrincipalKind.PERSON, email, email), account_id, frozenset(roles))


OPERATOR = Access(Principal(PrincipalKind.OPERATOR, "ops"))


def test_an_order_gives_each_recipient_each_kind_once_however_often_it_is_planned(world):
    ev = order_event(ACCOUNT, BUYER, "nb-NO", "ORD-2024-000777")
    world.receive(ev)
    assert handlers.plan_due_events(world.db, world.mailing) == 3
    expected = [(BUYER, "ORDER_CONFIRMATION"), (BUYER, "PRODUCT_ACCESS"), (ADMIN, "PRODUCT_ACCESS")]
    assert world.log() == expected
    # a second planner (or one restarted after storing) finds the event pending again: nothing new
    (event_row,) = world.db.events.rows.values()
    assert event_row.status == "PLANNED"
    event_row.status = "PENDING"
    assert handlers.plan_due_events(world.db, world.mailing) == 0
    assert world.log() == expected

    counts = world.run()
    assert (counts.sent, counts.retrying, counts.failed) == (3, 0, 0)
    assert world.run().sent == 0  # sent mail is not sent again
    (confirmation,) = [m for m in world.mailer.to(BUYER) if "ORD-2024-000777" in m.subject]
    assert confirmation.subject == "Ordrebekreftelse ORD-2024-000777: AutoCAD LT"
    assert confirmation.language == "nb"
    assert [m.subject for m in world.mailer.to(ADMIN)] == ["AutoCAD LT är redo att tilldelas användare"]
    assert all(
        n.status == Status.SENT.value and n.attempts == 1 for n in world.db.notifications.rows.values()
    )


def test_an_invoice_reaches_the_buyer_and_each_payer_once_with_the_pdf_and_no_admin(world):
    payers = [f"payer{i}@example.com" for i in range(1, 6)]
    world.peers.payer_lists[ACCOUNT] = [
        Person(p, f"Payer {i}", "en", frozenset({Role.PAYER})) for i, p in enumerate(payers)
    ]
    world.peers.pdfs["inv_42"] = b"%PDF-1.4 invoice %%EOF"
    # the buyer is also named among the invoice's payers: still one e-mail
    world.receive(invoice_event(ACCOUNT, BUYER, "inv_42", payer_emails=[*payers, BUYER]))
    assert world.run().sent == 6
    assert world.log() == sorted((e, "INVOICE_ISSUED") for e in [BUYER, *payers])
    for email in [BUYER, *payers]:
        (mail,) = world.mailer.to(email)
        assert [(a.filename, a.content) for a in mail.attachments] == [
            ("inv_42.pdf", b"%PDF-1.4 invoice %%EOF")
        ]
    assert world.mailer.to(ADMIN) == []


def test_a_peer_that_is_down_leaves_the_event_pending_and_it_is_planned_later(world):
    world.peers.down = True
    world.receive(order_event(ACCOUNT, BUYER, "en", "ORD-1"))
    assert handlers.plan_due_events(world.db, world.mailing) == 0
    (event_row,) = world.db.events.rows.values()
    assert (event_row.status, event_row.attempts, event_row.lease_until) == ("PENDING", 1, None)
    assert event_row.next_attempt_time > world.db.clock.now() and "down" in event_row.last_error
    world.peers.down = False
    assert handlers.plan_due_events(world.db, world.mailing) == 0  # not due yet
    world.db.clock.advance(timedelta(seconds=5))
    assert handlers.plan_due_events(world.db, world.mailing) == 3


def test_a_failed_attempt_is_retried_with_the_same_message_id_and_a_refusal_fails_at_once(world):
    world.receive(order_event(ACCOUNT, BUYER, "en", "ORD-2"))
    world.mailer.failures = [SendFailed("connection refused")] * 3
    counts = world.run()
    assert (counts.sent, counts.retrying) == (0, 3)
    pending = list(world.db.notifications.rows.values())
    assert all(
        n.status == Status.PENDING.value and n.attempts == 1 and n.lease_until is None for n in pending
    )
    assert world.run().sent == 0  # waiting for the back-off
    world.db.clock.advance(timedelta(minutes=5))
    assert world.run().sent == 3
    assert sorted(m.message_id for m in world.mailer.sent) == sorted(n.message_id for n in pending)

    other = World()
    other.receive(order_event(ACCOUNT, BUYER, "en", "ORD-3"))
    other.mailer.failures = [SendFailed("550 no such user", code=550, permanent=True)]
    counts = other.run()
    assert (counts.sent, counts.failed) == (2, 1)
    (failed,) = [n for n in other.db.notifications.rows.values() if n.status == Status.FAILED.value]
    assert failed.next_attempt_time is None and "550" in failed.last_error
    other.db.clock.advance(timedelta(days=1))
    assert other.run().sent == 0


@pytest.fixture
def log(world) -> World:
    """ACCOUNT's mail: the buyer's order confirmation, invoice and renewal reminder, the payer's
    invoice, both admins' product access; and a seat e-mail to a user that names no account."""
    world.peers.teams[ACCOUNT] = [
        Person(BUYER, "Kari", "en", frozenset({Role.BUYER, Role.PRIMARY_ADMIN})),
        Person(ADMIN, "Ola", "en", frozenset({Role.SECONDARY_ADMIN})),
    ]
    world.receive(order_event(ACCOUNT, BUYER, "en", "ORD-2024-000001"))
    world.receive(invoice_event(ACCOUNT, BUYER, "inv_1", payer_emails=[PAYER]))
    reminder = events_pb2.RenewalReminder(subscription=snapshot(ACCOUNT, BUYER), days_before=30)
    world.receive(envelope("subscription.renewal_reminder", ACCOUNT, renewal_reminder=reminder))
    seat = events_pb2.SeatAssigned(product_code="ACDLT", product_name="AutoCAD LT", user_email=USER)
    world.receive(envelope("entitlement.seat_assigned", "", seat_assigned=seat))
    assert world.run().sent == 7
    world.ids = {(n.recipient_email, n.kind): n.notification_id for n in world.db.notifications.rows.values()}
    assert len(world.ids) == 7
    return world


def seen(world: World, access: Access, **flt) -> set[tuple[str, str]]:
    page = handlers.list_notifications(world.db, handlers.ListFilter(**flt), 50, "", access)
    return {(n.recipient_email, n.kind) for n in page.notifications}


def test_each_person_lists_what_their_role_on_the_account_shows(log):
    account_mail = {key for key in log.ids if key[1] != "SEAT_ASSIGNED"}
    assert seen(log, person(BUYER, ACCOUNT, "BUYER", "PRIMARY_ADMIN"), account_id=ACCOUNT) == account_mail
    assert seen(log, person(ADMIN, ACCOUNT, "SECONDARY_ADMIN"), account_id=ACCOUNT) == {
        (BUYER, "PRODUCT_ACCESS"),
        (ADMIN, "PRODUCT_ACCESS"),
    }
    payer = person(PAYER, ACCOUNT, "PAYER")
    assert seen(log, payer, account_id=ACCOUNT) == {(PAYER, "INVOICE_ISSUED")}
    assert seen(log, payer, account_id=ACCOUNT, recipient_email=BUYER) == set()
    assert (
        seen(log, person(USER, ACCOUNT, "USER"), account_id=ACCOUNT) == set()
    )  # their seat mail names no account
    # naming no account, each person lists the mail sent to them, whatever their roles
    assert seen(log, person(BUYER)) == {key for key in account_mail if key[0] == BUYER}
    assert seen(log, person(ADMIN)) == {(ADMIN, "PRODUCT_ACCESS")}
    assert seen(log, person(USER)) == {(USER, "SEAT_ASSIGNED")}
    assert seen(log, person(STRANGER)) == set()
    assert len(seen(log, OPERATOR)) == 7
    assert seen(log, None) == set()  # outside an RPC: nothing


def test_get_and_resend_show_no_mail_that_is_not_the_callers_to_see(log):
    ids = log.ids
    reminder, payers_invoice = ids[(BUYER, "RENEWAL_REMINDER")], ids[(PAYER, "INVOICE_ISSUED")]
    buyers_invoice, buyers_access = ids[(BUYER, "INVOICE_ISSUED")], ids[(BUYER, "PRODUCT_ACCESS")]
    seat = ids[(USER, "SEAT_ASSIGNED")]
    payer, admin = person(PAYER, ACCOUNT, "PAYER"), person(ADMIN, ACCOUNT, "SECONDARY_ADMIN")

    def get(access: Access, nid: str):
        return handlers.get_notification(log.db, nid, access)

    def refused(access: Access, nid: str) -> str:
        with pytest.raises(NotFound) as err:
            get(access, nid)
        return str(err.value)

    row, files = get(payer, payers_invoice)
    assert "INV-2024-000042" in row.text_body and [f.filename for f in files] == []
    assert get(person(BUYER, ACCOUNT, "BUYER"), payers_invoice)[0].recipient_email == PAYER
    assert get(admin, buyers_access)[0].recipient_email == BUYER
    assert get(person(USER), seat)[0].kind == Kind.SEAT_ASSIGNED
    # refused exactly as an id that does not exist
    assert refused(payer, reminder) == f"notification {reminder} not found"
    assert refused(admin, buyers_invoice) == f"notification {buyers_invoice} not found"
    assert refused(person(STRANGER, ACCOUNT), buyers_access) == f"notification {buyers_access} not found"
    assert refused(person(BUYER, ACCOUNT, "BUYER"), seat) == f"notification {seat} not found"
    assert refused(payer, "ntf_missing") == "notification ntf_missing not found"
    with pytest.raises(InvalidInput):
        get(payer, "")

    with pytest.raises(NotFound), log.db.unit_of_work() as uow:
        handlers.resend(uow, log.mailing, reminder, "r1", payer)
    assert len(log.db.notifications.rows) == 7
    with log.db.unit_of_work() as uow:
        copy, _ = handlers.resend(uow, log.mailing, payers_invoice, "r2", payer)
    original = log.db.notifications.rows[payers_invoice]
    assert copy.resend_of_notification_id == payers_invoice and copy.subject == original.subject
    assert copy.status == Status.PENDING.value and copy.message_id != original.message_id
    assert seen(log, person(PAYER)) == {(PAYER, "INVOICE_ISSUED")}
    assert len(log.db.notifications.rows) == 8
    assert log.run().sent == 1


def test_the_log_pages_newest_first_and_refuses_a_token_it_did_not_give(log):
    log.db.clock.advance(timedelta(minutes=1))
    later = order_event(OTHER, STRANGER, "en", "ORD-9")
    later.occurred_time.FromDatetime(log.db.clock.now())  # a mail is dated by its event
    log.receive(later)
    log.peers.teams[OTHER] = [Person(STRANGER, "Eve", "en", frozenset({Role.BUYER}))]
    log.run()
    everything = handlers.list_notifications(log.db, handlers.ListFilter(), 0, "", OPERATOR).notifications
    assert len(everything) == 8 and everything[0].account_id == OTHER  # the newest: OTHER's order
    first = handlers.list_notifications(log.db, handlers.ListFilter(), 4, "", OPERATOR)
    rest = handlers.list_notifications(log.db, handlers.ListFilter(), 10, first.next_page_token, OPERATOR)
    assert len(first.notifications) == 4 and first.next_page_token and rest.next_page_token == ""
    assert [n.notification_id for n in first.notifications + rest.notifications] == [
        n.notification_id for n in everything
    ]
    for bad_size, bad_token in [(-1, ""), (0, "not-a-token")]:
        with pytest.raises(InvalidInput):
            handlers.list_notifications(log.db, handlers.ListFilter(), bad_size, bad_token, OPERATOR)


def test_role_changes_feed_the_team_projection(world):
    from tenure.common.v1 import common_pb2

    change = events_pb2.RoleChanged(
        account_id=ACCOUNT, email="New@Example.com", role=common_pb2.ROLE_PRIMARY_ADMIN, granted=True
    )
    with world.db.unit_of_work() as uow:
        handlers.role_changed(uow, envelope("entitlement.role_changed", ACCOUNT, role_changed=change))
    assert world.db.members.roles(ACCOUNT, "new@example.com") == {"PRIMARY_ADMIN"}
    change.granted = False
    with world.db.unit_of_work() as uow:
        handlers.role_changed(uow, envelope("entitlement.role_changed", ACCOUNT, role_changed=change))
    assert world.db.members.roles(ACCOUNT, "new@example.com") == frozenset()
