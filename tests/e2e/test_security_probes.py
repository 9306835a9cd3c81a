"""The probes that once got through, run again with grpcurl against the four running services: a forged
operator or service header, another account's objects read and changed by a stranger, anonymous billing
calls, a forged event. Each is refused, and nothing of account A changes."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.conftest import auth, grpcurl, token

pytestmark = pytest.mark.e2e

S = "tenure.subscription.v1.SubscriptionService/"
B = "tenure.billing.v1.BillingService/"
E = "tenure.entitlement.v1.EntitlementService/"
N = "tenure.notification.v1.NotificationService/"
REFUSED = ("Code: Unauthenticated", "Code: PermissionDenied", "Code: NotFound")


def ok(addr: str, method: str, body: dict, who: list[str]) -> dict:
    r = grpcurl(*who, addr, method, data=json.dumps(body))
    assert r.returncode == 0, f"{method}: {r.stdout}{r.stderr}"
    return json.loads(r.stdout or "{}")


def refused(addr: str, method: str, body: dict, who: list[str], codes=REFUSED) -> str:
    r = grpcurl(*who, addr, method, data=json.dumps(body))
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{method} was let through: {out}"
    code = next((c for c in codes if c in out), None)
    assert code is not None, f"{method}: {out}"
    return code


def until(fn, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def world(stack):
    addr = stack["addr"]
    ada, bo = auth(token("--email", "ada@a.example")), auth(token("--email", "bo@b.example"))
    ops = auth(token("--operator"))
    made = {}
    for acct, who, email in (("acct-a", ada, "ada@a.example"), ("acct-b", bo, "bo@b.example")):
        pm = ok(
            addr["billing"],
            B + "AddPaymentMethod",
            {
                "request_id": "pm",
                "account_id": acct,
                "type": "PAYMENT_METHOD_TYPE_CARD",
                "card_number": "4242424242424242",
            },
            who,
        )["payment_method"]["payment_method_id"]
        created = ok(
            addr["subscription"],
            S + "CreateSubscription",
            {
                "request_id": "order",
                "account_id": acct,
                "buyer": {"email": email, "language": "en"},
                "product_code": "ACDLT",
                "term": "TERM_ANNUAL",
                "seats": 2,
                "currency_code": "USD",
                "country_code": "NO",
                "time_zone": "Europe/Oslo",
                "payment_method_id": pm,
            },
            who,
        )
        made[acct] = {
            "pm": pm,
            "sub": created["subscription"]["subscription_id"],
            "inv": created["invoice_id"],
        }
    until(
        lambda: ok(
            addr["billing"],
            B + "AddPayer",
            {"request_id": "payer", "account_id": "acct-a", "email": "pia@a.example"},
            ada,
        )
    )

    def first_mail() -> dict:
        found = ok(addr["notification"], N + "ListNotifications", {"account_id": "acct-a"}, ada)
        assert found.get("notifications"), "no mail yet"
        return found["notifications"][0]

    mail = until(first_mail)
    a = made["acct-a"]
    a["notification"] = mail["notification_id"]
    return {"addr": addr, "ada": ada, "bo": bo, "ops": ops, "a": a}


def snapshot(w) -> dict:
    """What a stranger's writes could have changed on account A, read as A's buyer."""
    addr, ada, a = w["addr"], w["ada"], w["a"]
    sub = ok(addr["subscription"], S + "GetSubscription", {"subscription_id": a["sub"]}, ada)["subscription"]
    return {
        "sub": {k: sub.get(k) for k in ("stage", "seats", "auto_renew", "renewal_seats", "term")},
        "invoices": len(
            ok(addr["billing"], B + "ListInvoices", {"account_id": "acct-a"}, ada).get("invoices", [])
        ),
        "payers": ok(addr["billing"], B + "ListPayers", {"account_id": "acct-a"}, ada).get("payers", []),
        "methods": ok(addr["billing"], B + "ListPaymentMethods", {"account_id": "acct-a"}, ada).get(
            "payment_methods", []
        ),
        "members": ok(addr["entitlement"], E + "ListMembers", {"account_id": "acct-a"}, ada).get(
            "members", []
        ),
        "assignments": ok(addr["entitlement"], E + "ListAssignments", {"account_id": "acct-a"}, ada).get(
            "assignments", []
        ),
        "profile": ok(addr["billing"], B + "GetBillingProfile", {"account_id": "acct-a"}, ada)["profile"],
    }


def test_forged_operator_and_service_headers_grant_nothing(world):
    addr = world["addr"]
    forged_ops = ["-H", "x-actor-role: operator"]
    for svc, method, body in [
        (
            "entitlement",
            E + "ChangeBuyer",
            {"request_id": "x", "account_id": "acct-a", "email": "eve@evil.example"},
        ),
        ("subscription", S + "SetExchangeRate", {"request_id": "x", "currency_code": "NOK", "rate": "1"}),
        ("subscription", S + "RunLifecycle", {}),
        ("subscription", S + "AdvanceClock", {"duration": "1s"}),
        ("billing", B + "RunBillingSweep", {}),
        ("notification", N + "RunDelivery", {}),
        ("notification", N + "RenderTemplate", {"kind": "NOTIFICATION_KIND_ORDER_CONFIRMATION"}),
        ("billing", "tenure.common.v1.ClockService/SetTime", {}),
    ]:
        assert refused(addr[svc], method, body, forged_ops) == "Code: Unauthenticated"
    forged_service = ["-H", "x-actor-role: service"]
    charge = {
        "request_id": "x",
        "account_id": "acct-a",
        "currency_code": "USD",
        "payment_method_id": world["a"]["pm"],
        "lines": [
            {"description": "x", "quantity": 1, "unit_price": {"currency_code": "USD", "units": "999"}}
        ],
    }
    credit = {
        "request_id": "x",
        "invoice_id": world["a"]["inv"],
        "amount": {"currency_code": "USD", "units": "10"},
    }
    for method, body in [(B + "CreateInvoice", charge), (B + "IssueCreditNote", credit)]:
        assert refused(addr["billing"], method, body, forged_service) == "Code: Unauthenticated"
        assert refused(addr["billing"], method, body, world["bo"]) == "Code: PermissionDenied"
        assert refused(addr["billing"], method, body, world["ada"]) == "Code: PermissionDenied"


def test_a_stranger_reads_and_changes_nothing_of_another_account(world):
    addr, bo, a = world["addr"], world["bo"], world["a"]
    before = snapshot(world)
    reads = [
        ("subscription", S + "GetSubscription", {"subscription_id": a["sub"]}),
        ("subscription", S + "ListSubscriptions", {"account_id": "acct-a"}),
        ("subscription", S + "GetLifecycleHistory", {"subscription_id": a["sub"]}),
        ("subscription", S + "GetSelfServiceOptions", {"subscription_id": a["sub"]}),
        ("billing", B + "GetBillingProfile", {"account_id": "acct-a"}),
        ("billing", B + "ListPaymentMethods", {"account_id": "acct-a"}),
        ("billing", B + "ListPayers", {"account_id": "acct-a"}),
        ("billing", B + "GetInvoice", {"invoice_id": a["inv"]}),
        ("billing", B + "ListInvoices", {"account_id": "acct-a"}),
        ("billing", B + "GetInvoicePdf", {"invoice_id": a["inv"]}),
        ("billing", B + "ListInstallments", {"subscription_id": a["sub"]}),
        ("billing", B + "ListCreditNotes", {"account_id": "acct-a"}),
        ("billing", B + "GetBalance", {"account_id": "acct-a"}),
        ("entitlement", E + "ListMembers", {"account_id": "acct-a"}),
        ("entitlement", E + "ListAssignments", {"account_id": "acct-a"}),
        ("entitlement", E + "GetSubscriptionAccess", {"subscription_id": a["sub"]}),
        ("entitlement", E + "GetSeatUsageReport", {"account_id": "acct-a"}),
        ("entitlement", E + "GetUserEntitlements", {"user_email": "ada@a.example"}),
        ("notification", N + "ListNotifications", {"account_id": "acct-a"}),
        ("notification", N + "GetNotification", {"notification_id": a["notification"]}),
    ]
    rid = {"request_id": uuid.uuid4().hex}
    writes = [
        ("subscription", S + "AddSeats", {**rid, "subscription_id": a["sub"], "seats": 5}),
        ("subscription", S + "SetAutoRenew", {**rid, "subscription_id": a["sub"], "auto_renew": False}),
        ("subscription", S + "RequestRefund", {**rid, "subscription_id": a["sub"]}),
        ("subscription", S + "SetRenewalSeats", {**rid, "subscription_id": a["sub"], "seats": 1}),
        ("subscription", S + "ChangeTerm", {**rid, "subscription_id": a["sub"], "term": "TERM_MONTHLY"}),
        ("subscription", S + "RenewSubscription", {**rid, "subscription_id": a["sub"]}),
        (
            "subscription",
            S + "ChangePaymentMethod",
            {**rid, "subscription_id": a["sub"], "payment_method_id": a["pm"]},
        ),
        (
            "subscription",
            S + "CreateSubscription",
            {
                **rid,
                "account_id": "acct-a",
                "buyer": {"email": "bo@b.example"},
                "product_code": "ACDLT",
                "term": "TERM_ANNUAL",
                "seats": 1,
                "currency_code": "USD",
                "country_code": "NO",
                "payment_method_id": a["pm"],
            },
        ),
        (
            "billing",
            B + "UpsertBillingProfile",
            {**rid, "account_id": "acct-a", "buyer_email": "bo@b.example"},
        ),
        (
            "billing",
            B + "AddPaymentMethod",
            {
                **rid,
                "account_id": "acct-a",
                "type": "PAYMENT_METHOD_TYPE_PAYPAL",
                "paypal_email": "bo@b.example",
            },
        ),
        ("billing", B + "RemovePaymentMethod", {**rid, "account_id": "acct-a", "payment_method_id": a["pm"]}),
        ("billing", B + "AddPayer", {**rid, "account_id": "acct-a", "email": "bo@b.example"}),
        ("billing", B + "RemovePayer", {**rid, "account_id": "acct-a", "email": "pia@a.example"}),
        ("billing", B + "PayInvoice", {**rid, "invoice_id": a["inv"], "payment_method_id": a["pm"]}),
        ("billing", B + "UpdateInvoiceDetails", {**rid, "invoice_id": a["inv"], "po_number": "PO-EVE"}),
        ("entitlement", E + "AssignSeat", {**rid, "subscription_id": a["sub"], "user_email": "bo@b.example"}),
        (
            "entitlement",
            E + "AssignRole",
            {**rid, "account_id": "acct-a", "email": "bo@b.example", "role": "ROLE_SECONDARY_ADMIN"},
        ),
    ]
    answers = {}
    for svc, method, body in reads + writes:
        answers[method] = refused(addr[svc], method, body, bo)
    # never a hint that A's objects exist: every one of them is "not found" to a stranger
    assert {
        m: c for m, c in answers.items() if c != "Code: NotFound" and not m.endswith("GetUserEntitlements")
    } == {}
    assert answers[E + "GetUserEntitlements"] == "Code: PermissionDenied"  # another person's entitlements
    assert snapshot(world) == before


def test_anonymous_billing_calls_are_refused(world):
    addr = world["addr"]
    for method, body in [
        (B + "ListPaymentMethods", {"account_id": "acct-a"}),
        (B + "AddPayer", {"request_id": "anon", "account_id": "acct-a", "email": "eve@evil.example"}),
        (B + "GetBalance", {"account_id": "acct-a"}),
    ]:
        assert refused(addr["billing"], method, body, []) == "Code: Unauthenticated"
    payers = ok(addr["billing"], B + "ListPayers", {"account_id": "acct-a"}, world["ada"])["payers"]
    assert [p["email"] for p in payers] == ["pia@a.example"]


def test_a_forged_event_gives_no_seats(world):
    addr = world["addr"]
    forged = {
        "event": {
            "event_id": str(uuid.uuid4()),
            "event_type": "subscription.created",
            "source": "subscription",
            "account_id": "acct-eve",
            "subscription_id": "sub-forged",
            "subscription_created": {
                "subscription": {
                    "subscription_id": "sub-forged",
                    "account_id": "acct-eve",
                    "seats": 100,
                    "stage": "STAGE_ACTIVE",
                    "product_code": "ACDLT",
                    "buyer_email": "eve@evil.example",
                }
            },
        }
    }
    for who, code in [([], "Code: Unauthenticated"), (world["bo"], "Code: PermissionDenied")]:
        assert refused(addr["entitlement"], "tenure.events.v1.EventSinkService/Deliver", forged, who) == code
    assert (
        refused(
            addr["entitlement"], E + "GetSubscriptionAccess", {"subscription_id": "sub-forged"}, world["ops"]
        )
        == "Code: NotFound"
    )
