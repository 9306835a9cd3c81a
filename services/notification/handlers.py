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

import base64
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, false, or_, update
from sqlmodel import select

from services.notification.adapters.events import to_facts
from services.notification.adapters.mailer import Outgoing, OutgoingAttachment, SendFailed, message_id_for
from services.notification.adapters.peers import Pdf, Peers
from services.notification.adapters.tables import AttachmentRow, EventRow, NotificationRow
from services.notification.domain.delivery import RetryPolicy, after_failure
from services.notification.domain.model import INVOICE_KINDS, Kind, Planned, Status, normalize_email
from services.notification.domain.routing import Audience, build_directory, plan, routes_for
from services.notification.domain.samples import apply_fields, sample_facts
from services.notification.domain.visibility import ALL_KINDS, EVERYTHING, NOBODY, Reader, person_reader
from services.notification.rendering import Rendered, Renderer
from shared.auth.principal import Access
from shared.clock import Clock
from shared.db import Database, UnitOfWork, new_id
from shared.errors import InvalidInput, NotFound, PeerUnavailable
from tenure.events.v1 import events_pb2

log = logging.getLogger("tenure.notification")

PDF = "application/pdf"


@dataclass
class Deps:
    db: Database
    clock: Clock
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


def record_event(uow: UnitOfWork, ev: events_pb2.Event) -> None:
    """Event-sink handler: keep an event that tells someone something (runs once per event id)."""
    if not routes_for(to_facts(ev)):
        return
    now = uow.now
    uow.session.add(
        EventRow(
            event_id=ev.event_id,
            event_type=ev.event_type,
            account_id=ev.account_id,
            subscription_id=ev.subscription_id,
            payload=ev.SerializeToString(),
            status="PENDING",
            received_time=now,
            next_attempt_time=now,
        )
    )


# ---------------------------------------------------------------------------------------------
# 2. Planning


def _lease_free(col_lease, now: datetime):
    return or_(col_lease.is_(None), col_lease < now)


def plan_due_events(deps: Deps, limit: int = 50) -> int:
    """Plan the events that are due; returns the number of notifications created."""
    now = deps.clock.now()
    with deps.db.read() as s:
        ids = s.exec(
            select(EventRow.id)
            .where(EventRow.status == "PENDING", EventRow.next_attempt_time <= now)
            .where(_lease_free(EventRow.lease_until, now))
            .order_by(EventRow.id)
            .limit(limit)
        ).all()
    created = 0
    for event_row_id in ids:
        with deps.db.unit_of_work() as uow:
            claimed = uow.session.execute(
                update(EventRow)
                .where(EventRow.id == event_row_id, EventRow.status == "PENDING")
                .where(_lease_free(EventRow.lease_until, now))
                .values(lease_until=now + deps.lease)
            ).rowcount
            row = uow.session.get(EventRow, event_row_id) if claimed else None
            payload = row.payload if row else None
        if payload is None:
            continue
        created += _plan_event(deps, event_row_id, events_pb2.Event.FromString(payload))
    return created


def _plan_event(deps: Deps, event_row_id: int, ev: events_pb2.Event) -> int:
    facts = to_facts(ev)
    if deps.portal_url:
        facts = replace(facts, facts=replace(facts.facts, portal_url=deps.portal_url))
    audiences = {a for r in routes_for(facts) for a in r.audiences}
    try:
        team = deps.peers.team(facts.account_id) if audiences & {Audience.BUYER, Audience.ADMINS} else []
        payers = deps.peers.payers(facts.account_id) if Audience.PAYERS in audiences else []
        directory = build_directory(team, payers, event_buyer=facts.buyer, payer_emails=facts.payer_emails)
        planned = plan(facts, directory)
        pdf: Pdf | None = None
        if facts.invoice_id and any(p.kind in INVOICE_KINDS for p in planned):
            pdf = deps.peers.invoice_pdf(facts.invoice_id)
    except PeerUnavailable as e:
        _retry_event(deps, event_row_id, str(e))
        return 0
    rendered = [(p, deps.renderer.render(p.kind, p.language, p.facts)) for p in planned]
    return _store_planned(deps, event_row_id, ev, rendered, pdf)


def _retry_event(deps: Deps, event_row_id: int, error: str) -> None:
    now = deps.clock.now()
    with deps.db.unit_of_work() as uow:
        row = uow.session.get(EventRow, event_row_id)
        if row is None or row.status != "PENDING":
            return
        row.attempts += 1
        row.next_attempt_time = now + deps.planning_retry.delay_after(row.attempts)
        row.lease_until = None
        row.last_error = error[:2000]
        uow.session.add(row)
    log.warning("event %s not planned yet (%s); retry later", event_row_id, error)


def _store_planned(
    deps: Deps,
    event_row_id: int,
    ev: events_pb2.Event,
    rendered: list[tuple[Planned, Rendered]],
    pdf: Pdf | None,
) -> int:
    created = 0
    with deps.db.unit_of_work() as uow:
        now = uow.now
        keys = [p.dedupe_key for p, _ in rendered]
        existing = (
            set(
                uow.session.exec(
                    select(NotificationRow.dedupe_key).where(NotificationRow.dedupe_key.in_(keys))
                ).all()
            )
            if keys
            else set()
        )
        for p, r in rendered:
            if p.dedupe_key in existing:
                continue
            nid = new_id("ntf")
            uow.session.add(
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
                    message_id=message_id_for(nid, deps.sender),
                    status=Status.PENDING.value,
                    create_time=now,
                    next_attempt_time=now,
                )
            )
            if pdf is not None and p.kind in INVOICE_KINDS:
                uow.session.add(
                    AttachmentRow(
                        notification_id=nid, filename=pdf.filename, content_type=PDF, content=pdf.content
                    )
                )
            created += 1
        row = uow.session.get(EventRow, event_row_id)
        if row is not None:
            row.status = "PLANNED"
            row.lease_until = None
            row.last_error = ""
            uow.session.add(row)
    return created


# ---------------------------------------------------------------------------------------------
# 3. Delivery


@dataclass
class DeliveryCounts:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(deps: Deps, limit: int = 100) -> DeliveryCounts:
    counts = DeliveryCounts()
    now = deps.clock.now()
    with deps.db.read() as s:
        ids = s.exec(
            select(NotificationRow.notification_id)
            .where(NotificationRow.status == Status.PENDING.value, NotificationRow.next_attempt_time <= now)
            .where(_lease_free(NotificationRow.lease_until, now))
            .order_by(NotificationRow.create_time, NotificationRow.notification_id)
            .limit(limit)
        ).all()
    for nid in ids:
        outcome = _deliver_one(deps, nid, now)
        if outcome is Status.SENT:
            counts.sent += 1
        elif outcome is Status.PENDING:
            counts.retrying += 1
        elif outcome is Status.FAILED:
            counts.failed += 1
    return counts


def _deliver_one(deps: Deps, nid: str, now: datetime) -> Status | None:
    with deps.db.unit_of_work() as uow:
        claimed = uow.session.execute(
            update(NotificationRow)
            .where(NotificationRow.notification_id == nid, NotificationRow.status == Status.PENDING.value)
            .where(_lease_free(NotificationRow.lease_until, now))
            .values(lease_until=now + deps.lease, attempts=NotificationRow.attempts + 1)
        ).rowcount
        if not claimed:
            return None
        row = uow.session.get(NotificationRow, nid)
        if row.first_attempt_time is None:
            row.first_attempt_time = now
            uow.session.add(row)
        files = uow.session.exec(select(AttachmentRow).where(AttachmentRow.notification_id == nid)).all()
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
        deps.mailer.send(mail)
    except SendFailed as e:
        later = deps.clock.now()
        outcome = after_failure(deps.retry, attempts, later, first_attempt_time=first, permanent=e.permanent)
        with deps.db.unit_of_work() as uow:
            uow.session.execute(
                update(NotificationRow)
                .where(NotificationRow.notification_id == nid)
                .values(
                    status=outcome.status.value,
                    next_attempt_time=outcome.next_attempt_time,
                    lease_until=None,
                    last_error=str(e)[:2000],
                )
            )
        log.warning("notification %s attempt %s failed: %s", nid, attempts, e)
        return outcome.status
    with deps.db.unit_of_work() as uow:
        uow.session.execute(
            update(NotificationRow)
            .where(NotificationRow.notification_id == nid)
            .values(
                status=Status.SENT.value,
                sent_time=deps.clock.now(),
                next_attempt_time=None,
                lease_until=None,
                last_error="",
            )
        )
    return Status.SENT


def run_delivery(deps: Deps, limit: int = 100) -> DeliveryCounts:
    """One pass: plan what is due, then send what is due."""
    plan_due_events(deps, limit)
    return deliver_due(deps, limit)


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


def _visible_to(reader: Reader):
    """The WHERE clause of the mail `reader` may see (None: everything)."""
    if reader.everything:
        return None
    seen = []
    if reader.email:
        seen.append(NotificationRow.recipient_email == reader.email)
    if reader.account_id and reader.kinds:
        account = NotificationRow.account_id == reader.account_id
        if reader.kinds != ALL_KINDS:
            account = and_(account, NotificationRow.kind.in_(sorted(k.value for k in reader.kinds)))
        seen.append(account)
    return or_(*seen) if seen else false()


def get_notification(
    deps: Deps, notification_id: str, access: Access | None
) -> tuple[NotificationRow, list[AttachmentRow]]:
    """One e-mail with its bodies; mail the caller may not read does not exist for them."""
    if not notification_id:
        raise InvalidInput("notification_id is required", field="notification_id", reason="INVALID_ARGUMENT")
    with deps.db.read() as s:
        row = s.get(NotificationRow, notification_id)
        if not _readable(row, reader_of(access)):
            raise _not_found(notification_id)
        files = s.exec(select(AttachmentRow).where(AttachmentRow.notification_id == notification_id)).all()
        return row, list(files)


def attachments_of(deps: Deps, ids: list[str]) -> dict[str, list[AttachmentRow]]:
    if not ids:
        return {}
    out: dict[str, list[AttachmentRow]] = {i: [] for i in ids}
    with deps.db.read() as s:
        for a in s.exec(select(AttachmentRow).where(AttachmentRow.notification_id.in_(ids))).all():
            out[a.notification_id].append(a)
    return out


@dataclass(frozen=True)
class ListFilter:
    account_id: str = ""
    recipient_email: str = ""
    kind: Kind | None = None
    status: Status | None = None
    event_id: str = ""


def _encode_token(row: NotificationRow) -> str:
    raw = json.dumps({"t": row.create_time.isoformat(), "id": row.notification_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return datetime.fromisoformat(data["t"]), str(data["id"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(
            "page_token is not one this service issued", field="page_token", reason="INVALID_PAGE_TOKEN"
        ) from None


def list_notifications(
    deps: Deps, flt: ListFilter, page_size: int, page_token: str, access: Access | None
) -> tuple[list[NotificationRow], str]:
    """The log, newest first, narrowed to what the caller may read: a person naming no account sees
    the mail sent to them; naming one, also that account's mail their roles there let them see."""
    if page_size < 0:
        raise InvalidInput("page_size must not be negative", field="page_size", reason="INVALID_ARGUMENT")
    size = min(page_size or 50, 500)
    stmt = select(NotificationRow)
    visible = _visible_to(reader_of(access))
    if visible is not None:
        stmt = stmt.where(visible)
    if flt.account_id:
        stmt = stmt.where(NotificationRow.account_id == flt.account_id)
    if flt.recipient_email:
        stmt = stmt.where(NotificationRow.recipient_email == normalize_email(flt.recipient_email))
    if flt.kind is not None:
        stmt = stmt.where(NotificationRow.kind == flt.kind.value)
    if flt.status is not None:
        stmt = stmt.where(NotificationRow.status == flt.status.value)
    if flt.event_id:
        stmt = stmt.where(NotificationRow.event_id == flt.event_id)
    if page_token:
        t, last_id = _decode_token(page_token)
        stmt = stmt.where(
            or_(
                NotificationRow.create_time < t,
                and_(NotificationRow.create_time == t, NotificationRow.notification_id < last_id),
            )
        )
    stmt = stmt.order_by(NotificationRow.create_time.desc(), NotificationRow.notification_id.desc()).limit(
        size + 1
    )
    with deps.db.read() as s:
        rows = list(s.exec(stmt).all())
    more = len(rows) > size
    rows = rows[:size]
    return rows, (_encode_token(rows[-1]) if more and rows else "")


def render_template(deps: Deps, kind: Kind, language: str, fields: dict[str, str]) -> Rendered:
    facts = apply_fields(sample_facts(kind), fields)
    if deps.portal_url and "portal_url" not in fields:
        facts = replace(facts, portal_url=deps.portal_url)
    return deps.renderer.render(kind, language, facts)


def resend(
    uow: UnitOfWork, deps: Deps, notification_id: str, request_id: str, access: Access | None
) -> tuple[NotificationRow, list[AttachmentRow]]:
    """A new pending notification with the same content, pointing to the original; whoever may read
    the original may have it sent again."""
    if not notification_id:
        raise InvalidInput("notification_id is required", field="notification_id", reason="INVALID_ARGUMENT")
    original = uow.session.get(NotificationRow, notification_id)
    if not _readable(original, reader_of(access)):
        raise _not_found(notification_id)
    now = uow.now
    nid = new_id("ntf")
    copy = NotificationRow(
        notification_id=nid,
        dedupe_key=f"{original.dedupe_key}|resend:{hashlib.sha256((request_id or uuid.uuid4().hex).encode()).hexdigest()[:24]}",
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
        message_id=message_id_for(nid, deps.sender),
        status=Status.PENDING.value,
        resend_of_notification_id=original.notification_id,
        create_time=now,
        next_attempt_time=now,
    )
    uow.session.add(copy)
    files = []
    for a in uow.session.exec(
        select(AttachmentRow).where(AttachmentRow.notification_id == notification_id)
    ).all():
        files.append(
            AttachmentRow(
                notification_id=nid, filename=a.filename, content_type=a.content_type, content=a.content
            )
        )
    uow.session.add_all(files)
    uow.session.flush()
    return copy, files
