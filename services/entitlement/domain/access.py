"""What each lifecycle stage allows: the rules §4 capability table, exactly.

| capability      | Active | Expired                  | Suspended                   | Cancelled           |
| product access  | full   | full                     | none                        | none                |
| user management | full   | full                     | assignments kept, read-only | assignments deleted |
| downloads       | full   | all but upgrades         | none                        | none                |
| reporting       | full   | none                     | none                        | none                |
| support         | full   | self-help                | self-help                   | self-help           |

`IMMEDIATE` products lose product access, downloads and reporting the moment they expire
(Expired and Suspended give them none). A Premium plan gets the premium support level while
Active. **Decision** for the trial (the seeds are silent): the product, user management and
downloads are full; there is no insights reporting and support is self-help.

The old side of an upgrade gives access until its `access_until_time` (30 days from the upgrade
order); after that it gives what a Cancelled subscription gives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.entitlement.domain.model import (
    AccessLevel,
    AccessReason,
    Capability,
    Grant,
    Plan,
    ShutoffPolicy,
    Stage,
)

F, L, RO, SH, N = (
    AccessLevel.FULL,
    AccessLevel.LIMITED,
    AccessLevel.READ_ONLY,
    AccessLevel.SELF_HELP,
    AccessLevel.NONE,
)
PA, UM, DL, REP, SUP = (
    Capability.PRODUCT_ACCESS,
    Capability.USER_MANAGEMENT,
    Capability.DOWNLOADS,
    Capability.REPORTING,
    Capability.SUPPORT,
)

# STANDARD shutoff policy: stage -> capability -> level.
STAGE_TABLE: dict[Stage, dict[Capability, AccessLevel]] = {
    Stage.TRIAL: {PA: F, UM: F, DL: F, REP: N, SUP: SH},
    Stage.ACTIVE: {PA: F, UM: F, DL: F, REP: F, SUP: F},
    Stage.EXPIRED: {PA: F, UM: F, DL: L, REP: N, SUP: SH},
    Stage.SUSPENDED: {PA: N, UM: RO, DL: N, REP: N, SUP: SH},
    Stage.CANCELLED: {PA: N, UM: N, DL: N, REP: N, SUP: SH},
}

# What an IMMEDIATE product loses once it has expired (Expired and Suspended give none).
IMMEDIATE_SHUTOFF_CAPABILITIES = frozenset({PA, DL, REP})
SHUTOFF_STAGES = frozenset({Stage.EXPIRED, Stage.SUSPENDED})

_STAGE_REASON = {
    Stage.TRIAL: AccessReason.STAGE_TRIAL,
    Stage.ACTIVE: AccessReason.GRANTED,
    Stage.EXPIRED: AccessReason.STAGE_EXPIRED,
    Stage.SUSPENDED: AccessReason.STAGE_SUSPENDED,
    Stage.CANCELLED: AccessReason.STAGE_CANCELLED,
}

# Among grants of equal level, the one in the liveliest stage is reported.
_STAGE_PREFERENCE = {
    Stage.ACTIVE: 5,
    Stage.TRIAL: 4,
    Stage.EXPIRED: 3,
    Stage.SUSPENDED: 2,
    Stage.CANCELLED: 1,
}


def level_for(
    stage: Stage,
    capability: Capability,
    shutoff_policy: ShutoffPolicy = ShutoffPolicy.STANDARD,
    plan: Plan = Plan.STANDARD,
) -> AccessLevel:
    """The level a subscription in `stage` gives its seat holders for `capability`."""
    return _level_and_reason(stage, capability, shutoff_policy, plan, ended=False)[0]


def _level_and_reason(
    stage: Stage, capability: Capability, shutoff_policy: ShutoffPolicy, plan: Plan, *, ended: bool
) -> tuple[AccessLevel, AccessReason]:
    if ended:
        return STAGE_TABLE[Stage.CANCELLED][capability], AccessReason.ACCESS_ENDED
    if (
        shutoff_policy is ShutoffPolicy.IMMEDIATE
        and stage in SHUTOFF_STAGES
        and capability in IMMEDIATE_SHUTOFF_CAPABILITIES
    ):
        return AccessLevel.NONE, AccessReason.IMMEDIATE_SHUTOFF
    level = STAGE_TABLE[stage][capability]
    if capability is SUP and stage is Stage.ACTIVE and plan is Plan.PREMIUM:
        level = AccessLevel.PREMIUM
    return level, _STAGE_REASON[stage]


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    level: AccessLevel
    reason: AccessReason
    stage: Stage | None = None
    subscription_id: str = ""
    access_until_time: datetime | None = None


NO_SEAT = AccessDecision(allowed=False, level=AccessLevel.NONE, reason=AccessReason.NO_SEAT)


def decide(grant: Grant, capability: Capability, now: datetime) -> AccessDecision:
    """The access one seat gives for one capability at `now`."""
    ended = grant.access_until_time is not None and now >= grant.access_until_time
    level, reason = _level_and_reason(grant.stage, capability, grant.shutoff_policy, grant.plan, ended=ended)
    return AccessDecision(
        allowed=level.allowed,
        level=level,
        reason=reason,
        stage=grant.stage,
        subscription_id=grant.subscription_id,
        access_until_time=grant.access_until_time,
    )


def best_access(grants: Iterable[Grant], capability: Capability, now: datetime) -> AccessDecision:
    """The best level over every seat the user holds of one product (NO_SEAT when none)."""
    best: AccessDecision | None = None
    best_key: tuple[Any, ...] | None = None
    for grant in grants:
        d = decide(grant, capability, now)
        key = (
            d.level.rank,
            _STAGE_PREFERENCE[grant.stage],
            # an open-ended seat beats one that ends; a later end beats an earlier one
            grant.access_until_time is None,
            grant.access_until_time or now,
            # deterministic among equals: the smallest id wins
            _Desc(grant.subscription_id),
        )
        if best_key is None or key > best_key:
            best, best_key = d, key
    return best if best is not None else NO_SEAT


def capability_matrix(grant: Grant, now: datetime) -> dict[Capability, AccessLevel]:
    """Every capability's level for one seat (GetUserEntitlements, GetSubscriptionAccess)."""
    return {c: decide(grant, c, now).level for c in Capability}


class _Desc:
    """Wraps a string so that a smaller string compares greater."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __gt__(self, other: _Desc) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)
