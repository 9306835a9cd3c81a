"""Who reads which e-mail of the log (rules §7): the recipient their own, the buyer all of the account's
mail, admins the mail routed to admins; a stranger finds nothing; only operators and services run
delivery. The team comes from `entitlement.role_changed` events, as in production."""

from __future__ import annotations

import grpc
import pytest

from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.notification.v1 import notification_pb2 as pb
from tests.auth import person

from .conftest import api_as, deliver, envelope, invoice_event, order_event, snapshot, start_notification

ACCOUNT, OTHER = "acct_a", "acct_b"
BUYER = "kari@example.com"  # buyer and primary admin of ACCOUNT
ADMIN = "ola@example.com"  # secondary admin
PAYER = "pia@example.com"
USER = "per@example.com"
STRANGER = "eve@example.com"  # buyer of OTHER

K = pb.NotificationKind.Value


def role(account: str, email: str, which: int) -> events_pb2.Event:
    """A team change entitlement publishes (no actor: no mail, only the team projection)."""
    return envelope(
        "entitlement.role_changed",
        account,
        role_changed=events_pb2.RoleChanged(account_id=account, email=email, role=which, granted=True),
    )


@pytest.fixture
def log(start_service, peers, tmp_path):
    """ACCOUNT's mail: the buyer's order confirmation, invoice and renewal reminder, the payer's
    invoice, both admins' product access; and a seat e-mail to a user that names no account."""
    peers.member(ACCOUNT, BUYER, "Kari", "en", common_pb2.ROLE_BUYER, common_pb2.ROLE_PRIMARY_ADMIN)
    peers.member(ACCOUNT, ADMIN, "Ola", "en", common_pb2.ROLE_SECONDARY_ADMIN)
    app = start_notification(
        start_service, peers, None, mail_dir=str(tmp_path / "mail"), delivery_interval_seconds=0
    )
    for account, email, which in [
        (ACCOUNT, BUYER, common_pb2.ROLE_BUYER),
        (ACCOUNT, BUYER, common_pb2.ROLE_PRIMARY_ADMIN),
        (ACCOUNT, ADMIN, common_pb2.ROLE_SECONDARY_ADMIN),
        (ACCOUNT, PAYER, common_pb2.ROLE_PAYER),
        (ACCOUNT, USER, common_pb2.ROLE_USER),
        (OTHER, STRANGER, common_pb2.ROLE_BUYER),
    ]:
        deliver(app, role(account, email, which))
    deliver(app, order_event(ACCOUNT, BUYER, "en", "ORD-2024-000001"))
    deliver(app, invoice_event(ACCOUNT, BUYER, "inv_1", payer_emails=[PAYER]))
    reminder = events_pb2.RenewalReminder(subscription=snapshot(ACCOUNT, BUYER), days_before=30)
    deliver(app, envelope("subscription.renewal_reminder", ACCOUNT, renewal_reminder=reminder))
    seat = events_pb2.SeatAssigned(product_code="ACDLT", product_name="AutoCAD LT", user_email=USER)
    deliver(app, envelope("entitlement.seat_assigned", "", seat_assigned=seat))
    assert app.api.RunDelivery(pb.RunDeliveryRequest()).sent == 7
    everything = app.api.ListNotifications(pb.ListNotificationsRequest(page_size=50)).notifications
    app.ids = {(n.recipient_email, pb.NotificationKind.Name(n.kind)): n.notification_id for n in everything}
    assert len(app.ids) == 7
    return app


def seen(app, who: str, **request) -> set[tuple[str, str]]:
    got = api_as(app, person(who)).ListNotifications(pb.ListNotificationsRequest(page_size=50, **request))
    return {(n.recipient_email, pb.NotificationKind.Name(n.kind)) for n in got.notifications}


def code_of(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call(request)
    return err.value.code()


def test_each_person_lists_what_their_role_on_the_account_shows(log):
    account_mail = {key for key, _ in log.ids.items() if key[1] != "NOTIFICATION_KIND_SEAT_ASSIGNED"}
    assert seen(log, BUYER, account_id=ACCOUNT) == account_mail  # all six
    assert seen(log, ADMIN, account_id=ACCOUNT) == {
        (BUYER, "NOTIFICATION_KIND_PRODUCT_ACCESS"),
        (ADMIN, "NOTIFICATION_KIND_PRODUCT_ACCESS"),
    }
    assert seen(log, PAYER, account_id=ACCOUNT) == {(PAYER, "NOTIFICATION_KIND_INVOICE_ISSUED")}
    assert seen(log, PAYER, account_id=ACCOUNT, recipient_email=BUYER) == set()
    assert seen(log, USER, account_id=ACCOUNT) == set()  # their seat e-mail names no account
    # naming no account, each person lists the mail sent to them, whatever their roles
    assert seen(log, BUYER) == {key for key in account_mail if key[0] == BUYER}
    assert seen(log, ADMIN) == {(ADMIN, "NOTIFICATION_KIND_PRODUCT_ACCESS")}
    assert seen(log, USER) == {(USER, "NOTIFICATION_KIND_SEAT_ASSIGNED")}
    # a stranger finds no account, and no mail
    with pytest.raises(grpc.RpcError) as err:
        seen(log, STRANGER, account_id=ACCOUNT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == f"account {ACCOUNT} not found"
    assert seen(log, STRANGER) == set()


def test_get_and_resend_show_no_mail_that_is_not_the_callers_to_see(log):
    ids = log.ids
    reminder = ids[(BUYER, "NOTIFICATION_KIND_RENEWAL_REMINDER")]
    buyers_invoice = ids[(BUYER, "NOTIFICATION_KIND_INVOICE_ISSUED")]
    payers_invoice = ids[(PAYER, "NOTIFICATION_KIND_INVOICE_ISSUED")]
    buyers_access = ids[(BUYER, "NOTIFICATION_KIND_PRODUCT_ACCESS")]
    seat = ids[(USER, "NOTIFICATION_KIND_SEAT_ASSIGNED")]

    def get(who: str, nid: str):
        return api_as(log, person(who)).GetNotification(pb.GetNotificationRequest(notification_id=nid))

    def refused(who: str, nid: str) -> str:
        with pytest.raises(grpc.RpcError) as err:
            get(who, nid)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, (who, nid)
        return err.value.details()

    assert "INV-2024-000042" in get(PAYER, payers_invoice).notification.text_body
    assert get(BUYER, payers_invoice).notification.recipient_email == PAYER
    assert get(ADMIN, buyers_access).notification.recipient_email == BUYER
    assert get(USER, seat).notification.kind == K("NOTIFICATION_KIND_SEAT_ASSIGNED")
    # refused exactly as an id that does not exist
    assert refused(PAYER, reminder) == f"notification {reminder} not found"
    assert refused(ADMIN, buyers_invoice) == f"notification {buyers_invoice} not found"
    assert refused(STRANGER, buyers_access) == f"notification {buyers_access} not found"
    assert refused(BUYER, seat) == f"notification {seat} not found"  # mail naming no account
    assert refused(PAYER, "ntf_missing") == "notification ntf_missing not found"
    assert log.api.GetNotification(pb.GetNotificationRequest(notification_id=seat)).notification.subject

    as_payer = api_as(log, person(PAYER))
    resend = pb.ResendNotificationRequest(request_id="r1", notification_id=reminder)
    assert code_of(as_payer.ResendNotification, resend) == grpc.StatusCode.NOT_FOUND
    assert len(log.api.ListNotifications(pb.ListNotificationsRequest(page_size=50)).notifications) == 7
    again = as_payer.ResendNotification(
        pb.ResendNotificationRequest(request_id="r2", notification_id=payers_invoice)
    )
    assert again.notification.resend_of_notification_id == payers_invoice
    assert seen(log, PAYER) == {(PAYER, "NOTIFICATION_KIND_INVOICE_ISSUED")}
    assert len(log.api.ListNotifications(pb.ListNotificationsRequest(page_size=50)).notifications) == 8


def test_no_token_is_unauthenticated_and_a_person_runs_no_delivery(start_service, peers):
    app = start_notification(start_service, peers, None, delivery_interval_seconds=0)
    anonymous = api_as(app, [])
    assert code_of(anonymous.ListNotifications, pb.ListNotificationsRequest()) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert code_of(anonymous.GetNotification, pb.GetNotificationRequest(notification_id="ntf_1")) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    forged = api_as(app, [("x-actor-role", "operator")])
    assert code_of(forged.RunDelivery, pb.RunDeliveryRequest()) == grpc.StatusCode.UNAUTHENTICATED
    as_buyer = api_as(app, person(BUYER))
    assert code_of(as_buyer.RunDelivery, pb.RunDeliveryRequest()) == grpc.StatusCode.PERMISSION_DENIED
    preview = pb.RenderTemplateRequest(kind=pb.NOTIFICATION_KIND_SEATS_ADDED, language="en")
    assert code_of(as_buyer.RenderTemplate, preview) == grpc.StatusCode.PERMISSION_DENIED
    assert app.api.RunDelivery(pb.RunDeliveryRequest()).sent == 0  # the operator may
