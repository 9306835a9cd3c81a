"""Entitlement's own view of who holds which role on an account, for its permission table: the team's
stored roles (`member_role`: buyer, admins, and payers recorded from `billing.payer_changed`) and USER
for whoever holds a live seat on one of the account's subscriptions."""

from __future__ import annotations

from sqlalchemy import select

from services.entitlement.adapters.tables import AssignmentRow, MemberRoleRow
from shared.auth.policy import USER


class TeamDirectory:
    def __init__(self, db) -> None:
        self.db = db

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        e = email.strip().lower()
        with self.db.read() as s:
            roles = set(
                s.execute(
                    select(MemberRoleRow.role).where(
                        MemberRoleRow.account_id == account_id, MemberRoleRow.email == e
                    )
                ).scalars()
            )
            seat = s.execute(
                select(AssignmentRow.subscription_id)
                .where(
                    AssignmentRow.account_id == account_id,
                    AssignmentRow.user_email == e,
                    AssignmentRow.removed_reason.is_(None),
                )
                .limit(1)
            ).first()
        if seat is not None:
            roles.add(USER)
        return frozenset(roles)

    def known(self, account_id: str) -> bool:
        with self.db.read() as s:
            return (
                s.execute(
                    select(MemberRoleRow.email).where(MemberRoleRow.account_id == account_id).limit(1)
                ).first()
                is not None
            )
