"""Tables of the entitlement service's own database.

- `subscription_view`: the projection of each subscription, from `subscription.*` events.
- `member` and `member_role`: account teams (the stored roles are BUYER, the admin roles and
  PAYER, the last from billing's events; ROLE_USER is derived from holding a seat).
- `assignment`: seats. A seat removed by a cancellation or a refund is kept with
  `removed_reason` set (it no longer counts, is not listed, and gives what a Cancelled
  subscription gives: self-help support); a seat an admin unassigns is deleted.
- `activation`: how often each user activated the product of a subscription.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime


class EntitlementModel(SQLModel, registry=registry()):
    pass


def _time(nullable: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class SubscriptionRow(EntitlementModel, table=True):
    __tablename__ = "subscription_view"

    subscription_id: str = Field(primary_key=True, max_length=80)
    account_id: str = Field(index=True, max_length=80)
    product_code: str = Field(max_length=40)
    product_name: str = Field(default="", max_length=200)
    plan: str = Field(max_length=20)
    seats: int
    stage: str = Field(max_length=20)
    shutoff_policy: str = Field(max_length=20)
    buyer_email: str = Field(default="", max_length=320)
    buyer_name: str = Field(default="", max_length=200)
    buyer_language: str = Field(default="en", max_length=20)
    access_until_time: datetime | None = _time(nullable=True)
    upgraded_to_subscription_id: str | None = Field(default=None, max_length=80)
    upgraded_from_subscription_id: str | None = Field(default=None, max_length=80)
    last_sequence: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    #: space-separated codes of the products a seat also grants (a collection's members)
    included_products: str = Field(default="", max_length=400)
    update_time: datetime = _time()


class MemberRow(EntitlementModel, table=True):
    __tablename__ = "member"

    account_id: str = Field(primary_key=True, max_length=80)
    email: str = Field(primary_key=True, max_length=320)
    name: str = Field(default="", max_length=200)
    language: str = Field(default="en", max_length=20)
    create_time: datetime = _time()


class MemberRoleRow(EntitlementModel, table=True):
    __tablename__ = "member_role"

    account_id: str = Field(primary_key=True, max_length=80)
    email: str = Field(primary_key=True, max_length=320)
    role: str = Field(primary_key=True, max_length=30)
    grant_time: datetime = _time()


class AssignmentRow(EntitlementModel, table=True):
    __tablename__ = "assignment"
    __table_args__ = (
        Index("ix_assignment_user", "user_email"),
        Index("ix_assignment_account", "account_id", "subscription_id", "user_email"),
    )

    subscription_id: str = Field(primary_key=True, max_length=80)
    user_email: str = Field(primary_key=True, max_length=320)
    account_id: str = Field(max_length=80)
    user_name: str = Field(default="", max_length=200)
    language: str = Field(default="en", max_length=20)
    assigned_by_email: str = Field(default="", max_length=320)
    assign_time: datetime = _time()
    removed_reason: str | None = Field(default=None, max_length=20)
    removed_time: datetime | None = _time(nullable=True)


class ActivationRow(EntitlementModel, table=True):
    __tablename__ = "activation"

    subscription_id: str = Field(primary_key=True, max_length=80)
    user_email: str = Field(primary_key=True, max_length=320)
    account_id: str = Field(index=True, max_length=80)
    product_code: str = Field(max_length=40)
    activations: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_activation_time: datetime = _time()


class AccessChangeRow(EntitlementModel, table=True):
    """One row per user whose seats changed, written in the change's transaction. Every process
    serving this database polls it to drop those users from its CheckAccess cache (a process only
    receives its own events and calls)."""

    __tablename__ = "access_change"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    user_email: str = Field(max_length=320)
    change_time: datetime = _time()
