"""Seat rules (rules §3, §4, §5, §6).

- Assigned users never exceed the subscription's seats.
- A user holds at most one seat of a subscription.
- Trial, Active and Expired subscriptions take assignment changes; Suspended keeps its
  assignments read-only; Cancelled (also after a refund) has none: they are deleted.
- After an upgrade the users may hold the old product and the new one during the overlap
  (30 days from the upgrade order); the old side's seats give access until its
  `access_until_time` and cannot change after it.
- The seat usage report is given for Active subscriptions only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from services.entitlement.domain.model import Stage, SubscriptionView
from shared.errors import AlreadyExists, LimitReached, NotFound, RuleViolation

CHANGEABLE_STAGES = frozenset({Stage.TRIAL, Stage.ACTIVE, Stage.EXPIRED})

# Why assignments disappear without an admin (the `reason` of entitlement.seat_unassigned).
REMOVED_UNASSIGNED = "unassigned"
REMOVED_CANCELLED = "cancelled"
REMOVED_REFUNDED = "refunded"


def ensure_assignments_changeable(view: SubscriptionView, now: datetime) -> None:
    if view.stage is Stage.CANCELLED:
        raise RuleViolation(
            f"subscription {view.subscription_id} is cancelled: its assignments were deleted and it "
            "cannot take new ones; buy a new subscription",
            reason="SUBSCRIPTION_ENDED",
        )
    if view.access_until_time is not None and view.access_ended(now):
        raise RuleViolation(
            f"subscription {view.subscription_id} was upgraded and its overlap ended at "
            f"{view.access_until_time.isoformat()}; assign users to the new subscription",
            reason="SUBSCRIPTION_ENDED",
        )
    if view.stage is Stage.SUSPENDED:
        raise RuleViolation(
            f"subscription {view.subscription_id} is suspended: its assignments are kept but "
            "read-only until it is renewed or paid",
            reason="ASSIGNMENTS_READ_ONLY",
        )


def check_assign(view: SubscriptionView, assigned: Collection[str], user_email: str, now: datetime) -> None:
    """Refuses the assignment of `user_email` given the e-mails already assigned to `view`."""
    ensure_assignments_changeable(view, now)
    if user_email in assigned:
        raise AlreadyExists(
            f"{user_email} already holds a seat on subscription {view.subscription_id}",
            reason="SEAT_ALREADY_ASSIGNED",
        )
    if len(assigned) >= view.seats:
        raise LimitReached(
            f"all {view.seats} seats of subscription {view.subscription_id} are assigned; "
            "unassign a user or add seats",
            reason="SEAT_LIMIT_REACHED",
        )


def check_unassign(view: SubscriptionView, assigned: Collection[str], user_email: str, now: datetime) -> None:
    ensure_assignments_changeable(view, now)
    if user_email not in assigned:
        raise NotFound(
            f"{user_email} holds no seat on subscription {view.subscription_id}",
            reason="ASSIGNMENT_NOT_FOUND",
        )


def ensure_reportable(view: SubscriptionView, now: datetime) -> None:
    """The seat usage report is refused outside Active."""
    if view.stage is not Stage.ACTIVE or view.access_ended(now):
        stage = "ended (upgrade overlap over)" if view.access_ended(now) else view.stage.value.lower()
        raise RuleViolation(
            f"the seat usage report is only given for Active subscriptions; "
            f"subscription {view.subscription_id} is {stage}",
            reason="REPORT_NOT_ACTIVE",
        )
