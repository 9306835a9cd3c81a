"""Fixtures of the notification service tests: a real SMTP server (aiosmtpd), stand-ins for the
entitlement and billing services it asks for recipients and invoice PDFs, and event builders.

`app.api` calls the service as the operator, `app.sink` delivers events as a Tenure service, and
`api_as(app, person(...))` reads the log as a person."""

from __future__ import annotations

import socket
import time
import uuid
from concurrent import futures
from datetime import date
from email import message_from_bytes, policy

import grpc
import pytest
from aiosmtpd.controller import Controller
from google.protobuf import timestamp_pb2
from google.type import date_pb2

from shared.money import to_proto
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2, entitlement_pb2_grpc
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tenure.notification.v1 import notification_pb2_grpc
from tests.auth import Metadata, channel, operator, service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


class Inbox:
    """Collects what the SMTP server accepted."""

    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, email: str):
        return [m for rcpts, m in self.messages if email in rcpts]


class Smtp:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    server = Smtp(free_port())
    server.start()
    yield server
    server.stop()


class FakePeers(entitlement_pb2_grpc.EntitlementServiceServicer, billing_pb2_grpc.BillingServiceServicer):
    """What the entitlement and billing services answer: teams, payers, invoices and their PDFs."""

    def __init__(self) -> None:
        self.members: dict[str, list[entitlement_pb2.Member]] = {}
        self.payer_list: dict[str, list[billing_pb2.Payer]] = {}
        self.pdfs: dict[str, bytes] = {}
        self.invoices: dict[str, billing_pb2.Invoice] = {}  # GetInvoice, ListInvoices
        self.calls: list[str] = []
        self.down = False  # answer UNAVAILABLE to everything, as a service that is down

    def member(self, account_id: str, email: str, name: str, language: str, *roles: int) -> None:
        self.members.setdefault(account_id, []).append(
            entitlement_pb2.Member(
                account_id=account_id, email=email, name=name, language=language, roles=roles
            )
        )

    def payer(self, account_id: str, email: str, name: str, language: str) -> None:
        self.payer_list.setdefault(account_id, []).append(
            billing_pb2.Payer(email=email, name=name, language=language)
        )

    def ListMembers(self, request, context):
        self.calls.append("ListMembers")
        if self.down:
            context.abort(grpc.StatusCode.UNAVAILABLE, "entitlement is down")
        found = [
            m for m in self.members.get(request.account_id, []) if not request.role or request.role in m.roles
        ]
        return entitlement_pb2.ListMembersResponse(members=found)

    def ListPayers(self, request, context):
        self.calls.append("ListPayers")
        return billing_pb2.ListPayersResponse(payers=self.payer_list.get(request.account_id, []))

    def GetInvoice(self, request, context):
        self.calls.append("GetInvoice")
        if request.invoice_id not in self.invoices:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such invoice")
        return billing_pb2.GetInvoiceResponse(invoice=self.invoices[request.invoice_id])

    def ListInvoices(self, request, context):
        self.calls.append("ListInvoices")
        found = [
            i
            for i in self.invoices.values()
            if i.account_id == request.account_id
            and (not request.subscription_id or i.subscription_id == request.subscription_id)
            and (not request.status or i.status == request.status)
        ]
        return billing_pb2.ListInvoicesResponse(invoices=found)

    def GetInvoicePdf(self, request, context):
        self.calls.append("GetInvoicePdf")
        if request.invoice_id not in self.pdfs:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such invoice")
        return billing_pb2.GetInvoicePdfResponse(
            pdf=self.pdfs[request.invoice_id], filename=f"{request.invoice_id}.pdf"
        )


@pytest.fixture
def peers():
    fake = FakePeers()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    entitlement_pb2_grpc.add_EntitlementServiceServicer_to_server(fake, server)
    billing_pb2_grpc.add_BillingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    fake.addr = f"127.0.0.1:{port}"
    yield fake
    server.stop(0)


def start_notification(start_service, peers, smtp_port: int | None, **overrides):
    settings = dict(
        entitlement_addr=peers.addr,
        billing_addr=peers.addr,
        delivery_interval_seconds=0.05,
        client_timeout_seconds=2.0,
    )
    if smtp_port is not None:
        settings.update(smtp_host="127.0.0.1", smtp_port=smtp_port)
    settings.update(overrides)
    app = start_service("notification", **settings)
    app.api = notification_pb2_grpc.NotificationServiceStub(channel(app.addr, default=operator()))
    app.sink = events_pb2_grpc.EventSinkServiceStub(channel(app.addr, default=service("subscription")))
    return app


def api_as(app, caller: Metadata) -> notification_pb2_grpc.NotificationServiceStub:
    """The notification API called as `caller` (tests.auth: person(...), service(), or no token: [])."""
    return notification_pb2_grpc.NotificationServiceStub(channel(app.addr, default=caller or None))


# ---- event builders --------------------------------------------------------------------------


def _date(d: date) -> date_pb2.Date:
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def snapshot(
    account_id: str, buyer_email: str, buyer_language: str = "en", **kw
) -> events_pb2.SubscriptionSnapshot:
    return events_pb2.SubscriptionSnapshot(
        subscription_id=kw.get("subscription_id", "sub_1"),
        account_id=account_id,
        product_code="ACDLT",
        product_name="AutoCAD LT",
        plan=common_pb2.PLAN_STANDARD,
        term=common_pb2.TERM_ANNUAL,
        seats=kw.get("seats", 3),
        stage=common_pb2.STAGE_ACTIVE,
        shutoff_policy=common_pb2.SHUTOFF_POLICY_STANDARD,
        unit_price=to_proto(kw.get("unit_price", "470.00"), "USD"),
        current_period_start_date=_date(date(2024, 6, 10)),
        renewal_date=_date(date(2025, 6, 10)),
        expiry_date=_date(date(2025, 6, 9)),
        auto_renew=True,
        buyer_email=buyer_email,
        buyer_name=kw.get("buyer_name", "Kari Nordmann"),
        buyer_language=buyer_language,
        channel=common_pb2.CHANNEL_DIRECT_ONLINE,
        time_zone="Europe/Oslo",
    )


def envelope(event_type: str, account_id: str, **payload) -> events_pb2.Event:
    ts = timestamp_pb2.Timestamp()
    ts.FromSeconds(1718006400)
    return events_pb2.Event(
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        occurred_time=ts,
        source=event_type.split(".")[0],
        account_id=account_id,
        subscription_id="sub_1",
        **payload,
    )


def order_event(account_id: str, buyer_email: str, language: str, order_number: str, amount: str = "1410.00"):
    return envelope(
        "subscription.created",
        account_id,
        subscription_created=events_pb2.SubscriptionCreated(
            subscription=snapshot(account_id, buyer_email, language),
            order_number=order_number,
            amount=to_proto(amount, "USD"),
            invoice_id="inv_1",
        ),
    )


def invoice_event(
    account_id: str, buyer_email: str, invoice_id: str, payer_emails=(), total: str = "1762.50"
):
    ts = timestamp_pb2.Timestamp()
    ts.FromSeconds(1718006400)
    return envelope(
        "billing.invoice_issued",
        account_id,
        invoice_issued=events_pb2.InvoiceIssued(
            invoice=events_pb2.InvoiceSummary(
                invoice_id=invoice_id,
                invoice_number="INV-2024-000042",
                account_id=account_id,
                subscription_id="sub_1",
                order_number="ORD-2024-000123",
                kind="new",
                total=to_proto(total, "USD"),
                due_date=_date(date(2024, 7, 10)),
                issue_time=ts,
                buyer_email=buyer_email,
                payer_emails=list(payer_emails),
                payment_method_type=common_pb2.PAYMENT_METHOD_TYPE_INVOICE,
            )
        ),
    )


def deliver(app, ev) -> bool:
    return app.sink.Deliver(events_pb2.DeliverRequest(event=ev)).duplicate
