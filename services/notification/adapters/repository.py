"""The notification service's repositories and its unit of work.

Handlers talk to these only: `uow.events` (consumed events waiting to be planned), `uow.notifications`
(the delivery log), `uow.attachments` (files sent with an e-mail) and `uow.members` (the projection
of the account teams kept from entitlement's events). tests/unit/notification/fakes.py has in-memory
twins with the same methods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, or_, update
from sqlmodel import Session, select

from services.notification.adapters.tables import MEMBERS, AttachmentRow, EventRow, NotificationRow
from services.notification.domain.model import Status, normalize_email
from services.notification.domain.visibility import ALL_KINDS, Reader
from shared.auth.membership import Members
from shared.db import Database, UnitOfWork

_PENDING = Status.PENDING.value


def _lease_free(col_lease: Any, now: datetime) -> Any:
    return or_(col_lease.is_(None), col_lease < now)


class EventRepository:
    """Consumed events: PENDING until planned (leased while one planner works on it), then PLANNED; an
    invoice's reminders wait here PENDING until they come due, or are CANCELLED when it is paid."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: EventRow) -> None:
        self.session.add(row)

    def get(self, event_row_id: int) -> EventRow | None:
        return self.session.get(EventRow, event_row_id)

    def save(self, row: EventRow) -> None:
        self.session.add(row)

    def due(self, now: datetime, limit: int) -> list[int]:
        """Ids of the pending events due by `now` that nobody holds a lease on, oldest first."""
        return list(
            self.session.exec(
                select(EventRow.id)
                .where(EventRow.status == "PENDING", EventRow.next_attempt_time <= now)
                .where(_lease_free(EventRow.lease_until, now))
                .order_by(EventRow.id)
                .limit(limit)
            ).all()
        )

    def has(self, event_id: str) -> bool:
        return self.session.exec(select(EventRow.id).where(EventRow.event_id == event_id)).first() is not None

    def latest(self, event_type: str, subscription_id: str) -> EventRow | None:
        """The newest stored event of a type about a subscription (a partner's last renewal opportunity)."""
        if not subscription_id:
            return None
        return self.session.exec(
            select(EventRow)
            .where(EventRow.event_type == event_type, EventRow.subscription_id == subscription_id)
            .order_by(EventRow.id.desc())  # type: ignore[union-attr]
            .limit(1)
        ).first()

    def cancel(self, event_ids: list[str]) -> int:
        """Drop pending events (an invoice's reminders once it is paid); the number dropped."""
        if not event_ids:
            return 0
        return int(
            self.session.execute(
                update(EventRow)
                .where(EventRow.event_id.in_(event_ids), EventRow.status == "PENDING")
                .values(status="CANCELLED", lease_until=None)
            ).rowcount
        )

    def waiting(self, now: datetime) -> int:
        """How many pending events are due by `now`, leased or not (a planner is still at work)."""
        return len(
            self.session.exec(
                select(EventRow.id).where(EventRow.status == "PENDING", EventRow.next_attempt_time <= now)
            ).all()
        )

    def unclaimed(self, now: datetime) -> int:
        """How many pending events are due by `now` with nobody holding a lease on them."""
        return self.session.exec(
            select(func.count())
            .select_from(EventRow)
            .where(EventRow.status == "PENDING", EventRow.next_attempt_time <= now)
            .where(_lease_free(EventRow.lease_until, now))
        ).one()

    def next_due_after(self, now: datetime) -> datetime | None:
        """When the next pending event comes due after `now` (a scheduled reminder, a retry)."""
        return self.session.exec(
            select(func.min(EventRow.next_attempt_time)).where(
                EventRow.status == "PENDING", EventRow.next_attempt_time > now
            )
        ).one()

    def claim(self, event_row_id: int, now: datetime, lease_until: datetime) -> EventRow | None:
        """Take the lease on a pending event (None when another planner has it or it is planned)."""
        claimed = self.session.execute(
            update(EventRow)
            .where(EventRow.id == event_row_id, EventRow.status == "PENDING")
            .where(_lease_free(EventRow.lease_until, now))
            .values(lease_until=lease_until)
        ).rowcount
        return self.session.get(EventRow, event_row_id) if claimed else None


class NotificationRepository:
    """The delivery log, one row per e-mail."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: NotificationRow) -> None:
        self.session.add(row)

    def get(self, notification_id: str) -> NotificationRow | None:
        return self.session.get(NotificationRow, notification_id)

    def save(self, row: NotificationRow) -> None:
        self.session.add(row)

    def existing_keys(self, keys: list[str]) -> set[str]:
        """Which of these dedupe keys (event, recipient, kind) are already in the log."""
        if not keys:
            return set()
        return set(
            self.session.exec(
                select(NotificationRow.dedupe_key).where(NotificationRow.dedupe_key.in_(keys))
            ).all()
        )

    def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of the pending e-mails due by `now` that no sender holds a lease on, oldest first."""
        return list(
            self.session.exec(
                select(NotificationRow.notification_id)
                .where(NotificationRow.status == _PENDING, NotificationRow.next_attempt_time <= now)
                .where(_lease_free(NotificationRow.lease_until, now))
                .order_by(NotificationRow.create_time, NotificationRow.notification_id)
                .limit(limit)
            ).all()
        )

    def claim(self, notification_id: str, now: datetime, lease_until: datetime) -> NotificationRow | None:
        """Take the lease on a pending e-mail and count the attempt (None when it is not free)."""
        claimed = self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.notification_id == notification_id, NotificationRow.status == _PENDING)
            .where(_lease_free(NotificationRow.lease_until, now))
            .values(lease_until=lease_until, attempts=NotificationRow.attempts + 1)
        ).rowcount
        return self.session.get(NotificationRow, notification_id) if claimed else None

    def settle(self, notification_id: str, **values: Any) -> None:
        """Record the outcome of an attempt (status, times, error) and release the lease."""
        self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.notification_id == notification_id)
            .values(lease_until=None, **values)
        )

    def account_of(self, notification_id: str) -> str | None:
        return self.session.execute(
            select(NotificationRow.account_id).where(NotificationRow.notification_id == notification_id)
        ).scalar_one_or_none()

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
        """The log newest first (create time, then id, both descending), narrowed to what `reader`
        sees and to the filters given; `after`: the (create time, id) of the last row of the page
        before."""
        stmt = select(NotificationRow)
        visible = _visible_to(reader)
        if visible is not None:
            stmt = stmt.where(visible)
        if account_id:
            stmt = stmt.where(NotificationRow.account_id == account_id)
        if recipient_email:
            stmt = stmt.where(NotificationRow.recipient_email == normalize_email(recipient_email))
        if kind:
            stmt = stmt.where(NotificationRow.kind == kind)
        if status:
            stmt = stmt.where(NotificationRow.status == status)
        if event_id:
            stmt = stmt.where(NotificationRow.event_id == event_id)
        if after is not None:
            t, last_id = after
            stmt = stmt.where(
                or_(
                    NotificationRow.create_time < t,
                    and_(NotificationRow.create_time == t, NotificationRow.notification_id < last_id),
                )
            )
        stmt = stmt.order_by(
            NotificationRow.create_time.desc(), NotificationRow.notification_id.desc()
        ).limit(limit)
        return list(self.session.exec(stmt).all())


def _visible_to(reader: Reader) -> Any:
    """The WHERE clause of the mail `reader` may see (None: everything); the same rule as
    `Reader.sees`."""
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


class AttachmentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_all(self, rows: list[AttachmentRow]) -> None:
        self.session.add_all(rows)

    def of(self, notification_id: str) -> list[AttachmentRow]:
        return list(
            self.session.exec(
                select(AttachmentRow).where(AttachmentRow.notification_id == notification_id)
            ).all()
        )

    def of_many(self, notification_ids: list[str]) -> dict[str, list[AttachmentRow]]:
        if not notification_ids:
            return {}
        out: dict[str, list[AttachmentRow]] = {i: [] for i in notification_ids}
        for a in self.session.exec(
            select(AttachmentRow).where(AttachmentRow.notification_id.in_(notification_ids))
        ).all():
            out[a.notification_id].append(a)
        return out


class MemberRepository:
    """The account teams as entitlement's `role_changed` events tell them (shared/auth/membership.py)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._members = Members(MEMBERS)

    def apply_role_changed(self, change: Any) -> None:
        """Apply an `entitlement.role_changed` payload (tenure.events.v1.RoleChanged)."""
        self._members.apply_role_changed(self.session, change)

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        return self._members.roles(self.session, account_id, email)


class NotificationUnitOfWork(UnitOfWork):
    """The notification service's unit of work: its repositories on this transaction's session."""

    def __init__(self, db: Database, session: Session) -> None:
        super().__init__(db, session)
        self.events = EventRepository(session)
        self.notifications = NotificationRepository(session)
        self.attachments = AttachmentRepository(session)
        self.members = MemberRepository(session)

    def flush(self) -> None:
        """Write what was added so far (the rows get their defaults) before the commit."""
        self.session.flush()
