"""An operator rehearses a subscription's year with grpcurl against the four running services on the test
clock: AdvanceClock moves every service's clock, runs the sweeps that came due and returns when every
outbox is drained, so entitlement already knows the new stage when the call returns."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import auth, grpcurl, token

pytestmark = pytest.mark.e2e


def call(addr: str, method: str, body: dict, *headers: str) -> dict:
    r = grpcurl(*headers, "-d", json.dumps(body), addr, method)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout or "{}")


def test_operator_advances_a_year_and_every_service_follows(stack):
    addr = stack["addr"]
    sub, billing, ent = addr["subscription"], addr["billing"], addr["entitlement"]
    kari = auth(token("--email", "kari@example.no"))
    ops = auth(token("--operator"))
    pm = call(
        billing,
        "tenure.billing.v1.BillingService/AddPaymentMethod",
        {
            "requestId": uuid.uuid4().hex,
            "accountId": "acct-e2e",
            "type": "PAYMENT_METHOD_TYPE_CARD",
            "cardNumber": "4242424242424242",
        },
        *kari,
    )["payment_method"]["payment_method_id"]
    created = call(
        sub,
        "tenure.subscription.v1.SubscriptionService/CreateSubscription",
        {
            "requestId": uuid.uuid4().hex,
            "accountId": "acct-e2e",
            "buyer": {"email": "kari@example.no", "name": "Kari Nordmann", "language": "nb"},
            "productCode": "ACDLT",
            "plan": "PLAN_STANDARD",
            "term": "TERM_ANNUAL",
            "seats": 1,
            "currencyCode": "USD",
            "countryCode": "NO",
            "timeZone": "Europe/Oslo",
            "channel": "CHANNEL_DIRECT_ONLINE",
            "paymentMethodId": pm,
            "autoRenew": False,
        },
        *kari,
    )["subscription"]
    sid = created["subscription_id"]
    assert created["expiry_time"] == "2025-06-09T21:59:59Z"  # 23:59:59 in Oslo

    for who, code in [([], "Unauthenticated"), (kari, "PermissionDenied")]:
        r = grpcurl(
            *who,
            "-d",
            json.dumps({"toTime": "2025-06-10T00:00:00+02:00"}),
            sub,
            "tenure.subscription.v1.SubscriptionService/AdvanceClock",
        )
        assert r.returncode != 0 and code in r.stdout + r.stderr  # operators only

    moved = call(
        sub,
        "tenure.subscription.v1.SubscriptionService/AdvanceClock",
        {"requestId": uuid.uuid4().hex, "toTime": "2025-06-10T00:00:00+02:00"},
        *ops,
    )
    # one step per instant something came due (three reminders and the expiry), not one per day
    assert moved["now_time"] == "2025-06-09T22:00:00Z" and moved["steps"] == 4
    for name in ("billing", "entitlement", "notification"):
        t = call(addr[name], "tenure.common.v1.ClockService/GetTime", {}, *kari)
        assert t["now_time"] == "2025-06-09T22:00:00Z" and t["test_clock"]
    got = call(
        sub, "tenure.subscription.v1.SubscriptionService/GetSubscription", {"subscriptionId": sid}, *kari
    )
    assert got["subscription"]["stage"] == "STAGE_EXPIRED"
    history = call(
        sub, "tenure.subscription.v1.SubscriptionService/GetLifecycleHistory", {"subscriptionId": sid}, *kari
    )["transitions"]
    assert [(h.get("from_stage"), h["to_stage"], h.get("reason")) for h in history] == [
        (None, "STAGE_ACTIVE", "created"),
        ("STAGE_ACTIVE", "STAGE_EXPIRED", "term_ended"),
    ]
    assert history[1]["transition_time"] == "2025-06-09T22:00:00Z"
    access = call(
        ent,
        "tenure.entitlement.v1.EntitlementService/GetSubscriptionAccess",
        {"subscriptionId": sid},
        *ops,
    )
    assert access["stage"] == "STAGE_EXPIRED"  # delivered before AdvanceClock returned
