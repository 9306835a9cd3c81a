"""Use cases of the entitlement service, one function each.

Writes run inside the caller's unit of work (`uow`): load through the repository, call the pure
domain rules, store, publish events to the outbox, and drop the users whose access changed from
the CheckAccess cache. Reads take a read-only session (or the cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.entitlement.adapters import repository as repo
from services.entitlement.adapters.cache import AccessCache, record_access_change
from services.entitlement.adapters.tables import AssignmentRow
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
from shared.db import UnitOfWork
from shared.errors import InvalidInput, NotAllowed, NotFound, RuleViolation

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size_of(value: int) -> int:
    if value < 0:
        raise InvalidInput("page_size cannot be negative", field="page_size")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


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
    users = set(users)
    if users:
        record_access_change(uow.session, users, uow.now)
        cache.invalidate_after_commit(uow.session, users)


# --- events ------------------------------------------------------------------------------------


def _publish_role_changes(uow: UnitOfWork, team: Team, changes: list[RoleChange], actor_email: str) -> None:
    """One `entitlement.role_changed` per change: every role (buyer, admins, payers, users) reaches the
    other services' `account_members` projections this way."""
    from services.entitlement.encode import role_pb
    from tenure.events.v1 import events_pb2

    for c in changes:
        m = team.members.get(c.email) or Member(email=c.email)
        uow.publish(
            "entitlement.role_changed",
            account_id=team.account_id,
            role_changed=events_pb2.RoleChanged(
                account_id=team.account_id,
                email=m.email,
                name=m.name,
                language=m.language,
                role=role_pb(c.role),
                granted=c.granted,
                actor_email=actor_email,
            ),
        )


def _publish_unassigned(uow: UnitOfWork, view: SubscriptionView, email: str, reason: str) -> None:
    from tenure.events.v1 import events_pb2

    uow.publish(
        "entitlement.seat_unassigned",
        account_id=view.account_id,
        subscription_id=view.subscription_id,
        seat_unassigned=events_pb2.SeatUnassigned(
            account_id=view.account_id,
            subscription_id=view.subscription_id,
            product_code=view.product_code,
            user_email=email,
            reason=reason,
        ),
    )


def apply_subscription_event(uow: UnitOfWork, cache: AccessCache, event: SubscriptionEvent) -> None:
    """Bring the projection up to date with one `subscription.*` event (run by the inbox)."""
    ids = [s.subscription_id for s in event.snapshots]
    current = repo.views(uow.session, ids, lock=True)
    update = plan_event(event, current)
    now = uow.now
    for view in update.views:
        repo.save_view(uow.session, view, now)
    uow.session.flush()
    by_id = {v.subscription_id: v for v in update.views}
    for account_id, email, name, language in update.buyers:
        _bootstrap_team(uow, account_id, email, name, language)
    removed: dict[str, set[str]] = {}  # account -> users who lost a seat
    for subscription_id, reason in update.remove_assignments.items():
        view = by_id[subscription_id]
        for row in repo.remove_assignments(uow.session, subscription_id, reason, now):
            _publish_unassigned(uow, view, row.user_email, reason)
            removed.setdefault(view.account_id, set()).add(row.user_email)
    for account_id, emails in removed.items():
        _users_left(uow, account_id, emails, actor_email="")
    _access_changed(uow, cache, repo.users_of(uow.session, by_id))


def _bootstrap_team(uow: UnitOfWork, account_id: str, email: str, name: str, language: str) -> None:
    """The first buyer an account is known with becomes its buyer and primary admin."""
    repo.lock_team(uow.session, account_id)
    team = repo.load_team(uow.session, account_id)
    changes = role_rules.bootstrap(team, email, name, language)
    if changes:
        repo.save_role_changes(uow.session, team, changes, uow.now)
        _publish_role_changes(uow, team, changes, actor_email="")


def _users_left(uow: UnitOfWork, account_id: str, emails, actor_email: str) -> None:
    """These people lost a seat on the account: those left with none lose their USER role (under the
    team's lock, so two seats lost at once on two subscriptions still revoke it once)."""
    uow.session.flush()
    repo.lock_team(uow.session, account_id)
    team = repo.load_team(uow.session, account_id)
    changes = [
        change
        for email in sorted(emails)
        for change in role_rules.seat_role_changes(
            email, True, repo.has_seat_in_account(uow.session, account_id, email)
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
    repo.lock_team(uow.session, account_id)
    team = repo.load_team(uow.session, account_id)
    changes = role_rules.set_payer(team, email, granted, name.strip(), language.strip())
    repo.save_role_changes(uow.session, team, changes, uow.now)
    _publish_role_changes(uow, team, changes, actor_email.strip().lower())


# --- teams -------------------------------------------------------------------------------------


def _member_result(uow: UnitOfWork, team: Team, email: str) -> MemberResult:
    m = team.members[email]
    roles = set(m.roles)
    if repo.has_seat_in_account(uow.session, team.account_id, email):
        roles.add(Role.USER)
    order = {r: i for i, r in enumerate(Role)}
    return MemberResult(
        team.account_id, m.email, m.name, m.language, tuple(sorted(roles, key=order.__getitem__))
    )


def list_members(
    session, account_id: str, role: Role | None, page_size: int, page_token: str
) -> tuple[list[MemberResult], str]:
    account_id = _required(account_id, "account_id")
    size = page_size_of(page_size)
    after = repo.decode_token(page_token, 1)
    rows, more = repo.list_members(session, account_id, role, size, after[0] if after else "")
    members = [MemberResult(account_id, r.email, r.name, r.language, tuple(roles)) for r, roles in rows]
    token = repo.encode_token(members[-1].email) if more and members else ""
    return members, token


def assign_role(
    uow: UnitOfWork, actor: Actor, account_id: str, email: str, role: Role | None, name: str, language: str
) -> MemberResult:
    account_id = _required(account_id, "account_id")
    email = normalize_email(email)
    repo.lock_team(uow.session, account_id)
    team = repo.load_team(uow.session, account_id)
    changes = role_rules.assign_role(team, actor, email, role, name.strip(), language.strip())
    repo.save_role_changes(uow.session, team, changes, uow.now)
    repo.save_member(uow.session, account_id, team.members[email], uow.now)
    _publish_role_changes(uow, team, changes, actor.email or "")
    return _member_result(uow, team, email)


def revoke_role(
    uow: UnitOfWork, actor: Actor, account_id: str, email: str, role: Role | None
) -> MemberResult:
    account_id = _required(account_id, "account_id")
    email = normalize_email(email)
    repo.lock_team(uow.session, account_id)
    team = repo.load_team(uow.session, account_id)
    changes = role_rules.revoke_role(team, actor, email, role)
    repo.save_role_changes(uow.session, team, changes, uow.now)
    _publish_role_changes(uow, team, changes, actor.email or "")
    return _member_result(uow, team, email)


def change_buyer(
    uow: UnitOfWork, actor: Actor, account_id: str, email: str, name: str, language: str
) -> MemberResult:
    role_rules.require_operator(actor, "change the buyer")
    account_id = _required(account_id, "account_id")
    email = normalize_email(email)
    repo.lock_team(uow.session, account_id)
    team = repo.load_team(uow.session, account_id)
    changes = role_rules.change_buyer(team, actor, email, name.strip(), language.strip())
    repo.save_role_changes(uow.session, team, changes, uow.now)
    repo.save_member(uow.session, account_id, team.members[email], uow.now)
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
    from tenure.events.v1 import events_pb2

    email = normalize_email(user_email, "user_email")
    view = repo.get_view(uow.session, _required(subscription_id, "subscription_id"), lock=True)
    team = repo.load_team(uow.session, view.account_id)
    role_rules.require_admin(team, actor, "assign seats")
    now = uow.now
    assigned = [a.user_email for a in repo.live_assignments(uow.session, view.subscription_id)]
    seat_rules.check_assign(view, assigned, email, now)
    repo.lock_team(uow.session, view.account_id)  # seats on two subscriptions: one USER change
    had_seat = repo.has_seat_in_account(uow.session, view.account_id, email)
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
    uow.session.add(row)
    repo.save_member(uow.session, view.account_id, member, now)
    uow.session.flush()
    uow.publish(
        "entitlement.seat_assigned",
        account_id=view.account_id,
        subscription_id=view.subscription_id,
        seat_assigned=events_pb2.SeatAssigned(
            account_id=view.account_id,
            subscription_id=view.subscription_id,
            product_code=view.product_code,
            product_name=view.product_name,
            user_email=email,
            user_name=name,
            language=lang,
        ),
    )
    _publish_role_changes(uow, team, role_rules.seat_role_changes(email, had_seat, True), actor.email or "")
    _access_changed(uow, cache, [email])
    return AssignmentResult(row, view)


def unassign_seat(
    uow: UnitOfWork, cache: AccessCache, actor: Actor, subscription_id: str, user_email: str
) -> AssignmentResult:
    email = normalize_email(user_email, "user_email")
    view = repo.get_view(uow.session, _required(subscription_id, "subscription_id"), lock=True)
    team = repo.load_team(uow.session, view.account_id)
    role_rules.require_admin(team, actor, "unassign seats")
    assigned = [a.user_email for a in repo.live_assignments(uow.session, view.subscription_id)]
    seat_rules.check_unassign(view, assigned, email, uow.now)
    row = repo.find_assignment(uow.session, view.subscription_id, email)
    uow.session.delete(row)
    uow.session.flush()
    _publish_unassigned(uow, view, email, seat_rules.REMOVED_UNASSIGNED)
    _users_left(uow, view.account_id, [email], actor.email or "")
    _access_changed(uow, cache, [email])
    return AssignmentResult(row, view)


def list_assignments(
    session,
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
    size = page_size_of(page_size)
    after = repo.decode_token(page_token, 2)
    rows, more = repo.list_assignments(
        session,
        account_id=account_id,
        subscription_id=subscription_id,
        user_email=email,
        page_size=size,
        after=after,
    )
    results = [AssignmentResult(a, repo._view(s)) for a, s in rows]
    token = ""
    if more and results:
        last = results[-1].row
        token = repo.encode_token(last.subscription_id, last.user_email)
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


def subscription_access(session, now: datetime, subscription_id: str) -> SubscriptionAccess:
    view = repo.get_view(session, _required(subscription_id, "subscription_id"))
    return SubscriptionAccess(
        view=view,
        capabilities=capability_matrix(Grant.of(view), now),
        assigned_seats=repo.count_live(session, view.subscription_id),
    )


def record_activation(uow: UnitOfWork, user_email: str, product_code: str):
    email = normalize_email(user_email, "user_email")
    product = _required(product_code, "product_code")
    now = uow.now
    grants = [g for g in repo.grants_of_user(uow.session, email) if g.covers(product)]
    decision = best_access(grants, Capability.PRODUCT_ACCESS, now)
    if not decision.allowed:
        raise NotAllowed(
            f"{email} has no access to {product} ({decision.reason.value.lower().replace('_', ' ')})",
            reason="NO_PRODUCT_ACCESS",
        )
    view = repo.get_view(uow.session, decision.subscription_id)
    return repo.record_activation(uow.session, view, email, now)


def seat_usage_report(
    session, actor: Actor, now: datetime, account_id: str, subscription_id: str
) -> list[UsageRow]:
    account_id = (account_id or "").strip()
    subscription_id = (subscription_id or "").strip()
    if subscription_id:
        view = repo.get_view(session, subscription_id)
        if account_id and view.account_id != account_id:
            # the permission check looked at account_id: another account's subscription does not exist
            raise NotFound(f"subscription {subscription_id} is not known", reason="SUBSCRIPTION_NOT_FOUND")
        account_id = view.account_id
        role_rules.require_usage_reader(repo.load_team(session, account_id), actor)
        seat_rules.ensure_reportable(view, now)
        reported = [view]
    else:
        account_id = _required(account_id, "account_id")
        role_rules.require_usage_reader(repo.load_team(session, account_id), actor)
        all_views = repo.views_of_account(session, account_id)
        reported = [v for v in all_views if v.stage is Stage.ACTIVE and not v.access_ended(now)]
        if not reported:
            raise RuleViolation(
                f"account {account_id} has no Active subscription; the seat usage report is only given "
                "for Active subscriptions",
                reason="REPORT_NOT_ACTIVE",
            )
    acts = repo.activations_of(session, [v.subscription_id for v in reported])
    rows: list[UsageRow] = []
    for v in reported:
        users = {a.user_email for a in repo.live_assignments(session, v.subscription_id)}
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
