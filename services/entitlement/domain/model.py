"""The vocabulary of the entitlement domain: stages, capabilities, levels, roles and the local
view of a subscription built from the subscription service's events.

The enum member names are the proto value names without their prefix (`Stage.ACTIVE` is
`STAGE_ACTIVE` on the wire), so the servicer maps them by name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.errors import InvalidInput


class Stage(enum.Enum):
    TRIAL = "TRIAL"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    SUSPENDED = "SUSPENDED"
    CANCELLED = "CANCELLED"


class Capability(enum.Enum):
    PRODUCT_ACCESS = "PRODUCT_ACCESS"
    USER_MANAGEMENT = "USER_MANAGEMENT"
    DOWNLOADS = "DOWNLOADS"
    REPORTING = "REPORTING"
    SUPPORT = "SUPPORT"


class AccessLevel(enum.Enum):
    FULL = "FULL"
    LIMITED = "LIMITED"  # downloads without upgrades (new versions)
    READ_ONLY = "READ_ONLY"  # assignments kept, read-only
    SELF_HELP = "SELF_HELP"
    NONE = "NONE"
    PREMIUM = "PREMIUM"  # premium support (Premium plan, while Active)

    @property
    def rank(self) -> int:
        """Higher is better; used to pick the best level over several subscriptions."""
        return _RANK[self]

    @property
    def allowed(self) -> bool:
        return self is not AccessLevel.NONE


_RANK = {
    AccessLevel.NONE: 0,
    AccessLevel.SELF_HELP: 1,
    AccessLevel.READ_ONLY: 2,
    AccessLevel.LIMITED: 3,
    AccessLevel.FULL: 4,
    AccessLevel.PREMIUM: 5,
}


class ShutoffPolicy(enum.Enum):
    STANDARD = "STANDARD"
    IMMEDIATE = "IMMEDIATE"


class Plan(enum.Enum):
    STANDARD = "STANDARD"
    PREMIUM = "PREMIUM"


class Role(enum.Enum):
    BUYER = "BUYER"
    PRIMARY_ADMIN = "PRIMARY_ADMIN"
    SECONDARY_ADMIN = "SECONDARY_ADMIN"
    PAYER = "PAYER"
    USER = "USER"
    OPERATOR = "OPERATOR"


ADMIN_ROLES = frozenset({Role.PRIMARY_ADMIN, Role.SECONDARY_ADMIN})


class AccessReason(enum.Enum):
    GRANTED = "GRANTED"
    NO_SEAT = "NO_SEAT"
    STAGE_TRIAL = "STAGE_TRIAL"
    STAGE_EXPIRED = "STAGE_EXPIRED"
    STAGE_SUSPENDED = "STAGE_SUSPENDED"
    STAGE_CANCELLED = "STAGE_CANCELLED"
    IMMEDIATE_SHUTOFF = "IMMEDIATE_SHUTOFF"
    ACCESS_ENDED = "ACCESS_ENDED"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling: the verified caller's e-mail (a person's, or an operator's when their token
    names one) and whether they are an operator."""

    email: str | None
    operator: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """The entitlement service's projection of one subscription."""

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
    buyer_language: str = "en"
    access_until_time: datetime | None = None
    upgraded_to_subscription_id: str | None = None
    upgraded_from_subscription_id: str | None = None
    last_sequence: int = 0
    # products a seat also grants: the members of a collection
    included_product_codes: tuple[str, ...] = ()

    def access_ended(self, now: datetime) -> bool:
        """True once the upgrade overlap of the old side is over."""
        return self.access_until_time is not None and now >= self.access_until_time

    def with_(self, **changes: Any) -> SubscriptionView:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Grant:
    """What CheckAccess needs of one seat a user holds: the subscription's access-relevant state."""

    subscription_id: str
    product_code: str
    plan: Plan
    stage: Stage
    shutoff_policy: ShutoffPolicy
    access_until_time: datetime | None = None
    account_id: str = ""
    product_name: str = ""
    included_product_codes: tuple[str, ...] = ()

    def covers(self, product_code: str) -> bool:
        """A seat grants its own product and, on a collection, every product the collection contains."""
        return product_code == self.product_code or product_code in self.included_product_codes

    @classmethod
    def of(cls, view: SubscriptionView) -> Grant:
        return cls(
            subscription_id=view.subscription_id,
            product_code=view.product_code,
            plan=view.plan,
            stage=view.stage,
            shutoff_policy=view.shutoff_policy,
            access_until_time=view.access_until_time,
            account_id=view.account_id,
            product_name=view.product_name,
            included_product_codes=view.included_product_codes,
        )


@dataclass(slots=True)
class Member:
    """A person on an account team with the roles stored for them (BUYER, the admin roles and PAYER;
    USER is not stored: it follows the person's live seats)."""

    email: str
    name: str = ""
    language: str = "en"
    roles: set[Role] = field(default_factory=set)

    def has(self, role: Role) -> bool:
        return role in self.roles


def normalize_email(email: str, field_name: str = "email") -> str:
    """Lower-cased, trimmed e-mail; refuses what is plainly not an address."""
    value = (email or "").strip().lower()
    if not value:
        raise InvalidInput(f"{field_name} is required", field=field_name)
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or " " in value or domain.startswith("."):
        raise InvalidInput(f"{field_name} {email!r} is not an e-mail address", field=field_name)
    return value
