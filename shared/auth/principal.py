"""Who is calling: a verified principal, and the access the permission check granted for this call."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    PERSON = "person"
    SERVICE = "service"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. `subject` is the token's `sub`; a person's `email` is what the account teams
    know them by. A service acting for a person names that person in `on_behalf_of` (audit only: it
    grants the service nothing more and the person nothing at all)."""

    kind: Kind
    subject: str
    email: str = ""
    on_behalf_of: str = ""
    partner: str = ""  # a partner's staff member: the partner organisation they act for (rules §9)

    @property
    def is_person(self) -> bool:
        return self.kind is Kind.PERSON

    @property
    def is_operator(self) -> bool:
        return self.kind is Kind.OPERATOR

    @property
    def is_service(self) -> bool:
        return self.kind is Kind.SERVICE

    @property
    def label(self) -> str:
        """How the audit log names the caller."""
        if self.kind is Kind.PERSON:
            return f"{self.email} of partner {self.partner}" if self.partner else self.email
        who = self.subject if self.kind is Kind.SERVICE else f"operator:{self.email or self.subject}"
        return f"{who} for {self.on_behalf_of}" if self.on_behalf_of else who

    @property
    def scope(self) -> str:
        """The namespace of this caller's request ids: two callers never share a stored response."""
        raw = f"{self.kind.value}|{self.subject}|{self.email}|{self.on_behalf_of}"
        if self.partner:
            raw += f"|{self.partner}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Access:
    """What the permission check found for this call: the principal, the account the request is about
    (empty when it names none) and the caller's roles on it (empty for operators and services)."""

    principal: Principal
    account_id: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


_current: ContextVar[Access | None] = ContextVar("tenure_access", default=None)


def current() -> Access | None:
    """The access of the call being served on this thread (None outside an RPC)."""
    return _current.get()


def current_principal() -> Principal | None:
    a = _current.get()
    return a.principal if a is not None else None


@contextmanager
def acting(access: Access | None) -> Iterator[None]:
    token = _current.set(access)
    try:
        yield
    finally:
        _current.reset(token)
