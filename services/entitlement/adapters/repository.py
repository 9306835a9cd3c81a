"""Loading and storing the entitlement aggregates (subscription views, teams, seats, activations)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, text, tuple_, update
from sqlmodel import Session

from services.entitlement.adapters.tables import (
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
from shared.errors import InvalidInput, NotFound

# Seats removed by a cancellation or a refund still tell CheckAccess what the user had.
FORMER_SEAT_REASONS = (REMOVED_CANCELLED, REMOVED_REFUNDED)
STORED_ROLES = (Role.BUYER, Role.PRIMARY_ADMIN, Role.SECONDARY_ADMIN, Role.PAYER)


# --- subscription views ------------------------------------------------------------------------


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


def find_view(session: Session, subscription_id: str, *, lock: bool = False) -> SubscriptionView | None:
    stmt = select(SubscriptionRow).where(SubscriptionRow.subscription_id == subscription_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    return _view(row) if row is not None else None


def get_view(session: Session, subscription_id: str, *, lock: bool = False) -> SubscriptionView:
    if not subscription_id:
        raise InvalidInput("subscription_id is required", field="subscription_id")
    view = find_view(session, subscription_id, lock=lock)
    if view is None:
        raise NotFound(f"subscription {subscription_id} is not known", reason="SUBSCRIPTION_NOT_FOUND")
    return view


def views(session: Session, ids: Iterable[str], *, lock: bool = False) -> dict[str, SubscriptionView]:
    ids = list(ids)
    if not ids:
        return {}
    stmt = select(SubscriptionRow).where(SubscriptionRow.subscription_id.in_(ids))
    if lock:
        stmt = stmt.with_for_update()
    return {r.subscription_id: _view(r) for r in session.scalars(stmt)}


def views_of_account(session: Session, account_id: str) -> list[SubscriptionView]:
    stmt = (
        select(SubscriptionRow)
        .where(SubscriptionRow.account_id == account_id)
        .order_by(SubscriptionRow.subscription_id)
    )
    return [_view(r) for r in session.scalars(stmt)]


def save_view(session: Session, view: SubscriptionView, now: datetime) -> None:
    row = session.get(SubscriptionRow, view.subscription_id)
    if row is None:
        row = SubscriptionRow(subscription_id=view.subscription_id, update_time=now)
    row.account_id = view.account_id
    row.product_code = view.product_code
    row.product_name = view.product_name
    row.plan = view.plan.value
    row.seats = view.seats
    row.stage = view.stage.value
    row.shutoff_policy = view.shutoff_policy.value
    row.buyer_email = view.buyer_email
    row.buyer_name = view.buyer_name
    row.buyer_language = view.buyer_language
    row.access_until_time = view.access_until_time
    row.upgraded_to_subscription_id = view.upgraded_to_subscription_id
    row.upgraded_from_subscription_id = view.upgraded_from_subscription_id
    row.last_sequence = view.last_sequence
    row.included_products = " ".join(view.included_product_codes)
    row.update_time = now
    session.add(row)


# --- teams -------------------------------------------------------------------------------------


def lock_team(session: Session, account_id: str) -> None:
    """Serialize role changes of one account (two hand-overs at once must not leave two primary
    admins). SQLite already runs one writer at a time; PostgreSQL takes a transaction lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"entitlement.team:{account_id}"}
        )


def load_team(session: Session, account_id: str) -> Team:
    team = Team(account_id)
    for m in session.scalars(select(MemberRow).where(MemberRow.account_id == account_id)):
        team.members[m.email] = Member(email=m.email, name=m.name, language=m.language)
    for r in session.scalars(select(MemberRoleRow).where(MemberRoleRow.account_id == account_id)):
        member = team.members.setdefault(r.email, Member(email=r.email))
        member.roles.add(Role(r.role))
    return team


def save_member(session: Session, account_id: str, member: Member, now: datetime) -> None:
    row = session.get(MemberRow, (account_id, member.email))
    if row is None:
        session.add(
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
        session.add(row)


def save_role_changes(session: Session, team: Team, changes: Sequence[RoleChange], now: datetime) -> None:
    for email in {c.email for c in changes}:
        save_member(session, team.account_id, team.members[email], now)
    for c in changes:
        if c.granted:
            session.add(
                MemberRoleRow(account_id=team.account_id, email=c.email, role=c.role.value, grant_time=now)
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


def has_seat_in_account(session: Session, account_id: str, email: str) -> bool:
    """Whether the person holds a live seat on any subscription of the account (their USER role)."""
    stmt = select(
        exists().where(
            AssignmentRow.account_id == account_id,
            AssignmentRow.user_email == email,
            AssignmentRow.removed_reason.is_(None),
        )
    )
    return bool(session.execute(stmt).scalar())


def list_members(
    session: Session, account_id: str, role: Role | None, page_size: int, after: str
) -> tuple[list[tuple[MemberRow, list[Role]]], bool]:
    """Members with at least one role (or the given role), ordered by e-mail, after `after`."""
    has_seat = exists().where(
        AssignmentRow.account_id == MemberRow.account_id,
        AssignmentRow.user_email == MemberRow.email,
        AssignmentRow.removed_reason.is_(None),
    )

    def has_role(r: Role | None):
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
        .limit(page_size + 1)
    )
    rows = list(session.scalars(stmt))
    more = len(rows) > page_size
    rows = rows[:page_size]
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
    order = {r: i for i, r in enumerate(Role)}
    return [(r, sorted(roles[r.email], key=order.__getitem__)) for r in rows], more


# --- seats -------------------------------------------------------------------------------------


def live_assignments(session: Session, subscription_id: str) -> list[AssignmentRow]:
    stmt = (
        select(AssignmentRow)
        .where(AssignmentRow.subscription_id == subscription_id, AssignmentRow.removed_reason.is_(None))
        .order_by(AssignmentRow.user_email)
    )
    return list(session.scalars(stmt))


def find_assignment(session: Session, subscription_id: str, email: str) -> AssignmentRow | None:
    return session.get(AssignmentRow, (subscription_id, email))


def users_of(session: Session, subscription_ids: Iterable[str]) -> set[str]:
    """Every user with a row (live or former seat) on these subscriptions: whose access may change."""
    ids = list(subscription_ids)
    if not ids:
        return set()
    return set(
        session.scalars(select(AssignmentRow.user_email).where(AssignmentRow.subscription_id.in_(ids)))
    )


def remove_assignments(
    session: Session, subscription_id: str, reason: str, now: datetime
) -> list[AssignmentRow]:
    """Mark the live seats of a cancelled or refunded subscription removed; returns them."""
    rows = live_assignments(session, subscription_id)
    if rows:
        session.execute(
            update(AssignmentRow)
            .where(AssignmentRow.subscription_id == subscription_id, AssignmentRow.removed_reason.is_(None))
            .values(removed_reason=reason, removed_time=now)
        )
    return rows


def list_assignments(
    session: Session,
    *,
    account_id: str,
    subscription_id: str,
    user_email: str,
    page_size: int,
    after: tuple[str, str] | None,
) -> tuple[list[tuple[AssignmentRow, SubscriptionRow]], bool]:
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
        stmt = stmt.where(tuple_(AssignmentRow.subscription_id, AssignmentRow.user_email) > tuple_(*after))
    stmt = stmt.order_by(AssignmentRow.subscription_id, AssignmentRow.user_email).limit(page_size + 1)
    rows = [(a, s) for a, s in session.execute(stmt).all()]
    return rows[:page_size], len(rows) > page_size


def grants_of_user(session: Session, email: str) -> tuple[Grant, ...]:
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
                AssignmentRow.removed_reason.is_(None), AssignmentRow.removed_reason.in_(FORMER_SEAT_REASONS)
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
        for r in session.execute(stmt).all()
    )


# --- activations -------------------------------------------------------------------------------


def record_activation(session: Session, view: SubscriptionView, email: str, now: datetime) -> ActivationRow:
    row = session.get(ActivationRow, (view.subscription_id, email), with_for_update=True)
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
    session.add(row)
    session.flush()
    return row


def activations_of(session: Session, subscription_ids: Sequence[str]) -> dict[tuple[str, str], ActivationRow]:
    if not subscription_ids:
        return {}
    stmt = select(ActivationRow).where(ActivationRow.subscription_id.in_(list(subscription_ids)))
    return {(r.subscription_id, r.user_email): r for r in session.scalars(stmt)}


def count_live(session: Session, subscription_id: str) -> int:
    stmt = select(func.count()).where(
        AssignmentRow.subscription_id == subscription_id, AssignmentRow.removed_reason.is_(None)
    )
    return int(session.execute(stmt).scalar_one())


# --- page tokens -------------------------------------------------------------------------------


def encode_token(*parts: str) -> str:
    return base64.urlsafe_b64encode("\x00".join(parts).encode()).decode().rstrip("=")


def decode_token(token: str, n: int) -> tuple[str, ...] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("page_token is not one this service gave", field="page_token") from None
    parts = tuple(raw.split("\x00"))
    if len(parts) != n:
        raise InvalidInput("page_token is not one this service gave", field="page_token")
    return parts
