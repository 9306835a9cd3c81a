"""Account teams and who may do what (rules §7).

- The buyer of an account's first order becomes its buyer and its primary admin.
- The primary admin hands the role to another person; the previous primary admin becomes a
  secondary admin (and stays buyer when they were the buyer).
- Primary admins name and remove secondary admins; secondary admins cannot name admins.
- Only an operator changes the buyer.
- Payers are named by the buyer in billing; entitlement records them from billing's
  `billing.payer_changed` events (`set_payer`).
- Users get their role by holding a seat: the first live seat on an account grants USER, losing
  the last one revokes it (`seat_role_changes`).
- The buyer and admins see the seat usage report (`require_usage_reader`).

Every function works on a `Team` (the members of one account) in memory, changes it, and
returns the role changes so that the caller can store them and publish one
`entitlement.role_changed` event per change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.entitlement.domain.model import ADMIN_ROLES, Actor, Member, Role
from shared.errors import InvalidInput, NotAllowed, NotFound, RuleViolation

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class RoleChange:
    email: str
    role: Role
    granted: bool


@dataclass(slots=True)
class Team:
    account_id: str
    members: dict[str, Member] = field(default_factory=dict)

    def holders(self, role: Role) -> list[Member]:
        return sorted((m for m in self.members.values() if role in m.roles), key=lambda m: m.email)

    @property
    def buyer(self) -> Member | None:
        found = self.holders(Role.BUYER)
        return found[0] if found else None

    @property
    def primary_admin(self) -> Member | None:
        found = self.holders(Role.PRIMARY_ADMIN)
        return found[0] if found else None

    def roles_of(self, email: str | None) -> set[Role]:
        m = self.members.get(email or "")
        return set(m.roles) if m else set()

    def member(self, email: str, name: str = "", language: str = "") -> Member:
        """The member with that e-mail, created when new; fills in a missing name or language."""
        m = self.members.get(email)
        if m is None:
            m = Member(email=email, name=name, language=language or DEFAULT_LANGUAGE)
            self.members[email] = m
        else:
            if name and not m.name:
                m.name = name
            if language and not m.language:
                m.language = language
        return m

    def _grant(self, email: str, role: Role, changes: list[RoleChange]) -> None:
        m = self.members[email]
        if role not in m.roles:
            m.roles.add(role)
            changes.append(RoleChange(email, role, True))

    def _revoke(self, email: str, role: Role, changes: list[RoleChange]) -> None:
        m = self.members[email]
        if role in m.roles:
            m.roles.discard(role)
            changes.append(RoleChange(email, role, False))


def require_actor(actor: Actor) -> None:
    """The change is made by a signed-in person (their token names their e-mail) or an operator."""
    if not actor.operator and not actor.email:
        raise NotAllowed(
            "this change is made by a signed-in person or an operator: call with a token that names "
            "the person's e-mail",
            reason="ACTOR_REQUIRED",
        )


def require_operator(actor: Actor, action: str) -> None:
    if not actor.operator:
        raise NotAllowed(
            f"only an operator (vendor support) may {action}; contact support", reason="OPERATOR_ONLY"
        )


def require_admin(team: Team, actor: Actor, action: str) -> None:
    """Admins (primary or secondary) and operators assign seats and see reports."""
    require_actor(actor)
    if actor.operator or team.roles_of(actor.email) & ADMIN_ROLES:
        return
    raise NotAllowed(
        f"only an admin of account {team.account_id} may {action}; {actor.email} is not one",
        reason="ADMIN_REQUIRED",
    )


def require_usage_reader(team: Team, actor: Actor) -> None:
    """The buyer, admins (primary or secondary) and operators see the seat usage report."""
    require_actor(actor)
    if actor.operator or team.roles_of(actor.email) & (ADMIN_ROLES | {Role.BUYER}):
        return
    raise NotAllowed(
        f"only the buyer or an admin of account {team.account_id} may see the seat usage report; "
        f"{actor.email} is neither",
        reason="ADMIN_REQUIRED",
    )


def _require_admin_namer(team: Team, actor: Actor) -> None:
    """Only the primary admin (or an operator) names and removes admins."""
    require_actor(actor)
    if actor.operator:
        return
    roles = team.roles_of(actor.email)
    if Role.PRIMARY_ADMIN in roles:
        return
    if Role.SECONDARY_ADMIN in roles:
        raise NotAllowed(
            "a secondary admin cannot name or remove admins; ask the primary admin",
            reason="SECONDARY_ADMIN_CANNOT_NAME_ADMINS",
        )
    raise NotAllowed(
        f"only the primary admin of account {team.account_id} may name or remove admins",
        reason="PRIMARY_ADMIN_REQUIRED",
    )


def _require_role(role: Role | None) -> Role:
    if role is None:
        raise InvalidInput("role is required", field="role")
    return role


def _not_assignable(role: Role) -> RuleViolation:
    how = {
        Role.PAYER: "payers are named by the buyer in billing (AddPayer)",
        Role.USER: "users get their role by holding a seat (AssignSeat)",
        Role.OPERATOR: "operators are vendor staff, not account members",
        Role.PRIMARY_ADMIN: "the primary admin role is handed over (AssignRole to the new primary admin)",
        Role.BUYER: "the buyer is changed by an operator (ChangeBuyer)",
    }[role]
    return RuleViolation(f"role {role.value} cannot be changed this way: {how}", reason="ROLE_NOT_ASSIGNABLE")


def bootstrap(
    team: Team, buyer_email: str, buyer_name: str = "", buyer_language: str = ""
) -> list[RoleChange]:
    """The buyer of the account's first order becomes buyer and primary admin.

    Later orders change nothing: the account keeps its buyer and its primary admin.
    """
    changes: list[RoleChange] = []
    if team.buyer is not None:
        return changes
    team.member(buyer_email, buyer_name, buyer_language)
    team._grant(buyer_email, Role.BUYER, changes)
    if team.primary_admin is None:
        team._grant(buyer_email, Role.PRIMARY_ADMIN, changes)
        team._revoke(buyer_email, Role.SECONDARY_ADMIN, changes)
    return changes


def assign_role(
    team: Team, actor: Actor, email: str, role: Role | None, name: str = "", language: str = ""
) -> list[RoleChange]:
    role = _require_role(role)
    if role is Role.BUYER:
        return change_buyer(team, actor, email, name, language)
    if role not in ADMIN_ROLES:
        raise _not_assignable(role)
    _require_admin_namer(team, actor)
    changes: list[RoleChange] = []
    if role is Role.PRIMARY_ADMIN:
        current = team.primary_admin
        team.member(email, name, language)
        if current is not None and current.email == email:
            return changes
        if current is not None:
            # hand-over: the previous primary admin becomes a secondary admin
            team._revoke(current.email, Role.PRIMARY_ADMIN, changes)
            team._grant(current.email, Role.SECONDARY_ADMIN, changes)
        team._revoke(email, Role.SECONDARY_ADMIN, changes)
        team._grant(email, Role.PRIMARY_ADMIN, changes)
        return changes
    # secondary admin
    if Role.PRIMARY_ADMIN in team.roles_of(email):
        raise RuleViolation(
            f"{email} is the primary admin; hand the primary admin role to someone else first",
            reason="ROLE_NOT_ASSIGNABLE",
        )
    team.member(email, name, language)
    team._grant(email, Role.SECONDARY_ADMIN, changes)
    return changes


def revoke_role(team: Team, actor: Actor, email: str, role: Role | None) -> list[RoleChange]:
    role = _require_role(role)
    if role is not Role.SECONDARY_ADMIN:
        raise _not_assignable(role)
    _require_admin_namer(team, actor)
    member = team.members.get(email)
    if member is None:
        raise NotFound(f"{email} is not a member of account {team.account_id}", reason="MEMBER_NOT_FOUND")
    if role not in member.roles:
        raise NotFound(f"{email} is not a {role.value.lower().replace('_', ' ')}", reason="ROLE_NOT_HELD")
    changes: list[RoleChange] = []
    team._revoke(email, role, changes)
    return changes


def change_buyer(
    team: Team, actor: Actor, email: str, name: str = "", language: str = ""
) -> list[RoleChange]:
    """An operator makes another person the buyer; the previous buyer keeps any admin role."""
    require_operator(actor, "change the buyer")
    changes: list[RoleChange] = []
    current = team.buyer
    team.member(email, name, language)
    if current is not None and current.email == email:
        return changes
    if current is not None:
        team._revoke(current.email, Role.BUYER, changes)
    team._grant(email, Role.BUYER, changes)
    return changes


def set_payer(team: Team, email: str, granted: bool, name: str = "", language: str = "") -> list[RoleChange]:
    """Billing named (`granted`) or removed a payer: the team records the PAYER role. Naming a payer
    twice, or removing one who is not a payer, changes nothing."""
    changes: list[RoleChange] = []
    if granted:
        team.member(email, name, language)
        team._grant(email, Role.PAYER, changes)
    elif email in team.members:
        team._revoke(email, Role.PAYER, changes)
    return changes


def seat_role_changes(email: str, had_seat: bool, has_seat: bool) -> list[RoleChange]:
    """USER follows the seats: granted with a person's first live seat on the account, revoked with
    their last."""
    if had_seat == has_seat:
        return []
    return [RoleChange(email, Role.USER, has_seat)]
