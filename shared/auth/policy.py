"""Permission tables and the one decision every RPC goes through (pure: no gRPC, no SQL).

Each service has one table, `RPC name → Rule`. A rule lists who may call the RPC and how to find the
account the request is about (its *target*). The decision, for a verified principal:

- an operator or a service may call the RPC when the rule names `OPERATOR` or `SERVICE`;
- a person may call an RPC that names no account when the rule names `PERSON`, and one about
  themselves (the request's e-mail field is theirs) when it names `SELF`;
- on an account, a person holds the roles the account's team gives them. A person who holds none
  gets `NOT_FOUND`, exactly as if the object did not exist; a member whose roles the rule does not
  name gets `PERMISSION_DENIED`. `MEMBER` admits any role.
- `opens_account`: a person may name an account that has no team yet (the call makes them its buyer).
- `PARTNER` (rules §9): a partner's staff member (a person whose token names a partner) holds it on an
  account their partner has quoted or sold to (the directory's `partner_knows`); a rule that admits
  only partners refuses other people, and a partner may name an account that has no team yet when the
  rule `opens_account` (a quote for a new customer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.auth.principal import Access, Kind, Principal
from shared.errors import DomainError, InvalidInput, NotAllowed, NotFound, Unauthenticated

# Roles on an account (as stored in team projections; the proto Role values without their prefix).
BUYER = "BUYER"
PRIMARY_ADMIN = "PRIMARY_ADMIN"
SECONDARY_ADMIN = "SECONDARY_ADMIN"
PAYER = "PAYER"
USER = "USER"
ACCOUNT_ROLES = frozenset({BUYER, PRIMARY_ADMIN, SECONDARY_ADMIN, PAYER, USER})
ADMINS = (PRIMARY_ADMIN, SECONDARY_ADMIN)

# Principals that are not roles on an account.
OPERATOR = "operator"
SERVICE = "service"
PERSON = "person"  # any signed-in person, on a request that names no account
SELF = "self"  # the person the request is about (its `self_field`)
MEMBER = "member"  # any role on the account
PARTNER = "partner"  # staff of a partner that has quoted (or sold to) the account (rules §9)

_KNOWN = ACCOUNT_ROLES | {OPERATOR, SERVICE, PERSON, SELF, MEMBER, PARTNER}
_PERSON_GRANTS = ACCOUNT_ROLES | {PERSON, SELF, MEMBER, PARTNER}


@dataclass(frozen=True, slots=True)
class Resolved:
    """The account a request is about: `account_id` ("" when the request names none), or `missing`:
    the NotFound to answer because the object the request names does not exist."""

    account_id: str = ""
    missing: DomainError | None = None


Target = Callable[[Any], Resolved]


@dataclass(frozen=True, slots=True)
class Rule:
    allow: frozenset[str]
    target: str = ""
    opens_account: bool = False
    self_field: str = ""

    @property
    def for_people(self) -> bool:
        return bool(self.allow & _PERSON_GRANTS)


def rule(
    *allow: str | Iterable[str], target: str = "", opens_account: bool = False, self_field: str = ""
) -> Rule:
    flat: set[str] = set()
    for a in allow:
        flat.update([a] if isinstance(a, str) else a)
    unknown = flat - _KNOWN
    if unknown:
        raise ValueError(f"unknown principals in a permission rule: {sorted(unknown)}")
    if SELF in flat and not self_field:
        raise ValueError("a rule that admits SELF names the request field that holds the person")
    return Rule(frozenset(flat), target, opens_account, self_field)


class Directory(Protocol):
    """Who holds which role on which account (the service's view of the account teams)."""

    def roles(self, account_id: str, email: str) -> frozenset[str]: ...

    def known(self, account_id: str) -> bool: ...


def field_value(request: Any, path: str) -> str:
    obj = request
    for part in path.split("."):
        obj = getattr(obj, part, "")
    return str(obj or "")


def denied(what: str) -> NotAllowed:
    return NotAllowed(f"you may not {what}", reason="PERMISSION_DENIED")


def decide(
    method: str,
    rule: Rule | None,
    principal: Principal | None,
    request: Any,
    targets: dict[str, Target],
    directory: Directory | None,
) -> Access:
    """The access `principal` has for `method`, or the error to answer (raised)."""
    if principal is None:
        raise Unauthenticated("this call needs a token: send 'authorization: Bearer <token>'")
    if rule is None:
        raise denied(f"call {method}: it has no permission rule")
    if principal.kind is not Kind.PERSON:
        allowed = OPERATOR if principal.kind is Kind.OPERATOR else SERVICE
        if allowed not in rule.allow:
            raise denied(f"call {method} as {principal.kind.value}")
        account = ""
        if rule.target:
            account = targets[rule.target](request).account_id
        return Access(principal, account)
    if not rule.for_people:
        raise denied(f"call {method}: it is for {' and '.join(sorted(rule.allow))} callers only")
    email = principal.email
    if rule.allow & _PERSON_GRANTS == {PARTNER} and not principal.partner:
        raise denied(f"call {method}: it is for partners' staff (a token naming a partner)")
    about_self = SELF in rule.allow and field_value(request, rule.self_field).strip().lower() == email
    if not rule.target:
        if PERSON in rule.allow or about_self:
            return Access(principal)
        raise denied(f"call {method}")
    resolved = targets[rule.target](request)
    if resolved.missing is not None:
        raise resolved.missing
    account = resolved.account_id
    if not account:
        if PERSON in rule.allow or about_self:
            return Access(principal)
        raise denied(f"call {method} without naming an account")
    if directory is None:
        raise RuntimeError(f"call {method}: the permission table has no directory of account teams")
    roles = directory.roles(account, email)
    if PARTNER in rule.allow and principal.partner:
        knows = getattr(directory, "partner_knows", None)
        if knows is not None and knows(account, principal.partner):
            roles = roles | {PARTNER}
    if about_self:
        return Access(principal, account, roles)
    if not roles:
        if rule.opens_account and not directory.known(account):
            return Access(principal, account)
        raise _stranger(targets[rule.target], request, resolved)
    if MEMBER in rule.allow or roles & rule.allow:
        return Access(principal, account, roles)
    raise denied(f"call {method} with your role on this account ({', '.join(sorted(roles)).lower()})")


def _stranger(target: Target, request: Any, resolved: Resolved) -> DomainError:
    """The answer to a person who is on no team of the account: the target's own not-found error."""
    hide = getattr(target, "not_found", None)
    if hide is not None:
        error: DomainError = hide(request)
        return error
    return NotFound(f"account {resolved.account_id} not found", reason="NOT_FOUND")


@dataclass(frozen=True, slots=True)
class FieldTarget:
    """The account is the request's `field` itself (`account_id`)."""

    field: str = "account_id"
    what: str = "account"
    reason: str = "NOT_FOUND"

    def __call__(self, request: Any) -> Resolved:
        return Resolved(field_value(request, self.field).strip())

    def not_found(self, request: Any) -> NotFound:
        return NotFound(f"{self.what} {field_value(request, self.field)} not found", reason=self.reason)


@dataclass(frozen=True, slots=True)
class LookupTarget:
    """The request names an object (`field`); `lookup(id)` gives its account, or None when there is no
    such object. A stranger gets the same NotFound as for an object that does not exist."""

    field: str
    what: str
    reason: str
    lookup: Callable[[str], str | None]

    def __call__(self, request: Any) -> Resolved:
        value = field_value(request, self.field).strip()
        if not value:
            return Resolved(missing=InvalidInput(f"{self.field} is required", field=self.field))
        account = self.lookup(value)
        if account is None:
            return Resolved(missing=self.not_found(request))
        return Resolved(account)

    def not_found(self, request: Any) -> NotFound:
        return NotFound(f"{self.what} {field_value(request, self.field)} not found", reason=self.reason)


@dataclass(frozen=True, slots=True)
class ChoiceTarget:
    """A request that names its account one of several ways (a oneof, or either of two fields):
    `choose(request)` gives the target that applies and the part of the request it reads, or None when
    the request names no account. A stranger gets the chosen target's NotFound."""

    choose: Callable[[Any], tuple[Target, Any] | None]

    def __call__(self, request: Any) -> Resolved:
        picked = self.choose(request)
        return Resolved() if picked is None else picked[0](picked[1])

    def not_found(self, request: Any) -> DomainError:
        picked = self.choose(request)
        if picked is None:
            return NotFound("not found", reason="NOT_FOUND")
        target, part = picked
        return _stranger(target, part, target(part))
