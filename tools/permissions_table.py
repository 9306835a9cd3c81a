"""Print the README's permission table from the services' tables (a test keeps the README in step)."""

from __future__ import annotations

from services.billing.permissions import TABLE as BILLING
from services.entitlement.permissions import TABLE as ENTITLEMENT
from services.notification.permissions import TABLE as NOTIFICATION
from services.subscription.permissions import TABLE as SUBSCRIPTION
from shared.auth.policy import Rule
from shared.grpc.auth import CLOCK_PERMISSIONS

ORDER = [
    "buyer",
    "primary_admin",
    "secondary_admin",
    "payer",
    "user",
    "self",
    "member",
    "person",
    "service",
    "operator",
]
SHOWN = {
    "buyer": "buyer",
    "primary_admin": "primary admin",
    "secondary_admin": "secondary admin",
    "payer": "payer",
    "user": "user",
    "self": "the person named",
    "member": "any member",
    "person": "any signed-in person",
    "service": "service",
    "operator": "operator",
}
SERVICES = [
    ("SubscriptionService", SUBSCRIPTION),
    ("BillingService", BILLING),
    ("EntitlementService", ENTITLEMENT),
    ("NotificationService", NOTIFICATION),
    ("ClockService", CLOCK_PERMISSIONS.table),
    ("EventSinkService", {"Deliver": Rule(frozenset({"service"}))}),
]


def who(rule: Rule) -> str:
    names = sorted((a.lower() for a in rule.allow), key=ORDER.index)
    shown = dict(SHOWN)
    if rule.target:
        shown["person"] = "any signed-in person, naming no account (their own are listed)"
    text = ", ".join(shown[n] for n in names)
    if rule.opens_account:
        text += "; a person may open a new account with it"
    return text


def table() -> str:
    rows = ["| service | RPC | who may call it |", "| --- | --- | --- |"]
    for service, rules in SERVICES:
        for rpc, rule in rules.items():
            rows.append(f"| {service} | `{rpc}` | {who(rule)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
