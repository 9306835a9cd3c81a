"""In-memory stand-ins for the entitlement service's database, so its handlers run without a server
or a database: `FakeDatabase` hands out a `FakeUnitOfWork` whose repositories have the methods of
services/entitlement/adapters/repository.py and keep what they store across units of work.

A fake unit of work publishes its events and runs its after-commit calls when it ends without an
error; its writes are not rolled back on an error (the handlers check before they write)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from services.entitlement.adapters.repository import FORMER_SEAT_REASONS, MemberEntry
from services.entitlement.adapters.tables import ActivationRow, AssignmentRow
from services.entitlement.domain.model import Grant, Member, Role, SubscriptionView
from services.entitlement.domain.roles import RoleChange, Team
from shared.clock import TestClock
from shared.errors import InvalidInput, NotFound

_ROLE_ORDER = {r: i for i, r in enumerate(Role)}


class FakeSubscriptions:
    def __init__(self) -> None:
        self.views: dict[str, SubscriptionView] = {}

    def find(self, subscription_id: str, *, lock: bool = False) -> SubscriptionView | None:
        return self.views.get(subscription_id)

    def get(self, subscription_id: str, *, lock: bool = False) -> SubscriptionView:
        if not subscription_id:
            raise InvalidInput("subscription_id is required", field="subscription_id")
        view = self.find(subscription_id)
        if view is None:
            raise NotFound(f"subscription {subscription_id} is not known", reason="SUBSCRIPTION_NOT_FOUND")
        return view

    def many(self, ids: Iterable[str], *, lock: bool = False) -> dict[str, SubscriptionView]:
        return {i: self.views[i] for i in ids if i in self.views}

    def of_account(self, account_id: str) -> list[SubscriptionView]:
        return sorted(
            (v for v in self.views.values() if v.account_id == account_id), key=lambda v: v.subscription_id
        )

    def save(self, view: SubscriptionView, now: datetime) -> None:
        self.views[view.subscription_id] = view

    def account_of(self, subscription_id: str) -> str | None:
        view = self.views.get(subscription_id)
        return view.account_id if view is not None else None


class FakeTeams:
    def __init__(self, assignments: FakeAssignments) -> None:
        self.members: dict[tuple[str, str], tuple[str, str]] = {}  # (account, email) -> (name, language)
        self.roles: set[tuple[str, str, Role]] = set()
        self.locked: list[str] = []
        self._assignments = assignments

    def lock(self, account_id: str) -> None:
        self.locked.append(account_id)

    def load(self, account_id: str) -> Team:
        team = Team(account_id)
        for (a, email), (name, language) in self.members.items():
            if a == account_id:
                team.members[email] = Member(email=email, name=name, language=language)
        for a, email, role in self.roles:
            if a == account_id:
                team.members.setdefault(email, Member(email=email)).roles.add(role)
        return team

    def save_member(self, account_id: str, member: Member, now: datetime) -> None:
        self.members[(account_id, member.email)] = (member.name, member.language or "en")

    def save_role_changes(self, team: Team, changes: Sequence[RoleChange], now: datetime) -> None:
        for email in {c.email for c in changes}:
            self.save_member(team.account_id, team.members[email], now)
        for c in changes:
            key = (team.account_id, c.email, c.role)
            if c.granted:
                assert key not in self.roles, f"{key} granted twice"
                self.roles.add(key)
            else:
                self.roles.discard(key)

    def page(
        self, account_id: str, role: Role | None, limit: int, after: str
    ) -> tuple[list[MemberEntry], bool]:
        entries: list[MemberEntry] = []
        for (a, email), (name, language) in sorted(self.members.items()):
            if a != account_id or email <= after:
                continue
            held = [r for acc, e, r in self.roles if acc == account_id and e == email]
            if self._assignments.has_seat_in_account(account_id, email):
                held.append(Role.USER)
            if (role is None and held) or (role is not None and role in held):
                entries.append((email, name, language, sorted(held, key=_ROLE_ORDER.__getitem__)))
        return entries[:limit], len(entries) > limit


class FakeAssignments:
    def __init__(self, subscriptions: FakeSubscriptions) -> None:
        self.rows: dict[tuple[str, str], AssignmentRow] = {}
        self._subscriptions = subscriptions

    def add(self, row: AssignmentRow) -> None:
        key = (row.subscription_id, row.user_email)
        assert key not in self.rows, f"{key} assigned twice"
        self.rows[key] = row

    def delete(self, row: AssignmentRow) -> None:
        del self.rows[(row.subscription_id, row.user_email)]

    def live(self, subscription_id: str) -> list[AssignmentRow]:
        return sorted(
            (
                r
                for r in self.rows.values()
                if r.subscription_id == subscription_id and r.removed_reason is None
            ),
            key=lambda r: r.user_email,
        )

    def find(self, subscription_id: str, email: str) -> AssignmentRow | None:
        return self.rows.get((subscription_id, email))

    def count_live(self, subscription_id: str) -> int:
        return len(self.live(subscription_id))

    def has_seat_in_account(self, account_id: str, email: str) -> bool:
        return any(
            r.account_id == account_id and r.user_email == email and r.removed_reason is None
            for r in self.rows.values()
        )

    def users_of(self, subscription_ids: Iterable[str]) -> set[str]:
        ids = set(subscription_ids)
        return {r.user_email for r in self.rows.values() if r.subscription_id in ids}

    def remove_all(self, subscription_id: str, reason: str, now: datetime) -> list[AssignmentRow]:
        rows = self.live(subscription_id)
        for r in rows:
            r.removed_reason, r.removed_time = reason, now
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
        rows = [
            (r, self._subscriptions.views[r.subscription_id])
            for key, r in sorted(self.rows.items())
            if r.removed_reason is None
            and (not account_id or r.account_id == account_id)
            and (not subscription_id or r.subscription_id == subscription_id)
            and (not user_email or r.user_email == user_email)
            and (after is None or key > after)
        ]
        return rows[:limit], len(rows) > limit

    def grants_of_user(self, email: str) -> tuple[Grant, ...]:
        views = [
            self._subscriptions.views[r.subscription_id]
            for r in self.rows.values()
            if r.user_email == email and (r.removed_reason is None or r.removed_reason in FORMER_SEAT_REASONS)
        ]
        return tuple(Grant.of(v) for v in sorted(views, key=lambda v: (v.product_code, v.subscription_id)))


class FakeActivations:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], ActivationRow] = {}

    def record(self, view: SubscriptionView, email: str, now: datetime) -> ActivationRow:
        row = self.rows.get((view.subscription_id, email))
        if row is None:
            row = ActivationRow(
                subscription_id=view.subscription_id,
                user_email=email,
                account_id=view.account_id,
                product_code=view.product_code,
                activations=0,
                last_activation_time=now,
            )
            self.rows[(view.subscription_id, email)] = row
        row.activations += 1
        row.last_activation_time = now
        return row

    def of(self, subscription_ids: Sequence[str]) -> dict[tuple[str, str], ActivationRow]:
        ids = set(subscription_ids)
        return {k: r for k, r in self.rows.items() if k[0] in ids}


class FakeAccessChanges:
    def __init__(self) -> None:
        self.users: list[str] = []

    def record(self, users: Iterable[str], now: datetime) -> None:
        self.users += sorted(set(users))


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.subscriptions = db.subscriptions
        self.teams = db.teams
        self.assignments = db.assignments
        self.activations = db.activations
        self.access_changes = db.access_changes
        self.published: list[tuple[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []

    @property
    def now(self) -> datetime:
        return self.db.clock.now()

    def publish(
        self, event_type: str, *, account_id: str = "", subscription_id: str = "", **payload: Any
    ) -> str:
        ((_, message),) = payload.items()
        self.published.append((event_type, message))
        return f"evt-{len(self.db.published) + len(self.published)}"

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after_commit.append(fn)


class FakeDatabase:
    def __init__(self, clock: TestClock | None = None) -> None:
        self.clock = clock or TestClock()
        self.subscriptions = FakeSubscriptions()
        self.assignments = FakeAssignments(self.subscriptions)
        self.teams = FakeTeams(self.assignments)
        self.activations = FakeActivations()
        self.access_changes = FakeAccessChanges()
        self.published: list[tuple[str, Any]] = []

    @contextmanager
    def unit_of_work(self) -> Iterator[FakeUnitOfWork]:
        uow = FakeUnitOfWork(self)
        yield uow
        self.published += uow.published
        for fn in uow._after_commit:
            fn()

    @contextmanager
    def reading(self) -> Iterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self)
