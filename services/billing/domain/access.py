"""Billing's rules about people that are finer than the permission table (services/billing/permissions.py).

The table decides who may call an RPC on an account (rules §7). What it cannot say:

- who becomes the buyer when a billing profile or a payment method opens an account, and that an
  account keeps its one buyer (entitlement owns the team; an operator changes the buyer with
  ChangeBuyer, never a billing profile);
- how much of an invoice a caller sees: amounts, prices, payment details and PO documents are for the
  buyer and payers; admins who are not the buyer see status and dates only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from shared.auth.policy import BUYER, PAYER
from shared.errors import NotAllowed, NotFound, RuleViolation


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a billing change: a person (`email`), or an operator or service (`email` empty,
    `actor` names them for the events)."""

    email: str = ""
    actor: str = ""

    @property
    def is_person(self) -> bool:
        return bool(self.email)

    @property
    def label(self) -> str:
        return self.email or self.actor


def _norm(email: str) -> str:
    return (email or "").strip().lower()


def buyer_after_profile(current: str, requested: str, caller: Caller) -> str:
    """The buyer an UpsertBillingProfile leaves on the account ("" for none).

    `current` is the account's buyer ("" when it has none). An account with a buyer keeps it: the
    request may repeat it or leave it out. An account without one is opened by the profile: a person
    becomes its buyer (naming someone else is refused), an operator may name anyone (or nobody)."""
    current, requested = _norm(current), _norm(requested)
    if current:
        if requested and requested != current:
            raise RuleViolation(
                f"the buyer of this account is {current}; a billing profile cannot change it "
                "(an operator changes the buyer with ChangeBuyer)",
                reason="BUYER_CHANGE_NOT_ALLOWED",
            )
        return current
    if caller.is_person:
        me = _norm(caller.email)
        if requested and requested != me:
            raise NotAllowed(
                f"you are signed in as {me}, so an account you open names you as its buyer, not "
                f"{requested}; only an operator may open an account for someone else",
                reason="PERMISSION_DENIED",
            )
        return me
    return requested


def require_role(roles: Collection[str], allowed: Collection[str], account_id: str, what: str) -> None:
    """The answer the permission table gives a person with `roles` on the account: NOT_FOUND to one who
    holds none, PERMISSION_DENIED to one whose roles are not `allowed`. Billing asks again under the
    account's lock when a person was let in to open an account that someone else opened meanwhile."""
    if not roles:
        raise NotFound(f"billing account {account_id} not found", reason="BILLING_PROFILE_NOT_FOUND")
    if not set(roles) & set(allowed):
        raise NotAllowed(
            f"you may not {what} with your role on this account ({', '.join(sorted(roles)).lower()})",
            reason="PERMISSION_DENIED",
        )


def sees_amounts(is_person: bool, roles: Collection[str]) -> bool:
    """Whether a caller sees an invoice's amounts, prices, payment details and PO documents: operators
    and services do; on the account, the buyer and payers do, admins who are neither see status and
    dates only."""
    return not is_person or bool({BUYER, PAYER} & set(roles))
