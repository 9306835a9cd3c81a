"""Who may call each EntitlementService RPC (rules §7), checked before the servicer runs.

Admins manage teams and seats; the buyer and admins see the team, assignments, access and usage; a
person sees their own assignments, entitlements and access (and records their own activations);
products (as services) ask CheckAccess, GetUserEntitlements and RecordActivation for any user; only an
operator changes the buyer. A person on no team of the account gets NOT_FOUND.
"""

from __future__ import annotations

from shared.auth.policy import (
    ADMINS,
    BUYER,
    OPERATOR,
    PRIMARY_ADMIN,
    SECONDARY_ADMIN,
    SELF,
    SERVICE,
    ChoiceTarget,
    Directory,
    FieldTarget,
    LookupTarget,
    rule,
)
from shared.errors import NotFound
from shared.grpc.auth import Permissions

SERVICE_NAME = "tenure.entitlement.v1.EntitlementService"
READERS = (BUYER, *ADMINS, OPERATOR, SERVICE)

TABLE = {
    # teams: admins name admins (the domain refuses a secondary admin); only an operator changes the buyer
    "ListMembers": rule(READERS, target="account"),
    # operators look accounts up by a member's e-mail or a name (rules §7: operators read everything)
    "FindAccounts": rule(OPERATOR, SERVICE),
    "AssignRole": rule(PRIMARY_ADMIN, SECONDARY_ADMIN, OPERATOR, target="account"),
    "RevokeRole": rule(PRIMARY_ADMIN, SECONDARY_ADMIN, OPERATOR, target="account"),
    "ChangeBuyer": rule(OPERATOR),
    # seats: admins assign them; a person lists their own (the servicer keeps them to their own)
    "AssignSeat": rule(*ADMINS, target="subscription"),
    "UnassignSeat": rule(*ADMINS, target="subscription"),
    "ListAssignments": rule(READERS, SELF, self_field="user_email", target="assignments"),
    # access: the user themselves, and products (services) for any user
    "CheckAccess": rule(SELF, SERVICE, OPERATOR, self_field="user_email"),
    "GetUserEntitlements": rule(SELF, SERVICE, OPERATOR, self_field="user_email"),
    "GetSubscriptionAccess": rule(READERS, target="subscription"),
    "RecordActivation": rule(SELF, SERVICE, self_field="user_email"),
    # usage: the buyer and admins
    "GetSeatUsageReport": rule(BUYER, *ADMINS, OPERATOR, target="usage"),
}


_ACCOUNT = FieldTarget("account_id")
_SUBSCRIPTION_ID = FieldTarget("subscription_id", "subscription", "SUBSCRIPTION_NOT_FOUND")


def hidden(request) -> NotFound:
    """What a person on no team of the account is told about a request naming an account or a
    subscription: the answer for one that does not exist."""
    if request.account_id:
        return _ACCOUNT.not_found(request)
    return _SUBSCRIPTION_ID.not_found(request)


def permissions(db, directory: Directory) -> Permissions:
    def account_of(subscription_id: str) -> str | None:
        with db.reading() as uow:
            return uow.subscriptions.account_of(subscription_id)

    account = FieldTarget("account_id")
    subscription = LookupTarget("subscription_id", "subscription", "SUBSCRIPTION_NOT_FOUND", account_of)

    def account_or_subscription(request):
        """ListAssignments and GetSeatUsageReport name an account, a subscription, or both."""
        if request.account_id:
            return account, request
        return (subscription, request) if request.subscription_id else None

    both = ChoiceTarget(account_or_subscription)
    return Permissions(
        SERVICE_NAME,
        TABLE,
        {"account": account, "subscription": subscription, "assignments": both, "usage": both},
        directory,
    )
