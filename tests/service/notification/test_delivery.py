"""The notification service end to end on one real server: events in through EventSinkService,
recipients from (stand-in) entitlement and billing services, mail out through a real SMTP server."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from tenure.common.v1 import common_pb2
from tenure.notification.v1 import notification_pb2 as pb
from tests.auth import person

from .conftest import api_as, deliver, invoice_event, order_event, start_notification, wait_for

ACCOUNT = "acct_1"
BUYER = "kari@example.com"
ADMIN = "ola.admin@example.com"


def team(peers, account=ACCOUNT):
    peers.member(
        account, BUYER, "Kari Nordmann", "nb", common_pb2.ROLE_BUYER, common_pb2.ROLE_SECONDARY_ADMIN
    )
    peers.member(account, ADMIN, "Ola Admin", "sv", common_pb2.ROLE_PRIMARY_ADMIN)


def listed(app, **kw):
    return list(app.api.ListNotifications(pb.ListNotificationsRequest(page_size=500, **kw)).notifications)


def test_an_order_sends_the_buyer_a_confirmation_in_their_language(start_service, peers, smtp):
    team(peers)
    app = start_notification(start_service, peers, smtp.port)
    assert deliver(app, order_event(ACCOUNT, BUYER, "nb-NO", "ORD-2024-000777")) is False

    mail = wait_for(
        lambda: (
            smtp.inbox.to(BUYER) and [m for m in smtp.inbox.to(BUYER) if "ORD-2024-000777" in m["Subject"]]
        )
    )
    assert mail, "the buyer got no order confirmation"
    msg = mail[0]
    assert msg["Subject"] == "Ordrebekreftelse ORD-2024-000777: AutoCAD LT"
    assert msg["Content-Language"] == "nb"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Takk for bestillingen din" in text and "ORD-2024-000777" in text
    assert "ORD-2024-000777" in html and '<html lang="nb">' in html
    assert "1\u00a0410,00" in text or "1 410,00" in text

    # the admin who is not the buyer is told the product is ready, in Swedish, and nothing else
    admin_mail = wait_for(lambda: smtp.inbox.to(ADMIN))
    assert [m["Subject"] for m in admin_mail] == ["AutoCAD LT är redo att tilldelas användare"]

    sent = wait_for(lambda: all(n.status == pb.NOTIFICATION_STATUS_SENT for n in listed(app)) and listed(app))
    confirmation = next(n for n in sent if n.kind == pb.NOTIFICATION_KIND_ORDER_CONFIRMATION)
    assert confirmation.recipient_email == BUYER
    assert confirmation.recipient_role == common_pb2.ROLE_BUYER
    assert confirmation.language == "nb"
    assert confirmation.attempts == 1 and confirmation.HasField("sent_time")
    assert confirmation.text_body == ""  # lists carry no bodies
    full = app.api.GetNotification(pb.GetNotificationRequest(notification_id=confirmation.notification_id))
    assert "ORD-2024-000777" in full.notification.text_body
    assert "ORD-2024-000777" in full.notification.html_body
    assert full.notification.message_id == msg["Message-ID"]


def test_five_payers_get_the_invoice_with_the_pdf_and_the_admin_gets_none(start_service, peers, smtp):
    team(peers)
    payers = [f"payer{i}@example.com" for i in range(1, 6)]
    for i, email in enumerate(payers):
        peers.payer(ACCOUNT, email, f"Payer {i}", ["en", "nb", "fr", "sv", "de"][i])
    pdf = b"%PDF-1.4 invoice INV-2024-000042 %%EOF"
    peers.pdfs["inv_42"] = pdf
    app = start_notification(start_service, peers, smtp.port)
    deliver(app, invoice_event(ACCOUNT, BUYER, "inv_42", payer_emails=payers))

    assert wait_for(lambda: len(smtp.inbox.messages) >= 6)
    wait_for(lambda: len(listed(app, status=pb.NOTIFICATION_STATUS_SENT)) == 6)
    for email in [BUYER, *payers]:
        got = smtp.inbox.to(email)
        assert len(got) == 1, email
        msg = got[0]
        assert "INV-2024-000042" in msg["Subject"]
        files = [(p.get_filename(), p.get_content()) for p in msg.iter_attachments()]
        assert files == [("inv_42.pdf", pdf)], email
    assert smtp.inbox.to(ADMIN) == []
    assert len(smtp.inbox.messages) == 6
    assert smtp.inbox.to("payer3@example.com")[0]["Subject"].startswith("Facture INV-2024-000042")
    assert smtp.inbox.to("payer5@example.com")[0]["Content-Language"] == "en"  # German → English
    logged = listed(app, kind=pb.NOTIFICATION_KIND_INVOICE_ISSUED)
    assert {n.recipient_email for n in logged} == {BUYER, *payers}
    assert all(n.attachments[0].size_bytes == len(pdf) for n in logged)


def test_the_same_event_twice_yields_one_email(start_service, peers, smtp):
    team(peers)
    app = start_notification(start_service, peers, smtp.port)
    ev = order_event(ACCOUNT, BUYER, "en", "ORD-2024-000900")
    assert deliver(app, ev) is False
    assert deliver(app, ev) is True
    assert wait_for(lambda: len(listed(app, status=pb.NOTIFICATION_STATUS_SENT)) == 3)
    assert deliver(app, ev) is True
    app.api.RunDelivery(pb.RunDeliveryRequest())
    confirmations = [m for m in smtp.inbox.to(BUYER) if "ORD-2024-000900" in m["Subject"]]
    assert len(confirmations) == 1
    assert len(listed(app, event_id=ev.event_id)) == 3  # buyer: confirmation + product access; admin


def test_smtp_down_for_a_while_delays_mail_and_loses_none(start_service, peers, clock):
    from .conftest import Smtp, free_port

    team(peers)
    smtp = Smtp(free_port())  # nothing listens there yet
    app = start_notification(start_service, peers, smtp.port, delivery_max_backoff_seconds=60)
    deliver(app, order_event(ACCOUNT, BUYER, "nb", "ORD-2024-000555"))
    pending = wait_for(
        lambda: (
            len(
                failed := [
                    n for n in listed(app) if n.last_error and n.status == pb.NOTIFICATION_STATUS_PENDING
                ]
            )
            == 3
            and failed
        )
    )
    assert pending and len(pending) == 3
    assert all("unreachable" in n.last_error for n in pending)
    assert all(n.HasField("next_attempt_time") for n in pending)
    clock.advance(timedelta(seconds=31))  # a second attempt also fails
    assert wait_for(lambda: all(n.attempts >= 2 and n.last_error for n in listed(app)))

    smtp.start()
    try:
        clock.advance(timedelta(minutes=2))  # the next retry comes due
        assert wait_for(lambda: len(listed(app, status=pb.NOTIFICATION_STATUS_SENT)) == 3)
        assert len(smtp.inbox.messages) == 3
        confirmation = smtp.inbox.to(BUYER)
        assert [m["Subject"] for m in confirmation if "ORD-2024-000555" in m["Subject"]] == [
            "Ordrebekreftelse ORD-2024-000555: AutoCAD LT"
        ]
        sent = listed(app, kind=pb.NOTIFICATION_KIND_ORDER_CONFIRMATION)[0]
        assert sent.attempts >= 3 and sent.last_error == ""
    finally:
        smtp.stop()


def test_a_restart_mid_send_sends_each_email_once(start_service, peers, smtp, new_db_url, clock):
    team(peers)
    url = new_db_url("notification_restart")
    first = start_notification(start_service, peers, smtp.port, database_url=url, delivery_interval_seconds=0)
    ev = order_event(ACCOUNT, BUYER, "sv", "ORD-2024-000321")
    deliver(first, ev)
    # plan, then claim one e-mail as a sender would, and "crash" before it is sent
    from services.notification import handlers

    handlers.plan_due_events(first.db, first.mailing)
    rows = listed(first)
    assert len(rows) == 3 and all(n.status == pb.NOTIFICATION_STATUS_PENDING for n in rows)
    with first.db.unit_of_work() as uow:  # the lease of a sender's first attempt
        assert uow.notifications.claim(
            rows[0].notification_id, clock.now(), clock.now() + timedelta(minutes=2)
        )
    first.stop(grace=0)

    second = start_notification(start_service, peers, smtp.port, database_url=url)
    assert deliver(second, ev) is True  # the event is not taken again
    assert wait_for(lambda: len(smtp.inbox.messages) == 2)
    clock.advance(timedelta(minutes=3))  # the dead sender's lease runs out
    assert wait_for(lambda: len(listed(second, status=pb.NOTIFICATION_STATUS_SENT)) == 3)
    assert sorted(rcpts[0] for rcpts, _ in smtp.inbox.messages) == sorted([BUYER, BUYER, ADMIN])
    assert len({m["Message-ID"] for _, m in smtp.inbox.messages}) == 3


def test_render_template_previews_every_language(start_service, peers):
    app = start_notification(start_service, peers, None)
    out = app.api.RenderTemplate(
        pb.RenderTemplateRequest(
            kind=pb.NOTIFICATION_KIND_SEATS_ADDED,
            language="sv-SE",
            fields={"order_number": "ORD-42", "amount": "737.84", "seats_added": "3"},
        )
    )
    assert out.language == "sv"
    assert out.subject == "3 licenser har lagts till i AutoCAD LT (ORD-42)"
    assert "737,84" in out.text.replace("\u00a0", " ") and "ORD-42" in out.html
    de = app.api.RenderTemplate(
        pb.RenderTemplateRequest(kind=pb.NOTIFICATION_KIND_SEATS_ADDED, language="de")
    )
    assert de.language == "en" and de.subject.startswith("3 seats added")

    with pytest.raises(grpc.RpcError) as err:
        app.api.RenderTemplate(pb.RenderTemplateRequest(language="en"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        app.api.RenderTemplate(
            pb.RenderTemplateRequest(kind=pb.NOTIFICATION_KIND_INVOICE_ISSUED, fields={"amount": "12,50"})
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "amount" in err.value.details()


def test_resend_log_paging_and_errors(start_service, peers, smtp):
    team(peers)
    app = start_notification(start_service, peers, smtp.port)
    for n in range(3):
        deliver(app, order_event(ACCOUNT, BUYER, "en", f"ORD-2024-00010{n}"))
    assert wait_for(lambda: len(listed(app, status=pb.NOTIFICATION_STATUS_SENT)) == 9)

    as_buyer = api_as(app, person(BUYER))  # naming no account, a person pages through their own mail
    page1 = as_buyer.ListNotifications(
        pb.ListNotificationsRequest(recipient_email="KARI@example.com", page_size=4)
    )
    page2 = as_buyer.ListNotifications(
        pb.ListNotificationsRequest(page_size=4, page_token=page1.next_page_token)
    )
    assert len(page1.notifications) == 4 and len(page2.notifications) == 2 and page2.next_page_token == ""
    ids = [n.notification_id for n in [*page1.notifications, *page2.notifications]]
    assert len(set(ids)) == 6
    assert {n.recipient_email for n in [*page1.notifications, *page2.notifications]} == {BUYER}
    assert len(listed(app, account_id="other")) == 0

    original = listed(app, kind=pb.NOTIFICATION_KIND_ORDER_CONFIRMATION)[0]
    req = pb.ResendNotificationRequest(request_id="resend-1", notification_id=original.notification_id)
    again = app.api.ResendNotification(req)
    assert again.notification.resend_of_notification_id == original.notification_id
    assert again.notification.subject == original.subject
    assert app.api.ResendNotification(req).notification.notification_id == again.notification.notification_id
    assert wait_for(lambda: len([m for m in smtp.inbox.to(BUYER) if m["Subject"] == original.subject]) == 2)
    app.api.RunDelivery(pb.RunDeliveryRequest())
    assert len([m for m in smtp.inbox.to(BUYER) if m["Subject"] == original.subject]) == 2

    for call, request, code in [
        (
            app.api.GetNotification,
            pb.GetNotificationRequest(notification_id="ntf_missing"),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            app.api.ListNotifications,
            pb.ListNotificationsRequest(page_token="not-a-token"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            app.api.ResendNotification,
            pb.ResendNotificationRequest(notification_id=original.notification_id),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (as_buyer.RunDelivery, pb.RunDeliveryRequest(), grpc.StatusCode.PERMISSION_DENIED),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            call(request)
        assert err.value.code() == code


def test_without_smtp_mail_is_written_as_eml_files(start_service, peers, tmp_path):
    team(peers)
    mail_dir = tmp_path / "mail"
    app = start_notification(start_service, peers, None, mail_dir=str(mail_dir))
    deliver(app, order_event(ACCOUNT, BUYER, "en", "ORD-2024-000444"))
    files = wait_for(lambda: len(list(mail_dir.glob("*.eml"))) == 3 and sorted(mail_dir.glob("*.eml")))
    assert files
    contents = [f.read_text() for f in files]
    assert sum("ORD-2024-000444" in c for c in contents) == 1
    assert wait_for(lambda: len(listed(app, status=pb.NOTIFICATION_STATUS_SENT)) == 3)


def test_recipients_service_down_delays_planning(start_service, peers, smtp, clock):
    team(peers)
    peers.down = True
    app = start_notification(start_service, peers, smtp.port, delivery_interval_seconds=0)
    deliver(app, order_event(ACCOUNT, BUYER, "en", "ORD-2024-000999"))
    app.api.RunDelivery(pb.RunDeliveryRequest())
    assert "ListMembers" in peers.calls
    assert listed(app) == []  # not planned while entitlement is down; the event is kept
    peers.down = False
    app.api.RunDelivery(pb.RunDeliveryRequest())
    assert listed(app) == []  # the retry is not due yet
    clock.advance(timedelta(minutes=1))
    counts = app.api.RunDelivery(pb.RunDeliveryRequest())
    assert counts.sent == 3
    assert [m["Subject"] for m in smtp.inbox.to(BUYER) if "ORD-2024-000999" in m["Subject"]] == [
        "Ordrebekreftelse ORD-2024-000999: AutoCAD LT"  # the team knows her language
    ]


def test_a_recipient_the_server_refuses_fails_without_retries(start_service, peers):
    from aiosmtpd.controller import Controller

    from .conftest import Inbox, free_port

    class RefusesAdmin(Inbox):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address == ADMIN:
                return "550 5.1.1 mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    inbox = RefusesAdmin()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        team(peers)
        app = start_notification(start_service, peers, controller.port)
        deliver(app, order_event(ACCOUNT, BUYER, "en", "ORD-2024-000888"))
        failed = wait_for(lambda: listed(app, status=pb.NOTIFICATION_STATUS_FAILED))
        assert [(n.recipient_email, n.attempts) for n in failed] == [(ADMIN, 1)]
        assert "550" in failed[0].last_error
        assert wait_for(lambda: len(listed(app, status=pb.NOTIFICATION_STATUS_SENT)) == 2)
        assert {r for rcpts, _ in inbox.messages for r in rcpts} == {BUYER}
    finally:
        controller.stop()
