"""A service's projection of the account teams: (account, e-mail, role) rows.

Entitlement owns the teams (buyer, admins, users) and learns the payers from billing; it publishes
`entitlement.role_changed` for every role granted or revoked. Subscription, billing and notification
keep this projection from those events (`on_role_changed`), so checking a caller's roles is one local
indexed read. A service that opens an account itself (the first order, the first billing profile)
writes the buyer's rows in the same transaction (`grant`), so the buyer can act at once; the event
that follows finds the rows already there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, Index, MetaData, String, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.auth.policy import ACCOUNT_ROLES

if TYPE_CHECKING:
    from shared.db import Database, UnitOfWork
    from tenure.events.v1 import events_pb2

TABLE = "account_members"


def add_members_table(metadata: MetaData) -> Table:
    if TABLE in metadata.tables:
        return metadata.tables[TABLE]
    return Table(
        TABLE,
        metadata,
        Column("account_id", String(80), primary_key=True),
        Column("email", String(320), primary_key=True),
        Column("role", String(20), primary_key=True),
        Index("ix_account_members_email", "email"),
    )


def _norm(email: str) -> str:
    return email.strip().lower()


class Members:
    """Reads and writes of the projection, on a session the caller owns."""

    def __init__(self, table: Table) -> None:
        self.t = table

    def grant(self, session: Session, account_id: str, email: str, role: str) -> bool:
        """Add the role unless it is there; True when added."""
        if role not in ACCOUNT_ROLES:
            raise ValueError(f"not an account role: {role}")
        t, e = self.t, _norm(email)
        exists = session.execute(
            select(t.c.role).where(t.c.account_id == account_id, t.c.email == e, t.c.role == role)
        ).first()
        if exists is not None:
            return False
        try:
            with session.begin_nested():
                session.execute(insert(t).values(account_id=account_id, email=e, role=role))
        except IntegrityError:
            return False  # a concurrent writer added it first
        return True

    def revoke(self, session: Session, account_id: str, email: str, role: str) -> None:
        t = self.t
        session.execute(
            delete(t).where(t.c.account_id == account_id, t.c.email == _norm(email), t.c.role == role)
        )

    def roles(self, session: Session, account_id: str, email: str) -> frozenset[str]:
        t = self.t
        rows = session.execute(
            select(t.c.role).where(t.c.account_id == account_id, t.c.email == _norm(email))
        ).scalars()
        return frozenset(rows)

    def known(self, session: Session, account_id: str) -> bool:
        t = self.t
        return (
            session.execute(select(t.c.email).where(t.c.account_id == account_id).limit(1)).first()
            is not None
        )

    def holders(self, session: Session, account_id: str, role: str) -> list[str]:
        t = self.t
        rows = session.execute(
            select(t.c.email).where(t.c.account_id == account_id, t.c.role == role).order_by(t.c.email)
        ).scalars()
        return list(rows)

    def accounts_of(self, session: Session, email: str, roles: frozenset[str] = ACCOUNT_ROLES) -> list[str]:
        t = self.t
        rows = session.execute(
            select(t.c.account_id)
            .where(t.c.email == _norm(email), t.c.role.in_(sorted(roles)))
            .distinct()
            .order_by(t.c.account_id)
        ).scalars()
        return list(rows)

    def apply_role_changed(self, session: Session, change: events_pb2.RoleChanged) -> None:
        """Apply an `entitlement.role_changed` payload (tenure.events.v1.RoleChanged)."""
        from tenure.common.v1 import common_pb2

        role = common_pb2.Role.Name(change.role).removeprefix("ROLE_")
        if role not in ACCOUNT_ROLES:
            return
        if change.granted:
            self.grant(session, change.account_id, change.email, role)
        else:
            self.revoke(session, change.account_id, change.email, role)


class ProjectionDirectory:
    """The `policy.Directory` of a service that keeps the projection: one read per check."""

    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.members = Members(table)

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        with self.db.read() as s:
            return self.members.roles(s, account_id, email)

    def known(self, account_id: str) -> bool:
        with self.db.read() as s:
            return self.members.known(s, account_id)

    def on_role_changed(self, uow: UnitOfWork, event: events_pb2.Event) -> None:
        """Event handler for `entitlement.role_changed` (register it in the service's event sink)."""
        self.members.apply_role_changed(uow.session, event.role_changed)
