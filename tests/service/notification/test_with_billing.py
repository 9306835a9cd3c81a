"""With the real billing service: an issued invoice reaches the buyer and the five payers with the
invoice PDF that billing renders, and not the admin."""

from __future__ import annotations

from google.type import date_pb2

from shared.money import to_proto
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import common_pb2
from tenure.notification.v1 import notification_pb2 as pb
from tests.auth import channel, person, service

from .conftest import api_as, free_port, start_notification, wait_for

ACCOUNT = "acct_bill"
BUYER = "kari@example.com"
ADMIN = "ola.admin@example.com"


def test_an_invoice_reaches_the_buyer_and_five_payers_with_the_pdf(start_service, peers, smtp):
    peers.member(ACCOUNT, BUYER, "Kari Nordmann", "nb", common_pb2.ROLE_BUYER)
    peers.member(ACCOUNT, ADMIN, "Ola Admin", "sv", common_pb2.ROLE_PRIMARY_ADMIN)
    notif_addr = f"127.0.0.1:{free_port()}"
    billing = start_service("billing", event_subscribers=notif_addr, sweep_interval_seconds=0)
    notif = start_notification(start_service, peers, smtp.port, addr=notif_addr, billing_addr=billing.addr)
    api = billing_pb2_grpc.BillingServiceStub(channel(billing.addr, default=person(BUYER)))

    api.UpsertBillingProfile(
        billing_pb2.UpsertBillingProfileRequest(
            request_id="p1",
            account_id=ACCOUNT,
            buyer_email=BUYER,
            name="Nordmann AS",
            address=billing_pb2.Address(
                country_code="NO", city="Oslo", postal_code="0150", line1="Karl Johans gate 1"
            ),
            language="nb",
        ),
    )
    payers = [f"payer{i}@example.com" for i in range(1, 6)]
    for i, (email, lang) in enumerate(zip(payers, ["en", "nb", "fr", "sv", "en"], strict=True)):
        api.AddPayer(
            billing_pb2.AddPayerRequest(
                request_id=f"a{i}", account_id=ACCOUNT, email=email, name=f"P{i}", language=lang
            ),
        )
    card = api.AddPaymentMethod(
        billing_pb2.AddPaymentMethodRequest(
            request_id="c1",
            account_id=ACCOUNT,
            type=common_pb2.PAYMENT_METHOD_TYPE_CARD,
            card_number="4242424242424242",
        ),
    ).payment_method
    invoice = api.CreateInvoice(
        billing_pb2.CreateInvoiceRequest(
            request_id="i1",
            account_id=ACCOUNT,
            subscription_id="sub_1",
            order_number="ORD-2024-000123",
            kind=billing_pb2.INVOICE_KIND_NEW,
            currency_code="USD",
            lines=[
                billing_pb2.InvoiceLineInput(
                    description="AutoCAD LT, annual, 3 seats",
                    quantity=3,
                    unit_price=to_proto("470.00", "USD"),
                    period_start_date=date_pb2.Date(year=2024, month=6, day=10),
                    period_end_date=date_pb2.Date(year=2025, month=6, day=10),
                    product_code="ACDLT",
                )
            ],
            payment_method_id=card.payment_method_id,
            term=common_pb2.TERM_ANNUAL,
            channel=common_pb2.CHANNEL_DIRECT_ONLINE,
            time_zone="Europe/Oslo",
        ),
        metadata=service("subscription"),  # an order's invoice is made by the subscription service
    ).invoice
    assert billing.relay.drain(10)

    assert wait_for(
        lambda: (
            len(
                listed := notif.api.ListNotifications(
                    pb.ListNotificationsRequest(
                        kind=pb.NOTIFICATION_KIND_INVOICE_ISSUED, status=pb.NOTIFICATION_STATUS_SENT
                    )
                ).notifications
            )
            == 6
            and listed
        )
    )
    for email in [BUYER, *payers]:
        [msg] = smtp.inbox.to(email)
        assert invoice.invoice_number in msg["Subject"]
        [pdf] = list(msg.iter_attachments())
        assert pdf.get_filename() == f"{invoice.invoice_number}.pdf"
        assert pdf.get_content().startswith(b"%PDF")
    assert smtp.inbox.to(ADMIN) == []
    assert smtp.inbox.to(BUYER)[0]["Subject"].startswith("Faktura ")
    assert smtp.inbox.to("payer3@example.com")[0]["Subject"].startswith("Facture ")
    # a payer reads their own mail in the log, and no one else's
    own = api_as(notif, person("payer3@example.com")).ListNotifications(pb.ListNotificationsRequest())
    assert [(n.recipient_email, n.kind) for n in own.notifications] == [
        ("payer3@example.com", pb.NOTIFICATION_KIND_INVOICE_ISSUED)
    ]
