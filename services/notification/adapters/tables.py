"""Tables of the notification service's own database.

- `notification_event`: each consumed event, stored in the inbox transaction; the planner turns it
  into notifications (recipients come from other services, so that happens outside the inbox
  transaction and is retried while a peer is down).
- `notification`: the delivery log, one row per e-mail. `dedupe_key` (event, recipient, kind) is
  unique, so no event ever yields the same e-mail twice, whoever plans it and however often.
- `notification_attachment`: files sent with an e-mail (the invoice PDF).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, LargeBinary, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.auth.membership import add_members_table
from shared.db import UTCDateTime


class NotificationModel(SQLModel, registry=registry()):
    pass


def _time(nullable: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class EventRow(NotificationModel, table=True):
    __tablename__ = "notification_event"
    __table_args__ = (Index("ix_notification_event_due", "status", "next_attempt_time"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    event_id: str = Field(unique=True, max_length=36)
    event_type: str = Field(max_length=80)
    account_id: str = Field(default="", max_length=80)
    subscription_id: str = Field(default="", max_length=80)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="PENDING", max_length=10)  # PENDING, PLANNED, CANCELLED
    attempts: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    received_time: datetime = _time()
    next_attempt_time: datetime = _time()
    lease_until: datetime | None = _time(nullable=True)


class NotificationRow(NotificationModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_due", "status", "next_attempt_time"),
        Index("ix_notification_account", "account_id", "create_time"),
        Index("ix_notification_recipient", "recipient_email", "create_time"),
    )

    notification_id: str = Field(primary_key=True, max_length=80)
    dedupe_key: str = Field(unique=True, max_length=600)
    event_id: str = Field(index=True, max_length=36)
    event_type: str = Field(max_length=80)
    account_id: str = Field(default="", max_length=80)
    subscription_id: str = Field(default="", max_length=80)
    kind: str = Field(max_length=40)
    recipient_email: str = Field(max_length=320)
    recipient_name: str = Field(default="", max_length=200)
    recipient_role: str = Field(max_length=30)
    language: str = Field(max_length=10)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=200)
    status: str = Field(default="PENDING", max_length=10)  # PENDING, SENT, FAILED
    attempts: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    resend_of_notification_id: str = Field(default="", max_length=80)
    create_time: datetime = _time()
    next_attempt_time: datetime | None = _time(nullable=True)
    first_attempt_time: datetime | None = _time(nullable=True)
    lease_until: datetime | None = _time(nullable=True)
    sent_time: datetime | None = _time(nullable=True)


class AttachmentRow(NotificationModel, table=True):
    __tablename__ = "notification_attachment"

    notification_id: str = Field(primary_key=True, max_length=80)
    filename: str = Field(primary_key=True, max_length=255)
    content_type: str = Field(max_length=100)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


#: who holds which role on which account (shared/auth/membership.py), kept from entitlement's events
MEMBERS = add_members_table(NotificationModel.metadata)
