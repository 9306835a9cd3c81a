"""Print the README's permission table from the services' tables (a test keeps the README in step)."""

from __future__ import annotations

from services.billing.permissions import TABLE as BILLING
from services.entitlement.permissions import TABLE as ENTITLEMENT
from services.notification.permissions import TABLE as NOTIFICATION
from services.subscription.permissions import TABLE as SUBSCRIPTION
from shared.auth.policy import Rule
from shared.grpc.auth import CLOCK_PERMISSIONS, event_sink_permissions

ORDER = [
    "buyer",
    "primary_admin",
    "secondary_admin",
    "payer",
    "user",
    "self",
    "member",
    "person",
    "partner",
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
    "partner": "a partner's staff (on accounts their partner quoted or sold to)",
    "service": "service",
    "operator": "operator",
}
#: Every served proto service → its permission table (the README's table and the permission matrix).
TABLES: dict[str, dict[str, Rule]] = {
    "tenure.subscription.v1.SubscriptionService": SUBSCRIPTION,
    "tenure.billing.v1.BillingService": BILLING,
    "tenure.entitlement.v1.EntitlementService": ENTITLEMENT,
    "tenure.notification.v1.NotificationService": NOTIFICATION,
    CLOCK_PERMISSIONS.service: CLOCK_PERMISSIONS.table,
    event_sink_permissions().service: event_sink_permissions().table,
}


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
    for service, rules in TABLES.items():
        for rpc, rule in rules.items():
            rows.append(f"| {service.rsplit('.', 1)[1]} | `{rpc}` | {who(rule)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
