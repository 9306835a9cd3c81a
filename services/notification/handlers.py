"""Use cases of the notification service.

An event goes through three steps, each one safe to repeat:

1. `record_event` (inside the inbox transaction of the event sink): the event is stored once.
2. `plan_due_events`: recipients are looked up (entitlement, billing), the routing table decides who
   gets which e-mail, each e-mail is rendered and stored as a PENDING notification. The unique
   (event, recipient, kind) key means planning twice, or on two replicas at once, adds nothing.
   A peer that is down leaves the event pending; it is planned again with back-off.
3. `deliver_due`: each pending notification is claimed with a lease, sent (SMTP or an .eml file)
   and marked SENT; a failed attempt is retried with back-off until the retry window closes.
   Each attempt of one notification carries the same Message-ID.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from services.notification.adapters.mailer import Outgoing, OutgoingAttachment, SendFailed, message_id_for
from services.notification.adapters.peers import Pdf, Peers
from services.notification.adapters.quote_pdf import quote_pdf
from services.notification.adapters.repository import NotificationUnitOfWork
from services.notification.adapters.tables import AttachmentRow, EventRow, NotificationRow
from services.notification.codec import to_facts, zone_of
from services.notification.domain import reminders
from services.notification.domain.delivery import RetryPolicy, after_failure
from services.notification.domain.model import (
    INVOICE_KINDS,
    INVOICE_STATE_KINDS,
    Kind,
    Planned,
    Status,
    with_invoice,
)
from services.notification.domain.routing import (
    ROUTED_EVENT_TYPES,
    Audience,
    build_directory,
    plan,
    routes_for,
)
from services.notification.domain.samples import apply_fields, sample_facts
from services.notification.domain.visibility import EVERYTHING, NOBODY, Reader, person_reader
from services.notification.rendering import Rendered, Renderer
from shared import paging
from shared.auth.principal import Access
from shared.db import Database, new_id
from shared.errors import InvalidInput, NotFound, PeerUnavailable
from shared.grpc.codec import timestamp
from shared.telemetry.metrics import record_emails
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2

log = logging.getLogger("tenure.notification")

PDF = "application/pdf"

#: Kinds whose e-mail carries a PDF: the invoice's, or the quote issued to its buyer.
ATTACHMENT_KINDS = INVOICE_KINDS | {Kind.QUOTE_ISSUED}

#: When payers are reminded of an open invoice (rules §8): 7 days before its due date and on it.
REMINDERS = reminders.ReminderPolicy()

#: Stage-change reasons that mean an unpaid invoice ended the term early or stopped its renewal.
UNPAID_INVOICE_REASONS = frozenset({"invoice_overdue", "payment_failed"})


@dataclass
class Mailing:
    """What planning and delivery work with besides the database: templates, the other services,
    the mail server, and the retry rules."""

    renderer: Renderer
    peers: Peers
    mailer: object  # SmtpMailer or FileMailer
    sender: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    planning_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            first_delay=timedelta(seconds=5),
            max_delay=timedelta(minutes=5),
            give_up_after=timedelta(days=365),
        )
    )
    lease: timedelta = timedelta(minutes=2)
    portal_url: str = ""


# ---------------------------------------------------------------------------------------------
# 1. Events in


def record_event(uow: NotificationUnitOfWork, ev: events_pb2.Event) -> None:
    """Event-sink handler: keep an event that tells someone something (runs once per event id); an
    issued invoice also schedules its reminders."""
    if ev.event_type == "billing.invoice_issued":
        _schedule_reminders(uow, ev)
    elif ev.event_type == "subscription.quote_accepted":
        p = ev.quote_accepted
        _schedule_opportunity(uow, ev, p.partner_contact, p.subscription)
    elif ev.event_type == "subscription.renewed":
        _reschedule_opportunity(uow, ev)
    elif (
        ev.event_type == "subscription.stage_changed"
        and ev.stage_changed.to_stage == common_pb2.STAGE_CANCELLED
    ):
        snap = ev.stage_changed.subscription
        if snap.renewal_date.year:
            renews = date(snap.renewal_date.year, snap.renewal_date.month, snap.renewal_date.day)
            uow.events.cancel([reminders.opportunity_event_id(snap.subscription_id, renews)])
    if not routes_for(to_facts(ev)):
        return
    _wait(uow, ev, uow.now)


def _wait(uow: NotificationUnitOfWork, ev: events_pb2.Event, due: datetime) -> None:
    """Keep `ev` to be planned into mail at `due`: a delivered event at once, a reminder of our own when
    it is due."""
    uow.events.add(
        EventRow(
            event_id=ev.event_id,
            event_type=ev.event_type,
            account_id=ev.account_id,
            subscription_id=ev.subscription_id,
            payload=ev.SerializeToString(),
            status="PENDING",
            received_time=uow.now,
            next_attempt_time=due,
        )
    )


def _schedule_reminders(uow: NotificationUnitOfWork, ev: events_pb2.Event) -> None:
    """The invoice's reminders wait as events of their own, due when the reminder is (rules §8)."""
    inv = ev.invoice_issued.invoice
    if not inv.invoice_id or not inv.due_date.year:
        return
    issued_at = ev.occurred_time.ToDatetime(tzinfo=UTC) if ev.HasField("occurred_time") else uow.now
    due = date(inv.due_date.year, inv.due_date.month, inv.due_date.day)
    for r in reminders.schedule(REMINDERS, inv.invoice_id, due, zone_of(inv.time_zone), issued_at):
        if uow.events.has(r.event_id):
            continue
        reminder = events_pb2.Event(
            event_id=r.event_id,
            event_type=reminders.INVOICE_REMINDER_EVENT,
            occurred_time=timestamp(r.due_time),
            source="notification",
            account_id=ev.account_id,
            subscription_id=ev.subscription_id,
            invoice_issued=ev.invoice_issued,
        )
        _wait(uow, reminder, r.due_time)


_PARTNER_CHANNELS = (common_pb2.CHANNEL_PARTNER_QUOTE, common_pb2.CHANNEL_RESELLER)


def _schedule_opportunity(
    uow: NotificationUnitOfWork,
    ev: events_pb2.Event,
    contact: events_pb2.PartnerContact,
    snap: events_pb2.SubscriptionSnapshot,
) -> None:
    """The partner that sold a subscription is told 90 days before its renewal date (rules §9); the
    reminder waits as an event of its own, due then."""
    if not contact.email or not snap.subscription_id or not snap.renewal_date.year:
        return
    renews = date(snap.renewal_date.year, snap.renewal_date.month, snap.renewal_date.day)
    happened = ev.occurred_time.ToDatetime(tzinfo=UTC) if ev.HasField("occurred_time") else uow.now
    r = reminders.schedule_opportunity(snap.subscription_id, renews, zone_of(snap.time_zone), happened)
    if r is None or uow.events.has(r.event_id):
        return
    reminder = events_pb2.Event(
        event_id=r.event_id,
        event_type=reminders.RENEWAL_OPPORTUNITY_EVENT,
        occurred_time=timestamp(r.due_time),
        source="notification",
        account_id=ev.account_id or snap.account_id,
        subscription_id=snap.subscription_id,
        renewal_opportunity=events_pb2.RenewalOpportunity(
            partner_contact=contact,
            subscription=snap,
            days_before=reminders.OPPORTUNITY_DAYS_BEFORE,
        ),
    )
    _wait(uow, reminder, r.due_time)


def _reschedule_opportunity(uow: NotificationUnitOfWork, ev: events_pb2.Event) -> None:
    """A partner-sold subscription renewed (automatically or by the partner's quote): its partner is told
    again 90 days before the next renewal date, at the contact of its last opportunity."""
    snap = ev.subscription_renewed.subscription
    if snap.channel not in _PARTNER_CHANNELS:
        return
    last = uow.events.latest(reminders.RENEWAL_OPPORTUNITY_EVENT, snap.subscription_id)
    if last is None:
        return
    contact = events_pb2.Event.FromString(last.payload).renewal_opportunity.partner_contact
    _schedule_opportunity(uow, ev, contact, snap)


def invoice_paid(uow: NotificationUnitOfWork, ev: events_pb2.Event) -> None:
    """Event-sink handler of `billing.invoice_paid`: the invoice's reminders still to come are dropped."""
    invoice_id = ev.invoice_paid.invoice.invoice_id
    if invoice_id:
        uow.events.cancel([reminders.reminder_event_id(invoice_id, d) for d in REMINDERS.days_before_due])


def role_changed(uow: NotificationUnitOfWork, ev: events_pb2.Event) -> None:
    """Event-sink handler of `entitlement.role_changed`: the team projection learns it (the
    permission table reads it), and the event is kept when it tells someone something."""
    uow.members.apply_role_changed(ev.role_changed)
    if ev.event_type in ROUTED_EVENT_TYPES:
        record_event(uow, ev)


# ---------------------------------------------------------------------------------------------
# 2. Planning


def settle(db: Database, mailing: Mailing, timeout: float = 20.0) -> tuple[datetime | None, int]:
    """Plan every event due by the clock within `timeout` seconds, waiting for those another planner
    holds; answer when the next scheduled one comes due, and how many due events nobody holds were left
    unplanned for want of time (ClockService.DrainOutbox on the test clock: AdvanceClock asks again until
    none is left, so it returns only when the mail of every event delivered so far is made)."""
    deadline = time.monotonic() + timeout
    while True:
        plan_due_events(db, mailing, limit=500, deadline=deadline)
        now = db.clock.now()
        with db.reading() as uow:
            waiting = uow.events.waiting(now)
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    now = db.clock.now()
    with db.reading() as uow:
        return uow.events.next_due_after(now), uow.events.unclaimed(now)


def plan_due_events(db: Database, mailing: Mailing, limit: int = 50, deadline: float | None = None) -> int:
    """Plan the events that are due (stopping between two events once `deadline`, a time.monotonic()
    instant, has passed); returns the number of notifications created."""
    now = db.clock.now()
    with db.reading() as uow:
        ids = uow.events.due(now, limit)
    created = 0
    for event_row_id in ids:
        if deadline is not None and time.monotonic() > deadline:
            break
        with db.unit_of_work() as uow:
            row = uow.events.claim(event_row_id, now, now + mailing.lease)
            payload = row.payload if row else None
        if payload is None:
            continue
        created += _plan_event(db, mailing, event_row_id, events_pb2.Event.FromString(payload))
    return created


def _plan_event(db: Database, mailing: Mailing, event_row_id: int, ev: events_pb2.Event) -> int:
    facts = to_facts(ev)
    if mailing.portal_url:
        facts = replace(facts, facts=replace(facts.facts, portal_url=mailing.portal_url))
    routes = routes_for(facts)
    audiences = {a for r in routes for a in r.audiences}
    kinds = {r.kind for r in routes}
    peers = mailing.peers
    try:
        if facts.invoice_id and kinds & INVOICE_STATE_KINDS:
            # what is true of the invoice now: paid (how, when) or open (amount due); a reminder of an
            # invoice paid, void or already overdue (the overdue e-mail tells then) is not sent
            invoice = peers.invoice(facts.invoice_id)
            if invoice is not None:
                facts = replace(facts, facts=with_invoice(facts.facts, invoice))
            if Kind.INVOICE_REMINDER in kinds and (invoice is None or not invoice.worth_a_reminder):
                return _store_planned(db, mailing, event_row_id, ev, [], None)
        if Kind.SUBSCRIPTION_EXPIRED in kinds and facts.reason in UNPAID_INVOICE_REASONS:
            # an expiry an unpaid invoice caused names that invoice and its due date
            unpaid = peers.unpaid_invoice(facts.account_id, facts.subscription_id)
            if unpaid is not None:
                facts = replace(facts, facts=with_invoice(facts.facts, unpaid))
        team = peers.team(facts.account_id) if audiences & {Audience.BUYER, Audience.ADMINS} else []
        payers = peers.payers(facts.account_id) if Audience.PAYERS in audiences else []
        directory = build_directory(team, payers, event_buyer=facts.buyer, payer_emails=facts.payer_emails)
        planned = plan(facts, directory)
        pdf: Pdf | None = None
        if facts.invoice_id and any(p.kind in INVOICE_KINDS for p in planned):
            pdf = peers.invoice_pdf(facts.invoice_id)
        elif ev.event_type == "subscription.quote_issued" and planned:
            # the quote as a PDF in the buyer's language (rules §9), made here from the event
            pdf = quote_pdf(ev.quote_issued, planned[0].language)
    except PeerUnavailable as e:
        _retry_event(db, mailing, event_row_id, str(e))
        return 0
    rendered = [(p, mailing.renderer.render(p.kind, p.language, p.facts)) for p in planned]
    # On the test clock a mail is made at the instant of its event (AdvanceClock moves the clock on
    # before a background pass would get to it); on the system clock, when it is made.
    made_at = facts.time if db.clock.is_test and facts.time is not None else None
    return _store_planned(db, mailing, event_row_id, ev, rendered, pdf, made_at)


def _retry_event(db: Database, mailing: Mailing, event_row_id: int, error: str) -> None:
    with db.unit_of_work() as uow:
        row = uow.events.get(event_row_id)
        if row is None or row.status != "PENDING":
            return
        row.attempts += 1
        row.next_attempt_time = uow.now + mailing.planning_retry.delay_after(row.attempts)
        row.lease_until = None
        row.last_error = error[:2000]
        uow.events.save(row)
    log.warning("event %s not planned yet (%s); retry later", event_row_id, error)


def _store_planned(
    db: Database,
    mailing: Mailing,
    event_row_id: int,
    ev: events_pb2.Event,
    rendered: list[tuple[Planned, Rendered]],
    pdf: Pdf | None,
    made_at: datetime | None = None,
) -> int:
    created = 0
    with db.unit_of_work() as uow:
        now = uow.now
        made = made_at or now
        existing = uow.notifications.existing_keys([p.dedupe_key for p, _ in rendered])
        for p, r in rendered:
            if p.dedupe_key in existing:
                continue
            nid = new_id("ntf")
            uow.notifications.add(
                NotificationRow(
                    notification_id=nid,
                    dedupe_key=p.dedupe_key,
                    event_id=ev.event_id,
                    event_type=ev.event_type,
                    account_id=p.facts.account_id or ev.account_id,
                    subscription_id=p.facts.subscription_id or ev.subscription_id,
                    kind=p.kind.value,
                    recipient_email=p.recipient.email,
                    recipient_name=p.recipient.name,
                    recipient_role=p.role.value,
                    language=r.language,
                    subject=r.subject,
                    text_body=r.text,
                    html_body=r.html,
                    message_id=message_id_for(nid, mailing.sender),
                    status=Status.PENDING.value,
                    create_time=made,
                    next_attempt_time=now,
                )
            )
            if pdf is not None and p.kind in ATTACHMENT_KINDS:
                uow.attachments.add_all(
                    [
                        AttachmentRow(
                            notification_id=nid, filename=pdf.filename, content_type=PDF, content=pdf.content
                        )
                    ]
                )
            created += 1
        row = uow.events.get(event_row_id)
        if row is not None:
            row.status = "PLANNED"
            row.lease_until = None
            row.last_error = ""
            uow.events.save(row)
    return created


# ---------------------------------------------------------------------------------------------
# 3. Delivery


@dataclass
class DeliveryCounts:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(db: Database, mailing: Mailing, limit: int = 100) -> DeliveryCounts:
    counts = DeliveryCounts()
    now = db.clock.now()
    with db.reading() as uow:
        ids = uow.notifications.due(now, limit)
    try:
        for nid in ids:
            outcome = _deliver_one(db, mailing, nid, now)
            if outcome is Status.SENT:
                counts.sent += 1
            elif outcome is Status.PENDING:
                counts.retrying += 1
            elif outcome is Status.FAILED:
                counts.failed += 1
    finally:
        close = getattr(mailing.mailer, "close", None)
        if ids and close is not None:
            close()  # one SMTP session served the whole pass
    record_emails(db, sent=counts.sent, retried=counts.retrying, failed=counts.failed)
    return counts


def _deliver_one(db: Database, mailing: Mailing, nid: str, now: datetime) -> Status | None:
    with db.unit_of_work() as uow:
        row = uow.notifications.claim(nid, now, now + mailing.lease)
        if row is None:
            return None
        if row.first_attempt_time is None:
            row.first_attempt_time = now
            uow.notifications.save(row)
        files = uow.attachments.of(nid)
        mail = Outgoing(
            message_id=row.message_id,
            to_email=row.recipient_email,
            to_name=row.recipient_name,
            subject=row.subject,
            text=row.text_body,
            html=row.html_body,
            language=row.language,
            date=row.create_time,
            attachments=tuple(OutgoingAttachment(f.filename, f.content_type, f.content) for f in files),
            headers=(("X-Tenure-Kind", row.kind), ("X-Tenure-Event-Id", row.event_id)),
        )
        attempts, first = row.attempts, row.first_attempt_time
    try:
        mailing.mailer.send(mail)  # type: ignore[attr-defined]
    except SendFailed as e:
        later = db.clock.now()
        outcome = after_failure(
            mailing.retry, attempts, later, first_attempt_time=first, permanent=e.permanent
        )
        with db.unit_of_work() as uow:
            uow.notifications.settle(
                nid,
                status=outcome.status.value,
                next_attempt_time=outcome.next_attempt_time,
                last_error=str(e)[:2000],
            )
        log.warning("notification %s attempt %s failed: %s", nid, attempts, e)
        return outcome.status
    with db.unit_of_work() as uow:
        uow.notifications.settle(
            nid, status=Status.SENT.value, sent_time=uow.now, next_attempt_time=None, last_error=""
        )
    return Status.SENT


def run_delivery(db: Database, mailing: Mailing, limit: int = 100) -> DeliveryCounts:
    """One pass: plan what is due, then send what is due."""
    plan_due_events(db, mailing, limit)
    return deliver_due(db, mailing, limit)


# ---------------------------------------------------------------------------------------------
# Queries and commands of the API


def reader_of(access: Access | None) -> Reader:
    """What the caller may read of the log: `access` is what the permission table granted for the call
    (its roles are on the account the request names); outside an RPC, nothing."""
    if access is None:
        return NOBODY
    if not access.principal.is_person:
        return EVERYTHING
    return person_reader(access.principal.email, access.account_id, access.roles)


def _not_found(notification_id: str) -> NotFound:
    """The same answer as for an id that does not exist (the permission table's words)."""
    return NotFound(f"notification {notification_id} not found", reason="NOTIFICATION_NOT_FOUND")


def _readable(row: NotificationRow | None, reader: Reader) -> bool:
    return row is not None and reader.sees(row.account_id, row.recipient_email, Kind(row.kind))


def _required_id(notification_id: str) -> None:
    if not notification_id:
        raise InvalidInput("notification_id is required", field="notification_id", reason="INVALID_ARGUMENT")


def get_notification(
    db: Database, notification_id: str, access: Access | None
) -> tuple[NotificationRow, list[AttachmentRow]]:
    """One e-mail with its bodies; mail the caller may not read does not exist for them."""
    _required_id(notification_id)
    with db.reading() as uow:
        row = uow.notifications.get(notification_id)
        if row is None or not _readable(row, reader_of(access)):
            raise _not_found(notification_id)
        return row, uow.attachments.of(notification_id)


@dataclass(frozen=True)
class ListFilter:
    account_id: str = ""
    recipient_email: str = ""
    kind: Kind | None = None
    status: Status | None = None
    event_id: str = ""


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[NotificationRow]
    attachments: dict[str, list[AttachmentRow]]
    next_page_token: str


def _after(page_token: str) -> tuple[datetime, str] | None:
    position = paging.decode_token(page_token, 2)
    if position is None:
        return None
    try:
        return datetime.fromisoformat(str(position[0])), str(position[1])
    except ValueError:
        raise InvalidInput("page_token is not a token from a previous response", field="page_token") from None


def list_notifications(
    db: Database, flt: ListFilter, page_size: int, page_token: str, access: Access | None
) -> NotificationPage:
    """The log, newest first, narrowed to what the caller may read: a person naming no account sees
    the mail sent to them; naming one, also that account's mail their roles there let them see."""
    size = paging.page_size(page_size)
    after = _after(page_token)
    with db.reading() as uow:
        rows = uow.notifications.page(
            reader_of(access),
            account_id=flt.account_id,
            recipient_email=flt.recipient_email,
            kind=flt.kind.value if flt.kind is not None else "",
            status=flt.status.value if flt.status is not None else "",
            event_id=flt.event_id,
            after=after,
            limit=size + 1,
        )
        more = len(rows) > size
        rows = rows[:size]
        files = uow.attachments.of_many([r.notification_id for r in rows])
    token = (
        paging.encode_token(rows[-1].create_time.isoformat(), rows[-1].notification_id)
        if more and rows
        else ""
    )
    return NotificationPage(rows, files, token)


def render_template(mailing: Mailing, kind: Kind, language: str, fields: dict[str, str]) -> Rendered:
    facts = apply_fields(sample_facts(kind), fields)
    if mailing.portal_url and "portal_url" not in fields:
        facts = replace(facts, portal_url=mailing.portal_url)
    return mailing.renderer.render(kind, language, facts)


def resend(
    uow: NotificationUnitOfWork,
    mailing: Mailing,
    notification_id: str,
    request_id: str,
    access: Access | None,
) -> tuple[NotificationRow, list[AttachmentRow]]:
    """A new pending notification with the same content, pointing to the original; whoever may read
    the original may have it sent again."""
    _required_id(notification_id)
    original = uow.notifications.get(notification_id)
    if original is None or not _readable(original, reader_of(access)):
        raise _not_found(notification_id)
    now = uow.now
    nid = new_id("ntf")
    resend_key = hashlib.sha256((request_id or uuid.uuid4().hex).encode()).hexdigest()[:24]
    copy = NotificationRow(
        notification_id=nid,
        dedupe_key=f"{original.dedupe_key}|resend:{resend_key}",
        event_id=original.event_id,
        event_type=original.event_type,
        account_id=original.account_id,
        subscription_id=original.subscription_id,
        kind=original.kind,
        recipient_email=original.recipient_email,
        recipient_name=original.recipient_name,
        recipient_role=original.recipient_role,
        language=original.language,
        subject=original.subject,
        text_body=original.text_body,
        html_body=original.html_body,
        message_id=message_id_for(nid, mailing.sender),
        status=Status.PENDING.value,
        resend_of_notification_id=original.notification_id,
        create_time=now,
        next_attempt_time=now,
    )
    uow.notifications.add(copy)
    files = [
        AttachmentRow(
            notification_id=nid, filename=a.filename, content_type=a.content_type, content=a.content
        )
        for a in uow.attachments.of(notification_id)
    ]
    uow.attachments.add_all(files)
    uow.flush()
    return copy, files
