"""Billing's directory of roles: who holds which role on which account.

Two sources, read together: the `account_members` projection kept from entitlement's
`entitlement.role_changed` events (buyer, admins, users), and billing's own `payers` table. Billing
is where payers are named, so its table is the one word on who is a payer: a payer named here can
act at once and a payer removed here stops at once, whatever entitlement's echo of the change says
and whenever it arrives (the projection's PAYER rows are not read).
"""

from __future__ import annotations

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from services.billing.adapters.tables import MEMBERS, InvoiceRow, PayerRow, PaymentMethodRow, ProfileRow
from shared.auth.membership import Members
from shared.auth.policy import BUYER, PAYER

members = Members(MEMBERS)


def _norm(email: str) -> str:
    return (email or "").strip().lower()


def roles(session: Session, account_id: str, email: str) -> frozenset[str]:
    found = members.roles(session, account_id, email) - {PAYER}
    payer = session.execute(
        select(PayerRow.email).where(PayerRow.account_id == account_id, PayerRow.email == _norm(email))
    ).first()
    return found | {PAYER} if payer is not None else found


def known(session: Session, account_id: str) -> bool:
    """Whether the account exists: it has a team, or billing holds its data (a profile naming a buyer, a
    payment method, an invoice) from before it had a team here. Only an account that does not exist may
    be opened by a person: an account with someone's billing data is never handed to a newcomer."""
    if members.known(session, account_id):
        return True
    probes = (
        exists().where(PayerRow.account_id == account_id),
        exists().where(ProfileRow.account_id == account_id, ProfileRow.buyer_email != ""),
        exists().where(PaymentMethodRow.account_id == account_id),
        exists().where(InvoiceRow.account_id == account_id),
    )
    return bool(session.scalar(select(or_(*probes))))


def buyer(session: Session, account_id: str) -> str:
    """The account's buyer ("" when it has none yet)."""
    holders = members.holders(session, account_id, BUYER)
    return holders[0] if holders else ""


class BillingDirectory:
    """The `policy.Directory` of billing's permission table: one short read per check."""

    def __init__(self, db) -> None:
        self.db = db

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        with self.db.reading() as uow:
            return uow.members.roles(account_id, email)

    def known(self, account_id: str) -> bool:
        with self.db.reading() as uow:
            return uow.members.known(account_id)
