"""Who may call each NotificationService RPC (SPEC §7), checked before the servicer runs.

Each person sees the e-mail sent to them; the buyer and admins also see their account's mail of the
kinds they are routed (the handlers narrow a list to that); operators see everything and run delivery.
"""

from __future__ import annotations

from sqlalchemy import select

from services.notification.adapters.tables import NotificationRow
from shared.auth.policy import (
    ADMINS,
    BUYER,
    MEMBER,
    OPERATOR,
    PERSON,
    SELF,
    SERVICE,
    Directory,
    FieldTarget,
    LookupTarget,
    rule,
)
from shared.grpc.auth import Permissions

SERVICE_NAME = "tenure.notification.v1.NotificationService"

TABLE = {
    "ListNotifications": rule(
        BUYER, *ADMINS, SELF, PERSON, OPERATOR, SERVICE, self_field="recipient_email", target="account"
    ),
    "GetNotification": rule(MEMBER, OPERATOR, SERVICE, target="notification"),
    "ResendNotification": rule(MEMBER, OPERATOR, target="notification"),
    "RenderTemplate": rule(OPERATOR, SERVICE),
    "RunDelivery": rule(OPERATOR, SERVICE),
}


def permissions(db, directory: Directory) -> Permissions:
    def account_of(notification_id: str) -> str | None:
        with db.read() as s:
            return s.execute(
                select(NotificationRow.account_id).where(NotificationRow.notification_id == notification_id)
            ).scalar_one_or_none()

    return Permissions(
        SERVICE_NAME,
        TABLE,
        {
            "account": FieldTarget("account_id"),
            "notification": LookupTarget(
                "notification_id", "notification", "NOTIFICATION_NOT_FOUND", account_of
            ),
        },
        directory,
    )
