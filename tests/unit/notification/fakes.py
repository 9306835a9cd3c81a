"""In-memory stand-ins for the notification service's database and collaborators, so its handlers
run without a server or a database: `FakeDatabase` hands out a `FakeUnitOfWork` whose repositories
have the methods of services/notification/adapters/repository.py, and keeps what they store across
units of work. `FakePeers` answers for entitlement and billing, `FakeMailer` records what is sent.

A fake unit of work commits what it was given when it ends; a unit of work that raises keeps its
writes (the handlers here never rely on a rollback)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from services.notification.adapters.mailer import Outgoing, SendFailed
from services.notification.adapters.peers import Pdf
from services.notification.adapters.tables import AttachmentRow, EventRow, NotificationRow
from services.notification.domain.model import InvoiceState, Person, Status, normalize_email
from services.notification.domain.visibility import Reader
from shared.clock import TestClock
from shared.errors import PeerUnavailable


def _free(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is None or lease_until < now


class FakeEvents:
    def __init__(self) -> None:
        self.rows: dict[int, EventRow] = {}
        self._ids = itertools.count(1)

    def add(self, row: EventRow) -> None:
        assert all(r.event_id != row.event_id for r in self.rows.values()), "event_id is unique"
        row.id = next(self._ids)
        self.rows[row.id] = row

    def get(self, event_row_id: int) -> EventRow | None:
        return self.rows.get(event_row_id)

    def save(self, row: EventRow) -> None:
        assert row.id is not None
        self.rows[row.id] = row

    def due(self, now: datetime, limit: int) -> list[int]:
        due = [
            i
            for i, r in sorted(self.rows.items())
            if r.status == "PENDING" and r.next_attempt_time <= now and _free(r.lease_until, now)
        ]
        return due[:limit]

    def has(self, event_id: str) -> bool:
        return any(r.event_id == event_id for r in self.rows.values())

    def latest(self, event_type: str, subscription_id: str) -> EventRow | None:
        found = [
            r
            for _, r in sorted(self.rows.items())
            if subscription_id and r.event_type == event_type and r.subscription_id == subscription_id
        ]
        return found[-1] if found else None

    def cancel(self, event_ids: list[str]) -> int:
        dropped = 0
        for r in self.rows.values():
            if r.event_id in event_ids and r.status == "PENDING":
                r.status, r.lease_until = "CANCELLED", None
                dropped += 1
        return dropped

    def waiting(self, now: datetime) -> int:
        return sum(1 for r in self.rows.values() if r.status == "PENDING" and r.next_attempt_time <= now)

    def unclaimed(self, now: datetime) -> int:
        return len(self.due(now, len(self.rows)))

    def next_due_after(self, now: datetime) -> datetime | None:
        later = [
            r.next_attempt_time
            for r in self.rows.values()
            if r.status == "PENDING" and r.next_attempt_time > now
        ]
        return min(later, default=None)

    def claim(self, event_row_id: int, now: datetime, lease_until: datetime) -> EventRow | None:
        row = self.rows.get(event_row_id)
        if row is None or row.status != "PENDING" or not _free(row.lease_until, now):
            return None
        row.lease_until = lease_until
        return row


class FakeNotifications:
    def __init__(self) -> None:
        self.rows: dict[str, NotificationRow] = {}

    def add(self, row: NotificationRow) -> None:
        assert row.notification_id not in self.rows
        assert all(r.dedupe_key != row.dedupe_key for r in self.rows.values()), "dedupe_key is unique"
        self.rows[row.notification_id] = row

    def get(self, notification_id: str) -> NotificationRow | None:
        return self.rows.get(notification_id)

    def save(self, row: NotificationRow) -> None:
        self.rows[row.notification_id] = row

    def existing_keys(self, keys: list[str]) -> set[str]:
        return {r.dedupe_key for r in self.rows.values()} & set(keys)

    def due(self, now: datetime, limit: int) -> list[str]:
        due = [
            r
            for r in self.rows.values()
            if r.status == Status.PENDING.value
            and r.next_attempt_time is not None
            and r.next_attempt_time <= now
            and _free(r.lease_until, now)
        ]
        due.sort(key=lambda r: (r.create_time, r.notification_id))
        return [r.notification_id for r in due[:limit]]

    def claim(self, notification_id: str, now: datetime, lease_until: datetime) -> NotificationRow | None:
        row = self.rows.get(notification_id)
        if row is None or row.status != Status.PENDING.value or not _free(row.lease_until, now):
            return None
        row.lease_until = lease_until
        row.attempts += 1
        return row

    def settle(self, notification_id: str, **values: Any) -> None:
        row = self.rows[notification_id]
        row.lease_until = None
        for k, v in values.items():
            setattr(row, k, v)

    def account_of(self, notification_id: str) -> str | None:
        row = self.rows.get(notification_id)
        return row.account_id if row is not None else None

    def page(
        self,
        reader: Reader,
        *,
        account_id: str = "",
        recipient_email: str = "",
        kind: str = "",
        status: str = "",
        event_id: str = "",
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[NotificationRow]:
        from services.notification.domain.model import Kind

        rows = [
            r
            for r in self.rows.values()
            if reader.sees(r.account_id, r.recipient_email, Kind(r.kind))
            and (not account_id or r.account_id == account_id)
            and (not recipient_email or r.recipient_email == normalize_email(recipient_email))
            and (not kind or r.kind == kind)
            and (not status or r.status == status)
            and (not event_id or r.event_id == event_id)
            and (after is None or (r.create_time, r.notification_id) < after)
        ]
        rows.sort(key=lambda r: (r.create_time, r.notification_id), reverse=True)
        return rows[:limit]


class FakeAttachments:
    def __init__(self) -> None:
        self.rows: list[AttachmentRow] = []

    def add_all(self, rows: list[AttachmentRow]) -> None:
        self.rows.extend(rows)

    def of(self, notification_id: str) -> list[AttachmentRow]:
        return [a for a in self.rows if a.notification_id == notification_id]

    def of_many(self, notification_ids: list[str]) -> dict[str, list[AttachmentRow]]:
        return {i: self.of(i) for i in notification_ids}


class FakeMembers:
    def __init__(self) -> None:
        self.rows: set[tuple[str, str, str]] = set()

    def apply_role_changed(self, change: Any) -> None:
        from tenure.common.v1 import common_pb2

        role = common_pb2.Role.Name(change.role).removeprefix("ROLE_")
        key = (change.account_id, change.email.strip().lower(), role)
        if change.granted:
            self.rows.add(key)
        else:
            self.rows.discard(key)

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        e = email.strip().lower()
        return frozenset(r for a, m, r in self.rows if a == account_id and m == e)


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.events = db.events
        self.notifications = db.notifications
        self.attachments = db.attachments
        self.members = db.members
        self.published: list[tuple[str, dict[str, Any]]] = []

    @property
    def now(self) -> datetime:
        return self.db.clock.now()

    def publish(self, event_type: str, **kw: Any) -> str:
        self.published.append((event_type, kw))
        return f"evt-{len(self.db.published) + len(self.published)}"

    def flush(self) -> None:
        pass


class FakeDatabase:
    """Units of work over one in-memory store, and the clock handlers read `now` from."""

    def __init__(self, clock: TestClock | None = None) -> None:
        self.clock = clock or TestClock()
        self.events = FakeEvents()
        self.notifications = FakeNotifications()
        self.attachments = FakeAttachments()
        self.members = FakeMembers()
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.commits = 0

    @contextmanager
    def unit_of_work(self) -> Iterator[FakeUnitOfWork]:
        uow = FakeUnitOfWork(self)
        yield uow
        self.published += uow.published
        self.commits += 1

    @contextmanager
    def reading(self) -> Iterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self)


class FakePeers:
    """Entitlement's teams and billing's payers, invoices and PDFs; `down` makes every call fail as a peer
    that does not answer."""

    def __init__(self) -> None:
        self.teams: dict[str, list[Person]] = {}
        self.payer_lists: dict[str, list[Person]] = {}
        self.pdfs: dict[str, bytes] = {}
        self.invoices: dict[str, InvoiceState] = {}  # billing's GetInvoice
        self.unpaid: dict[tuple[str, str], InvoiceState] = {}  # (account, subscription) → open invoice
        self.down = False
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise PeerUnavailable(f"{name}: the service is down")

    def team(self, account_id: str) -> list[Person]:
        self._call("team")
        return list(self.teams.get(account_id, []))

    def payers(self, account_id: str) -> list[Person]:
        self._call("payers")
        return list(self.payer_lists.get(account_id, []))

    def invoice_pdf(self, invoice_id: str) -> Pdf | None:
        self._call("invoice_pdf")
        content = self.pdfs.get(invoice_id)
        return Pdf(f"{invoice_id}.pdf", content) if content is not None else None

    def invoice(self, invoice_id: str) -> InvoiceState | None:
        self._call("invoice")
        return self.invoices.get(invoice_id)

    def unpaid_invoice(self, account_id: str, subscription_id: str) -> InvoiceState | None:
        self._call("unpaid_invoice")
        return self.unpaid.get((account_id, subscription_id))


class FakeMailer:
    """Records each e-mail; `failures` are raised, one per attempt, before anything is sent."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.failures: list[SendFailed] = []

    def send(self, mail: Outgoing) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail)

    def to(self, email: str) -> list[Outgoing]:
        return [m for m in self.sent if m.to_email == email]
