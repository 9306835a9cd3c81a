"""The entitlement service's repositories and its unit of work: subscription views, teams, seats,
activations and the access-change notes, each on the unit of work's session (`uow.subscriptions`,
`uow.teams`, `uow.assignments`, `uow.activations`, `uow.access_changes`). Handlers use these only;
tests/unit/entitlement/fakes.py has in-memory twins with the same methods."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, event, exists, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session

from services.entitlement.adapters.tables import (
    AccessChangeRow,
    ActivationRow,
    AssignmentRow,
    MemberRoleRow,
    MemberRow,
    SubscriptionRow,
)
from services.entitlement.domain.model import (
    Grant,
    Member,
    Plan,
    Role,
    ShutoffPolicy,
    Stage,
    SubscriptionView,
)
from services.entitlement.domain.roles import RoleChange, Team
from services.entitlement.domain.seats import REMOVED_CANCELLED, REMOVED_REFUNDED
from shared.db import Database, UnitOfWork
from shared.errors import InvalidInput, NotFound

# Seats removed by a cancellation or a refund still tell CheckAccess what the user had.
FORMER_SEAT_REASONS = (REMOVED_CANCELLED, REMOVED_REFUNDED)
STORED_ROLES = (Role.BUYER, Role.PRIMARY_ADMIN, Role.SECONDARY_ADMIN, Role.PAYER)
_ROLE_ORDER = {r: i for i, r in enumerate(Role)}

#: one member of a page of ListMembers: (e-mail, name, language, roles in Role order)
MemberEntry = tuple[str, str, str, list[Role]]


def _view(row: SubscriptionRow) -> SubscriptionView:
    return SubscriptionView(
        subscription_id=row.subscription_id,
        account_id=row.account_id,
        product_code=row.product_code,
        product_name=row.product_name,
        plan=Plan(row.plan),
        seats=row.seats,
        stage=Stage(row.stage),
        shutoff_policy=ShutoffPolicy(row.shutoff_policy),
        buyer_email=row.buyer_email,
        buyer_name=row.buyer_name,
        buyer_language=row.buyer_language,
        access_until_time=row.access_until_time,
        upgraded_to_subscription_id=row.upgraded_to_subscription_id,
        upgraded_from_subscription_id=row.upgraded_from_subscription_id,
        last_sequence=row.last_sequence,
        included_product_codes=tuple(row.included_products.split()),
    )


_VIEW = SubscriptionRow.__table__  # type: ignore[attr-defined]
# built once: a statement built per event costs more than running it (its cache key, its compile)
_SELECT_VIEWS = select(*_VIEW.c).where(_VIEW.c.subscription_id.in_(bindparam("ids", expanding=True)))
_SELECT_VIEWS_LOCKED = _SELECT_VIEWS.with_for_update()
_UPDATE_VIEW = update(_VIEW).where(_VIEW.c.subscription_id == bindparam("view_id"))
_INSERT_VIEW = insert(_VIEW)
_SELECT_MEMBERS = select(MemberRow.email, MemberRow.name, MemberRow.language).where(
    MemberRow.account_id == bindparam("account_id")
)
_SELECT_ROLES = select(MemberRoleRow.email, MemberRoleRow.role).where(
    MemberRoleRow.account_id == bindparam("account_id")
)


def _copy(team: Team) -> Team:
    """A team the caller may change (the rules change teams in place)."""
    return Team(
        team.account_id,
        {
            e: Member(email=m.email, name=m.name, language=m.language, roles=set(m.roles))
            for e, m in team.members.items()
        },
    )


class SubscriptionRepository:
    """The projection of the subscriptions (one view per subscription, from `subscription.*` events).

    Views are read and written as plain rows (no ORM objects). The repository remembers, for its unit
    of work, which views it found stored and which it found missing, so that `save` writes a view
    with one UPDATE or one INSERT; `fresh` holds the views this transaction inserted (no seat can
    exist on them yet, see `AssignmentRepository.users_of`)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._stored: set[str] = set()
        self._missing: set[str] = set()
        self.fresh: set[str] = set()

    def _select(self, ids: list[str], lock: bool) -> list[Any]:
        rows = list(self.session.execute(_SELECT_VIEWS_LOCKED if lock else _SELECT_VIEWS, {"ids": ids}))
        found = {r.subscription_id for r in rows}
        self._stored |= found
        self._missing.update(i for i in ids if i not in found)
        return rows

    def find(self, subscription_id: str, *, lock: bool = False) -> SubscriptionView | None:
        rows = self._select([subscription_id], lock)
        return _view(rows[0]) if rows else None

    def get(self, subscription_id: str, *, lock: bool = False) -> SubscriptionView:
        if not subscription_id:
            raise InvalidInput("subscription_id is required", field="subscription_id")
        view = self.find(subscription_id, lock=lock)
        if view is None:
            raise NotFound(f"subscription {subscription_id} is not known", reason="SUBSCRIPTION_NOT_FOUND")
        return view

    def many(self, ids: Iterable[str], *, lock: bool = False) -> dict[str, SubscriptionView]:
        ids = list(ids)
        if not ids:
            return {}
        return {r.subscription_id: _view(r) for r in self._select(ids, lock)}

    def count_of(self, account_id: str) -> int:
        stmt = (
            select(func.count()).select_from(SubscriptionRow).where(SubscriptionRow.account_id == account_id)
        )
        return int(self.session.scalar(stmt) or 0)

    def of_account(self, account_id: str) -> list[SubscriptionView]:
        stmt = (
            select(SubscriptionRow)
            .where(SubscriptionRow.account_id == account_id)
            .order_by(SubscriptionRow.subscription_id)
        )
        return [_view(r) for r in self.session.scalars(stmt)]

    def save(self, view: SubscriptionView, now: datetime) -> None:
        """Store the view: an UPDATE of the row this unit of work read, an INSERT of one it found
        missing (a row inserted meanwhile by another transaction fails the INSERT, and the event is
        applied again), either when it did not read it."""
        sid = view.subscription_id
        values = {
            "account_id": view.account_id,
            "product_code": view.product_code,
            "product_name": view.product_name,
            "plan": view.plan.value,
            "seats": view.seats,
            "stage": view.stage.value,
            "shutoff_policy": view.shutoff_policy.value,
            "buyer_email": view.buyer_email,
            "buyer_name": view.buyer_name,
            "buyer_language": view.buyer_language,
            "access_until_time": view.access_until_time,
            "upgraded_to_subscription_id": view.upgraded_to_subscription_id,
            "upgraded_from_subscription_id": view.upgraded_from_subscription_id,
            "last_sequence": view.last_sequence,
            "included_products": " ".join(view.included_product_codes),
            "update_time": now,
        }
        session = self.session
        stale = session.identity_map.get(identity_key(SubscriptionRow, sid))
        if stale is not None:  # a row object read through the ORM (a page of seats): read it again
            session.expire(stale)
        if sid not in self._missing:
            updated = session.execute(_UPDATE_VIEW, {"view_id": sid, **values})
            if getattr(updated, "rowcount", 0):
                self._stored.add(sid)
                return
        session.execute(_INSERT_VIEW, {"subscription_id": sid, **values})
        self._missing.discard(sid)
        self._stored.add(sid)
        self.fresh.add(sid)

    def account_of(self, subscription_id: str) -> str | None:
        return self.session.execute(
            select(SubscriptionRow.account_id).where(SubscriptionRow.subscription_id == subscription_id)
        ).scalar_one_or_none()


class TeamRepository:
    """Account teams: members (name, language) and their stored roles (buyer, admins, payers).

    Within one unit of work an account's team lock is taken once (it is held until the transaction
    ends), and a team loaded under that lock is kept: later loads in the transaction get a copy of it
    instead of reading it again. Any write to the team (a member, a role) drops the kept copy."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._locked: set[str] = set()
        self._teams: dict[str, Team] = {}

    def lock(self, account_id: str) -> None:
        """Serialize role changes of one account (two hand-overs at once must not leave two primary
        admins). SQLite already runs one writer at a time; PostgreSQL takes a transaction lock."""
        if account_id in self._locked:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"entitlement.team:{account_id}"},
            )
        self._locked.add(account_id)

    def load(self, account_id: str) -> Team:
        kept = self._teams.get(account_id)
        if kept is None:
            kept = self._read(account_id)
            if account_id not in self._locked:  # no one else's change is kept out: do not keep it
                return kept
            self._teams[account_id] = kept
        return _copy(kept)

    def _read(self, account_id: str) -> Team:
        team = Team(account_id)
        for m in self.session.execute(_SELECT_MEMBERS, {"account_id": account_id}):
            team.members[m.email] = Member(email=m.email, name=m.name, language=m.language)
        for r in self.session.execute(_SELECT_ROLES, {"account_id": account_id}):
            member = team.members.setdefault(r.email, Member(email=r.email))
            member.roles.add(Role(r.role))
        return team

    def save_member(self, account_id: str, member: Member, now: datetime) -> None:
        self._teams.pop(account_id, None)
        row = self.session.get(MemberRow, (account_id, member.email))
        if row is None:
            self.session.add(
                MemberRow(
                    account_id=account_id,
                    email=member.email,
                    name=member.name,
                    language=member.language or "en",
                    create_time=now,
                )
            )
        elif (row.name, row.language) != (member.name, member.language):
            row.name, row.language = member.name, member.language or "en"
            self.session.add(row)

    def save_role_changes(self, team: Team, changes: Sequence[RoleChange], now: datetime) -> None:
        session = self.session
        self._teams.pop(team.account_id, None)
        for email in {c.email for c in changes}:
            self.save_member(team.account_id, team.members[email], now)
        for c in changes:
            if c.granted:
                session.add(
                    MemberRoleRow(
                        account_id=team.account_id, email=c.email, role=c.role.value, grant_time=now
                    )
                )
            else:
                session.execute(
                    delete(MemberRoleRow).where(
                        MemberRoleRow.account_id == team.account_id,
                        MemberRoleRow.email == c.email,
                        MemberRoleRow.role == c.role.value,
                    )
                )
            session.flush()

    def find_accounts(self, email: str, name: str, limit: int, after: str) -> tuple[list[str], bool]:
        """Accounts with someone of this e-mail on the team and/or a member whose name (or the account
        id) contains `name`, ordered by account id after `after`; and whether more follow."""
        who = aliased(MemberRow)
        stmt = select(MemberRow.account_id).where(MemberRow.account_id > after).distinct()
        if email:
            stmt = stmt.where(exists().where(who.account_id == MemberRow.account_id, who.email == email))
        if name:
            needle = name.lower()
            named = aliased(MemberRow)
            stmt = stmt.where(
                or_(
                    func.lower(MemberRow.account_id).contains(needle, autoescape=True),
                    exists().where(
                        named.account_id == MemberRow.account_id,
                        func.lower(named.name).contains(needle, autoescape=True),
                    ),
                )
            )
        found = list(self.session.scalars(stmt.order_by(MemberRow.account_id).limit(limit + 1)))
        return found[:limit], len(found) > limit

    def page(
        self, account_id: str, role: Role | None, limit: int, after: str
    ) -> tuple[list[MemberEntry], bool]:
        """Members with at least one role (or the given role; USER: a live seat), ordered by e-mail,
        after `after`; and whether more follow."""
        session = self.session
        has_seat = exists().where(
            AssignmentRow.account_id == MemberRow.account_id,
            AssignmentRow.user_email == MemberRow.email,
            AssignmentRow.removed_reason.is_(None),
        )

        def has_role(r: Role | None) -> Any:
            cond = [MemberRoleRow.account_id == MemberRow.account_id, MemberRoleRow.email == MemberRow.email]
            if r is not None:
                cond.append(MemberRoleRow.role == r.value)
            return exists().where(*cond)

        if role is None:
            which = or_(has_role(None), has_seat)
        elif role is Role.USER:
            which = has_seat
        else:
            which = has_role(role)
        stmt = (
            select(MemberRow)
            .where(MemberRow.account_id == account_id, MemberRow.email > after, which)
            .order_by(MemberRow.email)
            .limit(limit + 1)
        )
        rows = list(session.scalars(stmt))
        more = len(rows) > limit
        rows = rows[:limit]
        emails = [r.email for r in rows]
        roles: dict[str, list[Role]] = {e: [] for e in emails}
        if emails:
            for r in session.scalars(
                select(MemberRoleRow).where(
                    MemberRoleRow.account_id == account_id, MemberRoleRow.email.in_(emails)
                )
            ):
                roles[r.email].append(Role(r.role))
            seated = set(
                session.scalars(
                    select(AssignmentRow.user_email)
                    .where(
                        AssignmentRow.account_id == account_id,
                        AssignmentRow.user_email.in_(emails),
                        AssignmentRow.removed_reason.is_(None),
                    )
                    .distinct()
                )
            )
            for e in seated:
                roles[e].append(Role.USER)
        entries = [
            (r.email, r.name, r.language, sorted(roles[r.email], key=_ROLE_ORDER.__getitem__)) for r in rows
        ]
        return entries, more


class AssignmentRepository:
    """Seats: one row per (subscription, user); a removed seat keeps its row with the reason.

    `fresh`: subscriptions whose view this unit of work inserted (views are never deleted, and a
    seat is only given on a stored view), so none of them has a seat row until `add` gives one."""

    def __init__(self, session: Session, fresh: set[str] | None = None) -> None:
        self.session = session
        self.fresh: set[str] = set() if fresh is None else fresh

    def add(self, row: AssignmentRow) -> None:
        self.fresh.discard(row.subscription_id)
        self.session.add(row)
        self.session.flush()

    def delete(self, row: AssignmentRow) -> None:
        self.session.delete(row)
        self.session.flush()

    def live(self, subscription_id: str) -> list[AssignmentRow]:
        stmt = (
            select(AssignmentRow)
            .where(AssignmentRow.subscription_id == subscription_id, AssignmentRow.removed_reason.is_(None))
            .order_by(AssignmentRow.user_email)
        )
        return list(self.session.scalars(stmt))

    def find(self, subscription_id: str, email: str) -> AssignmentRow | None:
        return self.session.get(AssignmentRow, (subscription_id, email))

    def count_live(self, subscription_id: str) -> int:
        stmt = select(func.count()).where(
            AssignmentRow.subscription_id == subscription_id, AssignmentRow.removed_reason.is_(None)
        )
        return int(self.session.execute(stmt).scalar_one())

    def has_seat_in_account(self, account_id: str, email: str) -> bool:
        """Whether the person holds a live seat on any subscription of the account (their USER role)."""
        self.session.flush()
        stmt = select(
            exists().where(
                AssignmentRow.account_id == account_id,
                AssignmentRow.user_email == email,
                AssignmentRow.removed_reason.is_(None),
            )
        )
        return bool(self.session.execute(stmt).scalar())

    def users_of(self, subscription_ids: Iterable[str]) -> set[str]:
        """Every user with a row (live or former seat) on these subscriptions: whose access may change."""
        ids = [i for i in subscription_ids if i not in self.fresh]
        if not ids:
            return set()
        return set(
            self.session.scalars(
                select(AssignmentRow.user_email).where(AssignmentRow.subscription_id.in_(ids))
            )
        )

    def remove_all(self, subscription_id: str, reason: str, now: datetime) -> list[AssignmentRow]:
        """Mark the live seats of a cancelled or refunded subscription removed; returns them."""
        rows = self.live(subscription_id)
        if rows:
            self.session.execute(
                update(AssignmentRow)
                .where(
                    AssignmentRow.subscription_id == subscription_id, AssignmentRow.removed_reason.is_(None)
                )
                .values(removed_reason=reason, removed_time=now)
            )
        return rows

    def page(
        self,
        *,
        account_id: str,
        subscription_id: str,
        user_email: str,
        limit: int,
        after: tuple[str, str] | None,
    ) -> tuple[list[tuple[AssignmentRow, SubscriptionView]], bool]:
        """Live seats by (subscription, user), after `after`, each with its subscription; and whether
        more follow."""
        stmt = (
            select(AssignmentRow, SubscriptionRow)
            .join(SubscriptionRow, SubscriptionRow.subscription_id == AssignmentRow.subscription_id)
            .where(AssignmentRow.removed_reason.is_(None))
        )
        if account_id:
            stmt = stmt.where(AssignmentRow.account_id == account_id)
        if subscription_id:
            stmt = stmt.where(AssignmentRow.subscription_id == subscription_id)
        if user_email:
            stmt = stmt.where(AssignmentRow.user_email == user_email)
        if after is not None:
            stmt = stmt.where(
                tuple_(AssignmentRow.subscription_id, AssignmentRow.user_email) > tuple_(*after)
            )
        stmt = stmt.order_by(AssignmentRow.subscription_id, AssignmentRow.user_email).limit(limit + 1)
        rows = [(a, _view(s)) for a, s in self.session.execute(stmt).all()]
        return rows[:limit], len(rows) > limit

    def grants_of_user(self, email: str) -> tuple[Grant, ...]:
        """Every seat the user holds (and former seats of cancelled subscriptions), for CheckAccess."""
        stmt = (
            select(
                SubscriptionRow.subscription_id,
                SubscriptionRow.product_code,
                SubscriptionRow.plan,
                SubscriptionRow.stage,
                SubscriptionRow.shutoff_policy,
                SubscriptionRow.access_until_time,
                SubscriptionRow.account_id,
                SubscriptionRow.product_name,
                SubscriptionRow.included_products,
            )
            .join(AssignmentRow, AssignmentRow.subscription_id == SubscriptionRow.subscription_id)
            .where(
                AssignmentRow.user_email == email,
                or_(
                    AssignmentRow.removed_reason.is_(None),
                    AssignmentRow.removed_reason.in_(FORMER_SEAT_REASONS),
                ),
            )
            .order_by(SubscriptionRow.product_code, SubscriptionRow.subscription_id)
        )
        return tuple(
            Grant(
                subscription_id=r.subscription_id,
                product_code=r.product_code,
                plan=Plan(r.plan),
                stage=Stage(r.stage),
                shutoff_policy=ShutoffPolicy(r.shutoff_policy),
                access_until_time=r.access_until_time,
                account_id=r.account_id,
                product_name=r.product_name,
                included_product_codes=tuple(r.included_products.split()),
            )
            for r in self.session.execute(stmt).all()
        )


class ActivationRepository:
    """Product activations per (subscription, user), for the seat usage report."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, view: SubscriptionView, email: str, now: datetime) -> ActivationRow:
        row = self.session.get(ActivationRow, (view.subscription_id, email), with_for_update=True)
        if row is None:
            row = ActivationRow(
                subscription_id=view.subscription_id,
                user_email=email,
                account_id=view.account_id,
                product_code=view.product_code,
                activations=0,
                last_activation_time=now,
            )
        row.activations += 1
        row.last_activation_time = now
        self.session.add(row)
        self.session.flush()
        return row

    def of(self, subscription_ids: Sequence[str]) -> dict[tuple[str, str], ActivationRow]:
        if not subscription_ids:
            return {}
        stmt = select(ActivationRow).where(ActivationRow.subscription_id.in_(list(subscription_ids)))
        return {(r.subscription_id, r.user_email): r for r in self.session.scalars(stmt)}


class AccessChangeRepository:
    """`access_change`: users whose seats changed, so every process drops them from its cache."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, users: Iterable[str], now: datetime) -> None:
        rows = [{"user_email": u, "change_time": now} for u in sorted(set(users))]
        if rows:
            self.session.execute(insert(AccessChangeRow), rows)


class EntitlementUnitOfWork(UnitOfWork):
    """The entitlement service's unit of work: its repositories on this transaction's session."""

    def __init__(self, db: Database, session: Session) -> None:
        super().__init__(db, session)
        self.subscriptions = SubscriptionRepository(session)
        self.teams = TeamRepository(session)
        self.assignments = AssignmentRepository(session, self.subscriptions.fresh)
        self.activations = ActivationRepository(session)
        self.access_changes = AccessChangeRepository(session)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn` once this transaction has committed (not at all when it rolls back)."""
        event.listen(self.session, "after_commit", lambda _s: fn(), once=True)
