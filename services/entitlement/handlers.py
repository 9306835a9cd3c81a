"""Use cases of the entitlement service, one function each.

Writes run inside the caller's unit of work (`uow`): load through its repositories, call the pure
domain rules, store, publish events to the outbox, and drop the users whose access changed from
the CheckAccess cache. Reads open a read-only unit of work (`db.reading()`) or ask the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.entitlement.adapters.cache import AccessCache
from services.entitlement.adapters.repository import EntitlementUnitOfWork
from services.entitlement.adapters.tables import ActivationRow, AssignmentRow
from services.entitlement.codec import role_changed_event, seat_assigned_event, seat_unassigned_event
from services.entitlement.domain import roles as role_rules
from services.entitlement.domain import seats as seat_rules
from services.entitlement.domain.access import AccessDecision, best_access, capability_matrix
from services.entitlement.domain.model import (
    AccessLevel,
    Actor,
    Capability,
    Grant,
    Member,
    Role,
    Stage,
    SubscriptionView,
    normalize_email,
)
from services.entitlement.domain.projection import SubscriptionEvent, plan_event
from services.entitlement.domain.roles import RoleChange, Team
from shared import paging
from shared.db import Database
from shared.errors import InvalidInput, NotAllowed, NotFound, RuleViolation

UnitOfWork = EntitlementUnitOfWork


def _required(value: str, field: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{field} is required", field=field)
    return value


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberResult:
    account_id: str
    email: str
    name: str
    language: str
    roles: tuple[Role, ...]


@dataclass(frozen=True, slots=True)
class AssignmentResult:
    row: AssignmentRow
    view: SubscriptionView


@dataclass(frozen=True, slots=True)
class SubscriptionAccess:
    view: SubscriptionView
    capabilities: dict[Capability, AccessLevel]
    assigned_seats: int


@dataclass(frozen=True, slots=True)
class UsageRow:
    subscription_id: str
    user_email: str
    product_code: str
    activations: int
    last_activation_time: datetime | None


def _access_changed(uow: UnitOfWork, cache: AccessCache, users) -> None:
    """These users' seats changed in this transaction: drop them from this process's cache now
    and after the commit, and tell the other processes through `access_change`."""
    changed = frozenset(users)
    if changed:
        uow.access_changes.record(changed, uow.now)
        cache.invalidate(changed)
        uow.after_commit(lambda: cache.invalidate(changed))


# --- events ------------------------------------------------------------------------------------


def _publish_role_changes(uow: UnitOfWork, team: Team, changes: list[RoleChange], actor_email: str) -> None:
    """One `entitlement.role_changed` per change: every role (buyer, admins, payers, users) reaches the
    other services' `account_members` projections this way."""
    for c in changes:
        m = team.members.get(c.email) or Member(email=c.email)
        uow.publish(
            "entitlement.role_changed",
            account_id=team.account_id,
            role_changed=role_changed_event(team.account_id, m, c, actor_email),
        )


def _publish_unassigned(uow: UnitOfWork, view: SubscriptionView, email: str, reason: str) -> None:
    uow.publish(
        "entitlement.seat_unassigned",
        account_id=view.account_id,
        subscription_id=view.subscription_id,
        seat_unassigned=seat_unassigned_event(view, email, reason),
    )


def apply_subscription_event(uow: UnitOfWork, cache: AccessCache, event: SubscriptionEvent) -> None:
    """Bring the projection up to date with one `subscription.*` event (run by the inbox)."""
    ids = [s.subscription_id for s in event.snapshots]
    current = uow.subscriptions.many(ids, lock=True)
    update = plan_event(event, current)
    now = uow.now
    for view in update.views:
        uow.subscriptions.save(view, now)
    by_id = {v.subscription_id: v for v in update.views}
    for account_id, email, name, language in update.buyers:
        _bootstrap_team(uow, account_id, email, name, language)
    removed: dict[str, set[str]] = {}  # account -> users who lost a seat
    for subscription_id, reason in update.remove_assignments.items():
        view = by_id[subscription_id]
        for row in uow.assignments.remove_all(subscription_id, reason, now):
            _publish_unassigned(uow, view, row.user_email, reason)
            removed.setdefault(view.account_id, set()).add(row.user_email)
    for account_id, emails in removed.items():
        _users_left(uow, account_id, emails, actor_email="")
    _access_changed(uow, cache, uow.assignments.users_of(by_id))


def _bootstrap_team(uow: UnitOfWork, account_id: str, email: str, name: str, language: str) -> None:
    """The first buyer an account is known with becomes its buyer and primary admin."""
    uow.teams.lock(account_id)
    team = uow.teams.load(account_id)
    changes = role_rules.bootstrap(team, email, name, language)
    if changes:
        uow.teams.save_role_changes(team, changes, uow.now)
        _publish_role_changes(uow, team, changes, actor_email="")


def _users_left(uow: UnitOfWork, account_id: str, emails, actor_email: str) -> None:
    """These people lost a seat on the account: those left with none lose their USER role (under the
    team's lock, so two seats lost at once on two subscriptions still revoke it once)."""
    uow.teams.lock(account_id)
    team = uow.teams.load(account_id)
    changes = [
        change
        for email in sorted(emails)
        for change in role_rules.seat_role_changes(
            email, True, uow.assignments.has_seat_in_account(account_id, email)
        )
    ]
    _publish_role_changes(uow, team, changes, actor_email)


def open_account(
    uow: UnitOfWork, account_id: str, buyer_email: str, buyer_name: str, buyer_language: str
) -> None:
    """`billing.account_opened`: an account made in billing (its first billing profile or payment
    method, before any order) gets its team as the first order would give it."""
    account_id = _required(account_id, "account_opened.account_id")
    email = normalize_email(buyer_email, "account_opened.buyer_email")
    _bootstrap_team(uow, account_id, email, buyer_name.strip(), buyer_language.strip())


def payer_changed(
    uow: UnitOfWork,
    account_id: str,
    email: str,
    name: str,
    language: str,
    granted: bool,
    actor_email: str,
) -> None:
    """`billing.payer_changed`: the buyer named or removed a payer in billing; the team records it and
    every service learns it from the role_changed event."""
    account_id = _required(account_id, "payer_changed.account_id")
    email = normalize_email(email, "payer_changed.email")
    uow.teams.lock(account_id)
    team = uow.teams.load(account_id)
    changes = role_rules.set_payer(team, email, granted, name.strip(), language.strip())
    uow.teams.save_role_changes(team, changes, uow.now)
    _publish_role_changes(uow, team, changes, actor_email.strip().lower())


# --- teams -------------------------------------------------------------------------------------


def _member_result(uow: UnitOfWork, team: Team, email: str) -> MemberResult:
    m = team.members[email]
    roles = set(m.roles)
    if uow.assignments.has_seat_in_account(team.account_id, email):
        roles.add(Role.USER)
    order = {r: i for i, r in enumerate(Role)}
    return MemberResult(
        team.account_id, m.email, m.name, m.language, tuple(sorted(roles, key=order.__getitem__))
    )


def _position(page_token: str, arity: int) -> tuple[str, ...] | None:
    """Where a page starts (the key of the last row of the page before), from a page token."""
    position = paging.decode_token(page_token, arity)
    if position is None:
        return None
    if not all(isinstance(p, str) for p in position):
        raise InvalidInput("page_token is not a token from a previous response", field="page_token")
    return tuple(position)


def list_members(
    db: Database, account_id: str, role: Role | None, page_size: int, page_token: str
) -> tuple[list[MemberResult], str]:
    account_id = _required(account_id, "account_id")
    size = paging.page_size(page_size)
    after = _position(page_token, 1)
    with db.reading() as uow:
        entries, more = uow.teams.page(account_id, role, size, after[0] if after else "")
    members = [
        MemberResult(account_id, email, name, lang, tuple(roles)) for email, name, lang, roles in entries
    ]
    token = paging.encode_token(members[-1].email) if more and members else ""
    return members, token


@dataclass(frozen=True, slots=True)
class AccountFound:
    account_id: str
    buyer: MemberResult | None
    matched: list[MemberResult]
    member_count: int
    subscription_count: int


def find_accounts(
    db: Database, email: str, name: str, page_size: int, page_token: str
) -> tuple[list[AccountFound], str]:
    """Accounts for an operator: by the e-mail of anyone on the team, or part of a member's name or of
    the account id."""
    email, name = normalize_email(email) if email.strip() else "", name.strip()
    if not email and not name:
        raise InvalidInput("give an email or a name to search by", field="email")
    if name and len(name) < 2:
        raise InvalidInput("name must have at least 2 characters", field="name")
    size = paging.page_size(page_size)
    after = _position(page_token, 1)
    found: list[AccountFound] = []
    with db.reading() as uow:
        accounts, more = uow.teams.find_accounts(email, name, size, after[0] if after else "")
        for account_id in accounts:
            entries, _ = uow.teams.page(account_id, None, 10_000, "")
            members = [MemberResult(account_id, e, n, lang, tuple(r)) for e, n, lang, r in entries]
            buyer = next((m for m in members if Role.BUYER in m.roles), None)
            needle = name.lower()
            matched = [
                m for m in members if (email and m.email == email) or (needle and needle in m.name.lower())
            ]
            found.append(
                AccountFound(account_id, buyer, matched, len(members), uow.subscriptions.count_of(account_id))
            )
    token = paging.encode_token(found[-1].account_id) if more and found else ""
    return found, token


def assign_role(
    uow: UnitOfWork, actor: Actor, account_id: str, email: str, role: Role | None, name: str, language: str
) -> MemberResult:
    account_id = _required(account_id, "account_id")
    email = normalize_email(email)
    uow.teams.lock(account_id)
    team = uow.teams.load(account_id)
    changes = role_rules.assign_role(team, actor, email, role, name.strip(), language.strip())
    uow.teams.save_role_changes(team, changes, uow.now)
    uow.teams.save_member(account_id, team.members[email], uow.now)
    _publish_role_changes(uow, team, changes, actor.email or "")
    return _member_result(uow, team, email)


def revoke_role(
    uow: UnitOfWork, actor: Actor, account_id: str, email: str, role: Role | None
) -> MemberResult:
    account_id = _required(account_id, "account_id")
    email = normalize_email(email)
    uow.teams.lock(account_id)
    team = uow.teams.load(account_id)
    changes = role_rules.revoke_role(team, actor, email, role)
    uow.teams.save_role_changes(team, changes, uow.now)
    _publish_role_changes(uow, team, changes, actor.email or "")
    return _member_result(uow, team, email)


def change_buyer(
    uow: UnitOfWork, actor: Actor, account_id: str, email: str, name: str, language: str
) -> MemberResult:
    role_rules.require_operator(actor, "change the buyer")
    account_id = _required(account_id, "account_id")
    email = normalize_email(email)
    uow.teams.lock(account_id)
    team = uow.teams.load(account_id)
    changes = role_rules.change_buyer(team, actor, email, name.strip(), language.strip())
    uow.teams.save_role_changes(team, changes, uow.now)
    uow.teams.save_member(account_id, team.members[email], uow.now)
    _publish_role_changes(uow, team, changes, actor.email or "")
    return _member_result(uow, team, email)


# --- seats -------------------------------------------------------------------------------------


def assign_seat(
    uow: UnitOfWork,
    cache: AccessCache,
    actor: Actor,
    subscription_id: str,
    user_email: str,
    user_name: str,
    language: str,
) -> AssignmentResult:
    email = normalize_email(user_email, "user_email")
    view = uow.subscriptions.get(_required(subscription_id, "subscription_id"), lock=True)
    team = uow.teams.load(view.account_id)
    role_rules.require_admin(team, actor, "assign seats")
    now = uow.now
    assigned = [a.user_email for a in uow.assignments.live(view.subscription_id)]
    seat_rules.check_assign(view, assigned, email, now)
    uow.teams.lock(view.account_id)  # seats on two subscriptions: one USER change
    had_seat = uow.assignments.has_seat_in_account(view.account_id, email)
    # a former seat can only exist on a cancelled subscription, which check_assign refused
    member = team.member(email, user_name.strip(), language.strip())
    name = user_name.strip() or member.name
    lang = language.strip() or member.language or role_rules.DEFAULT_LANGUAGE
    row = AssignmentRow(
        subscription_id=view.subscription_id,
        user_email=email,
        account_id=view.account_id,
        user_name=name,
        language=lang,
        assigned_by_email=actor.email or "",
        assign_time=now,
    )
    uow.assignments.add(row)
    uow.teams.save_member(view.account_id, member, now)
    uow.publish(
        "entitlement.seat_assigned",
        account_id=view.account_id,
        subscription_id=view.subscription_id,
        seat_assigned=seat_assigned_event(view, email, name, lang),
    )
    _publish_role_changes(uow, team, role_rules.seat_role_changes(email, had_seat, True), actor.email or "")
    _access_changed(uow, cache, [email])
    return AssignmentResult(row, view)


def unassign_seat(
    uow: UnitOfWork, cache: AccessCache, actor: Actor, subscription_id: str, user_email: str
) -> AssignmentResult:
    email = normalize_email(user_email, "user_email")
    view = uow.subscriptions.get(_required(subscription_id, "subscription_id"), lock=True)
    team = uow.teams.load(view.account_id)
    role_rules.require_admin(team, actor, "unassign seats")
    assigned = [a.user_email for a in uow.assignments.live(view.subscription_id)]
    seat_rules.check_unassign(view, assigned, email, uow.now)
    row = uow.assignments.find(view.subscription_id, email)
    assert row is not None  # check_unassign refused a user without a live seat
    uow.assignments.delete(row)
    _publish_unassigned(uow, view, email, seat_rules.REMOVED_UNASSIGNED)
    _users_left(uow, view.account_id, [email], actor.email or "")
    _access_changed(uow, cache, [email])
    return AssignmentResult(row, view)


def list_assignments(
    db: Database,
    account_id: str,
    subscription_id: str,
    user_email: str,
    page_size: int,
    page_token: str,
    only_user: str = "",
) -> tuple[list[AssignmentResult], str]:
    """The live assignments of an account or subscription. `only_user`: the caller may see only this
    person's (their own: a person who is neither the buyer nor an admin)."""
    account_id = (account_id or "").strip()
    subscription_id = (subscription_id or "").strip()
    if not account_id and not subscription_id:
        raise InvalidInput("account_id or subscription_id is required", field="account_id")
    email = normalize_email(user_email, "user_email") if user_email else ""
    if only_user:
        if email and email != only_user:
            raise NotAllowed(
                "only the buyer and admins list other people's assignments; ask about your own "
                f"(user_email {only_user})",
                reason="ADMIN_REQUIRED",
            )
        email = only_user
    size = paging.page_size(page_size)
    position = _position(page_token, 2)
    after = (position[0], position[1]) if position is not None else None
    with db.reading() as uow:
        rows, more = uow.assignments.page(
            account_id=account_id, subscription_id=subscription_id, user_email=email, limit=size, after=after
        )
    results = [AssignmentResult(a, view) for a, view in rows]
    token = ""
    if more and results:
        last = results[-1].row
        token = paging.encode_token(last.subscription_id, last.user_email)
    return results, token


# --- access ------------------------------------------------------------------------------------


def check_access(
    cache: AccessCache, now: datetime, user_email: str, product_code: str, capability: Capability
) -> AccessDecision:
    """The hot path: the user's seats come from the cache; no write, no other service."""
    email = user_email.strip().lower()
    if not email:
        raise InvalidInput("user_email is required", field="user_email")
    product = product_code.strip()
    if not product:
        raise InvalidInput("product_code is required", field="product_code")
    grants = [g for g in cache.grants(email) if g.covers(product)]
    return best_access(grants, capability, now)


def user_entitlements(cache: AccessCache, now: datetime, user_email: str) -> list[tuple[Grant, dict]]:
    email = normalize_email(user_email, "user_email")
    return [(g, capability_matrix(g, now)) for g in cache.grants(email)]


def load_grants(db: Database, user_email: str) -> tuple[Grant, ...]:
    """The CheckAccess cache's loader: every seat the user holds (and former seats that still answer)."""
    with db.reading() as uow:
        return uow.assignments.grants_of_user(user_email)


def subscription_access(db: Database, subscription_id: str) -> SubscriptionAccess:
    with db.reading() as uow:
        view = uow.subscriptions.get(_required(subscription_id, "subscription_id"))
        return SubscriptionAccess(
            view=view,
            capabilities=capability_matrix(Grant.of(view), uow.now),
            assigned_seats=uow.assignments.count_live(view.subscription_id),
        )


def record_activation(uow: UnitOfWork, user_email: str, product_code: str) -> ActivationRow:
    email = normalize_email(user_email, "user_email")
    product = _required(product_code, "product_code")
    now = uow.now
    grants = [g for g in uow.assignments.grants_of_user(email) if g.covers(product)]
    decision = best_access(grants, Capability.PRODUCT_ACCESS, now)
    if not decision.allowed:
        raise NotAllowed(
            f"{email} has no access to {product} ({decision.reason.value.lower().replace('_', ' ')})",
            reason="NO_PRODUCT_ACCESS",
        )
    view = uow.subscriptions.get(decision.subscription_id)
    return uow.activations.record(view, email, now)


def seat_usage_report(db: Database, actor: Actor, account_id: str, subscription_id: str) -> list[UsageRow]:
    with db.reading() as uow:
        return _seat_usage(uow, actor, uow.now, account_id, subscription_id)


def _seat_usage(
    uow: UnitOfWork, actor: Actor, now: datetime, account_id: str, subscription_id: str
) -> list[UsageRow]:
    account_id = (account_id or "").strip()
    subscription_id = (subscription_id or "").strip()
    if subscription_id:
        view = uow.subscriptions.get(subscription_id)
        if account_id and view.account_id != account_id:
            # the permission check looked at account_id: another account's subscription does not exist
            raise NotFound(f"subscription {subscription_id} is not known", reason="SUBSCRIPTION_NOT_FOUND")
        account_id = view.account_id
        role_rules.require_usage_reader(uow.teams.load(account_id), actor)
        seat_rules.ensure_reportable(view, now)
        reported = [view]
    else:
        account_id = _required(account_id, "account_id")
        role_rules.require_usage_reader(uow.teams.load(account_id), actor)
        all_views = uow.subscriptions.of_account(account_id)
        reported = [v for v in all_views if v.stage is Stage.ACTIVE and not v.access_ended(now)]
        if not reported:
            raise RuleViolation(
                f"account {account_id} has no Active subscription; the seat usage report is only given "
                "for Active subscriptions",
                reason="REPORT_NOT_ACTIVE",
            )
    acts = uow.activations.of([v.subscription_id for v in reported])
    rows: list[UsageRow] = []
    for v in reported:
        users = {a.user_email for a in uow.assignments.live(v.subscription_id)}
        users |= {email for (sid, email) in acts if sid == v.subscription_id}
        for email in sorted(users):
            a = acts.get((v.subscription_id, email))
            rows.append(
                UsageRow(
                    subscription_id=v.subscription_id,
                    user_email=email,
                    product_code=v.product_code,
                    activations=a.activations if a else 0,
                    last_activation_time=a.last_activation_time if a else None,
                )
            )
    return rows
