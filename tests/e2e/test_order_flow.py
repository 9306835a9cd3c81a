"""One order through all four services, driven with grpcurl as an operator or the portal would."""

from __future__ import annotations

import email
import json
import time
from email.header import decode_header, make_header

import pytest

from tests.e2e.conftest import auth, grpcurl, token

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kari() -> list[str]:
    return auth(token("--email", "kari@example.no"))


def call(addr: str, method: str, body: dict, who: list[str]) -> dict:
    r = grpcurl(*who, addr, method, data=json.dumps(body))
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def mails(folder) -> list[email.message.Message]:
    if not folder.exists():
        return []
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


def subject(m) -> str:
    return str(make_header(decode_header(m["Subject"])))


def test_an_order_is_invoiced_charged_projected_and_confirmed_in_the_buyers_language(stack, kari):
    addr = stack["addr"]
    pm = call(
        addr["billing"],
        "tenure.billing.v1.BillingService/AddPaymentMethod",
        {
            "request_id": "e2e-pm-1",
            "account_id": "acct-e2e",
            "type": "PAYMENT_METHOD_TYPE_CARD",
            "card_number": "4242424242424242",
        },
        kari,
    )["payment_method"]["payment_method_id"]
    order = {
        "request_id": "e2e-order-1",
        "account_id": "acct-e2e",
        "buyer": {"email": "kari@example.no", "name": "Kari Nordmann", "language": "nb"},
        "product_code": "ACDLT",
        "plan": "PLAN_STANDARD",
        "term": "TERM_ANNUAL",
        "seats": 3,
        "currency_code": "USD",
        "country_code": "NO",
        "time_zone": "Europe/Oslo",
        "channel": "CHANNEL_DIRECT_ONLINE",
        "payment_method_id": pm,
    }
    created = call(
        addr["subscription"], "tenure.subscription.v1.SubscriptionService/CreateSubscription", order, kari
    )
    again = call(
        addr["subscription"], "tenure.subscription.v1.SubscriptionService/CreateSubscription", order, kari
    )
    assert again["order_number"] == created["order_number"]  # a retried order is the same order
    sub = created["subscription"]
    assert sub["stage"] == "STAGE_ACTIVE"
    assert sub["renewal_date"] == {"year": 2025, "month": 6, "day": 10}

    invoice = call(
        addr["billing"],
        "tenure.billing.v1.BillingService/GetInvoice",
        {"invoice_id": created["invoice_id"]},
        kari,
    )["invoice"]
    assert invoice["status"] == "INVOICE_STATUS_PAID"
    assert invoice["total"] == {
        "currency_code": "USD",
        "units": "1762",
        "nanos": 500000000,
    }  # 3 × 470 + 25 % VAT
    invoices = call(
        addr["billing"], "tenure.billing.v1.BillingService/ListInvoices", {"account_id": "acct-e2e"}, kari
    )["invoices"]
    assert len(invoices) == 1  # charged once

    deadline = time.monotonic() + 20
    members = {}
    while time.monotonic() < deadline:
        r = grpcurl(
            *kari,
            addr["entitlement"],
            "tenure.entitlement.v1.EntitlementService/ListMembers",
            data=json.dumps({"account_id": "acct-e2e"}),
        )  # NOT_FOUND until entitlement has the order's event: the team does not exist before it
        members = json.loads(r.stdout) if r.returncode == 0 else {}
        if members.get("members"):
            break
        time.sleep(0.2)
    assert members["members"][0]["email"] == "kari@example.no"
    assert set(members["members"][0]["roles"]) == {"ROLE_BUYER", "ROLE_PRIMARY_ADMIN"}

    folder = stack["tmp"] / "mail"
    while time.monotonic() < deadline and not any(
        created["order_number"] in subject(m) for m in mails(folder)
    ):
        time.sleep(0.2)
    confirmations = [m for m in mails(folder) if created["order_number"] in subject(m)]
    assert len(confirmations) == 1
    m = confirmations[0]
    assert subject(m).startswith("Ordrebekreftelse")  # Norwegian, the buyer's language
    assert "kari@example.no" in m["To"]
    text = next(p for p in m.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert created["order_number"] in text and "1 762,50" in text.replace("\xa0", " ")
