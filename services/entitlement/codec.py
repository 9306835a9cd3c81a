"""The entitlement service's protobuf conversions: enum values by name, timestamps, the decoding of
`subscription.*` events into the projection's `SubscriptionEvent`, and the events it publishes."""

from __future__ import annotations

from datetime import datetime

from services.entitlement.domain.model import (
    AccessLevel,
    AccessReason,
    Capability,
    Member,
    Plan,
    Role,
    ShutoffPolicy,
    Stage,
    SubscriptionView,
)
from services.entitlement.domain.projection import UPGRADED, Snapshot, SubscriptionEvent
from services.entitlement.domain.roles import RoleChange
from shared.errors import InvalidInput
from shared.grpc.codec import time_of, timestamp
from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2
from tenure.events.v1 import events_pb2


def _to_pb(enum_cls, pb_enum, prefix: str) -> dict:
    return {m: pb_enum.Value(f"{prefix}_{m.name}") for m in enum_cls}


def _from_pb(enum_cls, pb_enum, prefix: str) -> dict:
    return {pb_enum.Value(f"{prefix}_{m.name}"): m for m in enum_cls}


STAGE_PB = _to_pb(Stage, common_pb2.Stage, "STAGE")
STAGE_OF = _from_pb(Stage, common_pb2.Stage, "STAGE")
CAPABILITY_PB = _to_pb(Capability, common_pb2.Capability, "CAPABILITY")
CAPABILITY_OF = _from_pb(Capability, common_pb2.Capability, "CAPABILITY")
LEVEL_PB = _to_pb(AccessLevel, common_pb2.AccessLevel, "ACCESS_LEVEL")
ROLE_PB = _to_pb(Role, common_pb2.Role, "ROLE")
ROLE_OF = _from_pb(Role, common_pb2.Role, "ROLE")
PLAN_PB = _to_pb(Plan, common_pb2.Plan, "PLAN")
PLAN_OF = _from_pb(Plan, common_pb2.Plan, "PLAN")
POLICY_PB = _to_pb(ShutoffPolicy, common_pb2.ShutoffPolicy, "SHUTOFF_POLICY")
POLICY_OF = _from_pb(ShutoffPolicy, common_pb2.ShutoffPolicy, "SHUTOFF_POLICY")
REASON_PB = _to_pb(AccessReason, entitlement_pb2.AccessReason, "ACCESS_REASON")


def role_pb(role: Role) -> int:
    return ROLE_PB[role]


def role_of(value: int, *, required: bool = True) -> Role | None:
    if value == 0:
        if required:
            raise InvalidInput("role is required", field="role")
        return None
    try:
        return ROLE_OF[value]
    except KeyError:
        raise InvalidInput(f"unknown role {value}", field="role") from None


def capability_of(value: int) -> Capability:
    try:
        return CAPABILITY_OF[value]
    except KeyError:
        raise InvalidInput(
            "capability must be one of CAPABILITY_PRODUCT_ACCESS, CAPABILITY_USER_MANAGEMENT, "
            "CAPABILITY_DOWNLOADS, CAPABILITY_REPORTING, CAPABILITY_SUPPORT",
            field="capability",
        ) from None


ts = timestamp


def from_ts(msg, field: str) -> datetime | None:
    if not msg.HasField(field):
        return None
    return time_of(getattr(msg, field))


def capabilities_pb(matrix) -> list[entitlement_pb2.CapabilityAccess]:
    return [
        entitlement_pb2.CapabilityAccess(capability=CAPABILITY_PB[c], level=LEVEL_PB[lvl])
        for c, lvl in matrix.items()
    ]


# --- events ------------------------------------------------------------------------------------


def snapshot_of(msg: events_pb2.SubscriptionSnapshot) -> Snapshot:
    return Snapshot(
        subscription_id=msg.subscription_id,
        account_id=msg.account_id,
        product_code=msg.product_code,
        product_name=msg.product_name,
        plan=PLAN_OF.get(msg.plan, Plan.STANDARD),
        seats=msg.seats,
        # a snapshot always carries its stage; an old producer that leaves it out means Active
        stage=STAGE_OF.get(msg.stage, Stage.ACTIVE),
        shutoff_policy=POLICY_OF.get(msg.shutoff_policy, ShutoffPolicy.STANDARD),
        buyer_email=msg.buyer_email.strip().lower(),
        buyer_name=msg.buyer_name,
        buyer_language=msg.buyer_language,
        access_until_time=from_ts(msg, "access_until_time"),
        included_product_codes=tuple(msg.included_product_codes),
    )


def subscription_event_of(ev: events_pb2.Event) -> SubscriptionEvent | None:
    """The projection's view of a `subscription.*` event; None when it carries no snapshot."""
    which = ev.WhichOneof("payload")
    if which is None:
        return None
    payload = getattr(ev, which)
    snapshots = []
    for fd, value in payload.ListFields():
        if (
            fd.message_type is not None
            and fd.message_type.full_name == "tenure.events.v1.SubscriptionSnapshot"
        ):
            if value.subscription_id:
                snapshots.append(snapshot_of(value))
    if not snapshots:
        return None
    kwargs = {}
    if ev.event_type == UPGRADED and which == "subscription_upgraded":
        kwargs = dict(
            old_subscription_id=payload.old_subscription.subscription_id or None,
            new_subscription_id=payload.new_subscription.subscription_id or None,
            old_access_until_time=from_ts(payload, "old_access_until_time"),
        )
    if which == "stage_changed":
        kwargs["stage_reason"] = payload.reason
    return SubscriptionEvent(
        event_type=ev.event_type, sequence=ev.sequence, snapshots=tuple(snapshots), **kwargs
    )


def role_changed_event(
    account_id: str, member: Member, change: RoleChange, actor_email: str
) -> events_pb2.RoleChanged:
    return events_pb2.RoleChanged(
        account_id=account_id,
        email=member.email,
        name=member.name,
        language=member.language,
        role=role_pb(change.role),
        granted=change.granted,
        actor_email=actor_email,
    )


def seat_assigned_event(
    view: SubscriptionView, email: str, name: str, language: str
) -> events_pb2.SeatAssigned:
    return events_pb2.SeatAssigned(
        account_id=view.account_id,
        subscription_id=view.subscription_id,
        product_code=view.product_code,
        product_name=view.product_name,
        user_email=email,
        user_name=name,
        language=language,
    )


def seat_unassigned_event(view: SubscriptionView, email: str, reason: str) -> events_pb2.SeatUnassigned:
    return events_pb2.SeatUnassigned(
        account_id=view.account_id,
        subscription_id=view.subscription_id,
        product_code=view.product_code,
        user_email=email,
        reason=reason,
    )
