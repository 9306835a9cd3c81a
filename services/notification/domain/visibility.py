"""Who may read which e-mail of the delivery log (rules §7 "Identity and tenancy", §8).

- Everyone sees the e-mail sent to them, on any account.
- The buyer sees all of their account's mail: they receive every transaction e-mail.
- Admins see their account's mail of the kinds routed to admins (§8: user management, product
  access), not the billing and renewal mail sent to the buyer or the payers.
- Payers and users see only their own mail.
- Operators and services see everything.

Mail that names no account is its recipient's alone (and the operators').
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.notification.domain.model import ADMIN_ROLES, Kind, Role, normalize_email
from services.notification.domain.routing import ROUTES, Audience

#: The kinds of e-mail the routing table sends to admins.
ADMIN_ROUTED_KINDS: frozenset[Kind] = frozenset(r.kind for r in ROUTES if Audience.ADMINS in r.audiences)

ALL_KINDS: frozenset[Kind] = frozenset(Kind)


@dataclass(frozen=True, slots=True)
class Reader:
    """What one caller may read: the mail sent to `email`, the mail of `account_id` whose kind is in
    `kinds`, or (`everything`) all of it."""

    email: str = ""
    account_id: str = ""
    kinds: frozenset[Kind] = frozenset()
    everything: bool = False

    def sees(self, account_id: str, recipient_email: str, kind: Kind) -> bool:
        if self.everything:
            return True
        if self.email and normalize_email(recipient_email) == self.email:
            return True
        return bool(self.account_id) and account_id == self.account_id and kind in self.kinds


EVERYTHING = Reader(everything=True)
NOBODY = Reader()


def person_reader(email: str, account_id: str = "", roles: Iterable[str] = ()) -> Reader:
    """A person with `roles` on `account_id` (none when the call names no account)."""
    held = {Role(r) for r in roles if r in Role.__members__}
    if not account_id:
        kinds: frozenset[Kind] = frozenset()
    elif Role.BUYER in held:
        kinds = ALL_KINDS
    elif held & ADMIN_ROLES:
        kinds = ADMIN_ROUTED_KINDS
    else:
        kinds = frozenset()
    return Reader(email=normalize_email(email), account_id=account_id, kinds=kinds)
