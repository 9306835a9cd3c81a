"""Who may call what on billing (SPEC §7), from the actor the call carries.

- `service` (another Tenure service) and `operator` (vendor support) are trusted.
- Internal RPCs (issuing invoices, credit notes, voids, prepay-only marks, installment cancels) and the
  sweep need one of those roles.
- On an account, the buyer may do everything; a payer may see and pay invoices; anyone else who names
  themselves (admins, users) is refused. A call without an actor is let through until tokens arrive.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from shared.errors import NotAllowed

TRUSTED_ROLES = frozenset({"service", "operator"})


@dataclass(frozen=True, slots=True)
class Actor:
    email: str = ""
    role: str = ""

    @property
    def trusted(self) -> bool:
        return self.role in TRUSTED_ROLES


def require_trusted(actor: Actor, action: str) -> None:
    if not actor.trusted:
        raise NotAllowed(
            f"{action} is done by the Tenure services or an operator (x-actor-role: service or operator)",
            reason="PERMISSION_DENIED",
        )


def require_account_role(
    actor: Actor, *, buyer_email: str, payer_emails: Collection[str], payers_may: bool, action: str
) -> None:
    """The buyer may; payers may when `payers_may`; trusted roles and calls without an actor may."""
    if actor.trusted or not actor.email:
        return
    email = actor.email.strip().lower()
    if buyer_email and email == buyer_email.lower():
        return
    if payers_may and email in {p.lower() for p in payer_emails}:
        return
    who = "the buyer or a payer" if payers_may else "the buyer"
    raise NotAllowed(f"only {who} of this billing account may {action}", reason="PERMISSION_DENIED")
