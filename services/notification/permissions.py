"""Who may call each NotificationService RPC (rules §7), checked before the servicer runs.

The table admits the account's members and the recipient; what each of them then sees of the log is
narrowed by the handlers (domain/visibility.py): a person sees the mail sent to them, the buyer all of
the account's mail, admins the account's mail of the kinds routed to admins; operators and services
see everything, and only they render previews and run delivery.

- ListNotifications: naming no account, a person lists their own mail; naming an account, any member
  lists what their roles show; `recipient_email` set to themselves lists their own mail on an account
  whose team they have left. A stranger naming an account gets NOT_FOUND.
- GetNotification, ResendNotification: any member of the mail's account (the handler answers
  NOT_FOUND for mail their roles do not show, as for an id that does not exist); a stranger gets
  NOT_FOUND here. Mail that names no account is looked at by the handler alone (`PERSON`): only its
  recipient reads it.
"""

from __future__ import annotations

from shared.auth.policy import (
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
        MEMBER, SELF, PERSON, OPERATOR, SERVICE, self_field="recipient_email", target="account"
    ),
    "GetNotification": rule(MEMBER, PERSON, OPERATOR, SERVICE, target="notification"),
    "ResendNotification": rule(MEMBER, PERSON, OPERATOR, target="notification"),
    "RenderTemplate": rule(OPERATOR, SERVICE),
    "RunDelivery": rule(OPERATOR, SERVICE),
}


def permissions(db, directory: Directory) -> Permissions:
    def account_of(notification_id: str) -> str | None:
        with db.reading() as uow:
            return uow.notifications.account_of(notification_id)

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
