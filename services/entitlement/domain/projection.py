"""The local projection of subscriptions, built from the subscription service's events.

Each `subscription.*` event carries a snapshot of the subscription after the change; the
projection keeps the last one (ignoring a snapshot older than the one it has, by the producer's
outbox sequence). On top of that:

- the buyer of an account's first order becomes buyer and primary admin (`roles.bootstrap`);
- a subscription reaching Cancelled loses its assignments (reason `refunded` after a refund,
  `cancelled` otherwise);
- `subscription.upgraded` links the old subscription to the new one and sets the old one's
  `access_until_time` (30 days from the upgrade order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.entitlement.domain.model import Plan, ShutoffPolicy, Stage, SubscriptionView
from services.entitlement.domain.seats import REMOVED_CANCELLED, REMOVED_REFUNDED

SUBSCRIPTION_EVENT_PREFIX = "subscription."
REFUNDED = "subscription.refunded"
UPGRADED = "subscription.upgraded"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The parts of `tenure.events.v1.SubscriptionSnapshot` the projection keeps."""

    subscription_id: str
    account_id: str
    product_code: str
    product_name: str
    plan: Plan
    seats: int
    stage: Stage
    shutoff_policy: ShutoffPolicy
    buyer_email: str = ""
    buyer_name: str = ""
    buyer_language: str = ""
    access_until_time: datetime | None = None
    included_product_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    event_type: str
    sequence: int
    snapshots: tuple[Snapshot, ...]
    # subscription.upgraded
    old_subscription_id: str | None = None
    new_subscription_id: str | None = None
    old_access_until_time: datetime | None = None
    # subscription.stage_changed
    stage_reason: str = ""


@dataclass(slots=True)
class ProjectionUpdate:
    """What applying one event changes: views to store, assignments to delete, buyers to seat."""

    views: list[SubscriptionView] = field(default_factory=list)
    remove_assignments: dict[str, str] = field(default_factory=dict)  # subscription id -> reason
    buyers: list[tuple[str, str, str, str]] = field(default_factory=list)  # account, email, name, lang

    @property
    def changed(self) -> bool:
        return bool(self.views or self.remove_assignments or self.buyers)


def apply_snapshot(
    current: SubscriptionView | None, snap: Snapshot, sequence: int
) -> SubscriptionView | None:
    """The view after `snap`; None when `snap` is older than what the view already holds."""
    if current is not None and sequence and current.last_sequence and sequence < current.last_sequence:
        return None
    base: dict[str, Any] = dict(
        subscription_id=snap.subscription_id,
        account_id=snap.account_id,
        product_code=snap.product_code,
        product_name=snap.product_name,
        plan=snap.plan,
        seats=snap.seats,
        stage=snap.stage,
        shutoff_policy=snap.shutoff_policy,
        buyer_email=snap.buyer_email,
        buyer_name=snap.buyer_name,
        buyer_language=snap.buyer_language or "en",
        included_product_codes=snap.included_product_codes,
        last_sequence=max(sequence, current.last_sequence if current else 0),
    )
    if current is None:
        return SubscriptionView(access_until_time=snap.access_until_time, **base)
    return current.with_(
        access_until_time=snap.access_until_time or current.access_until_time,
        **base,
    )


def plan_event(event: SubscriptionEvent, current: dict[str, SubscriptionView]) -> ProjectionUpdate:
    """The projection changes of one subscription event, given the views it touches."""
    update = ProjectionUpdate()
    for snap in event.snapshots:
        view = apply_snapshot(current.get(snap.subscription_id), snap, event.sequence)
        if view is None:
            continue
        if event.event_type == UPGRADED:
            if snap.subscription_id == event.old_subscription_id:
                view = view.with_(
                    upgraded_to_subscription_id=event.new_subscription_id,
                    access_until_time=event.old_access_until_time or view.access_until_time,
                )
            elif snap.subscription_id == event.new_subscription_id:
                view = view.with_(upgraded_from_subscription_id=event.old_subscription_id)
        update.views.append(view)
        if view.buyer_email:
            update.buyers.append((view.account_id, view.buyer_email, view.buyer_name, view.buyer_language))
        if view.stage is Stage.CANCELLED:
            refunded = event.event_type == REFUNDED or event.stage_reason == "refunded"
            update.remove_assignments[view.subscription_id] = (
                REMOVED_REFUNDED if refunded else REMOVED_CANCELLED
            )
    return update
