"""With the real entitlement service: the team it builds from an order is who the notification
service writes to, and its role and seat events produce the admin and user e-mails."""

from __future__ import annotations

from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2, entitlement_pb2_grpc
from tenure.events.v1 import events_pb2
from tenure.events.v1 import events_pb2_grpc as sink_grpc
from tenure.notification.v1 import notification_pb2 as pb
from tests.auth import channel, person, service

from .conftest import api_as, deliver, free_port, order_event, start_notification, wait_for

ACCOUNT = "acct_team"
BUYER = "kari@example.com"


def test_team_roles_and_seats_reach_the_right_people(start_service, peers, smtp):
    notif_addr = f"127.0.0.1:{free_port()}"
    ent = start_service("entitlement", event_subscribers=notif_addr)
    notif = start_notification(start_service, peers, smtp.port, addr=notif_addr, entitlement_addr=ent.addr)
    ent_api = entitlement_pb2_grpc.EntitlementServiceStub(channel(ent.addr, default=person(BUYER)))

    order = order_event(ACCOUNT, BUYER, "nb", "ORD-2024-000600")
    ent_sink = sink_grpc.EventSinkServiceStub(channel(ent.addr, default=service("subscription")))
    ent_sink.Deliver(events_pb2.DeliverRequest(event=order))
    assert ent.relay.drain(10)
    deliver(notif, order)

    # the buyer: order confirmation + (as primary admin) product access; no mail about the team set-up
    assert wait_for(lambda: len(smtp.inbox.to(BUYER)) == 2)
    assert sorted(m["Subject"] for m in smtp.inbox.to(BUYER)) == [
        "AutoCAD LT er klar til å tilordnes brukere",
        "Ordrebekreftelse ORD-2024-000600: AutoCAD LT",
    ]

    ent_api.AssignRole(
        entitlement_pb2.AssignRoleRequest(
            request_id="r1",
            account_id=ACCOUNT,
            email="anne@example.com",
            role=common_pb2.ROLE_SECONDARY_ADMIN,
            name="Anne Admin",
            language="fr",
        ),
    )
    ent_api.AssignSeat(
        entitlement_pb2.AssignSeatRequest(
            request_id="s1",
            subscription_id="sub_1",
            user_email="per@example.com",
            user_name="Per",
            language="sv",
        ),
    )
    assert ent.relay.drain(10)

    # the admins (Anne, and the buyer as primary admin) are told of the user given a seat (§8: user
    # management), Per of the access itself
    anne = wait_for(lambda: len(smtp.inbox.to("anne@example.com")) == 2 and smtp.inbox.to("anne@example.com"))
    assert sorted(m["Subject"] for m in anne) == [
        "Anne Admin est désormais administrateur secondaire",
        "Per a désormais accès à AutoCAD LT",
    ]
    per = wait_for(lambda: smtp.inbox.to("per@example.com"))
    assert [m["Subject"] for m in per] == ["Du har nu åtkomst till AutoCAD LT"]
    assert wait_for(lambda: len(smtp.inbox.to(BUYER)) == 4), [m["Subject"] for m in smtp.inbox.to(BUYER)]
    assert "Anne Admin er nå sekundæradministrator" in [m["Subject"] for m in smtp.inbox.to(BUYER)]
    assert "Per har nå tilgang til AutoCAD LT" in [m["Subject"] for m in smtp.inbox.to(BUYER)]
    logged = notif.api.ListNotifications(pb.ListNotificationsRequest(account_id=ACCOUNT, page_size=50))
    assert len(logged.notifications) == 7

    # the team entitlement published is who reads the log: the buyer all of the account's mail, the
    # admin the mail routed to admins (product access, team changes), not the order confirmation
    def kinds_seen_by(email: str) -> list[tuple[str, str]]:
        got = api_as(notif, person(email)).ListNotifications(
            pb.ListNotificationsRequest(account_id=ACCOUNT, page_size=50)
        )
        return sorted((n.recipient_email, pb.NotificationKind.Name(n.kind)) for n in got.notifications)

    assert kinds_seen_by(BUYER) == sorted(
        (n.recipient_email, pb.NotificationKind.Name(n.kind)) for n in logged.notifications
    )
    assert kinds_seen_by("anne@example.com") == [
        ("anne@example.com", "NOTIFICATION_KIND_ROLE_CHANGED"),
        ("anne@example.com", "NOTIFICATION_KIND_USER_ASSIGNED"),
        (BUYER, "NOTIFICATION_KIND_PRODUCT_ACCESS"),
        (BUYER, "NOTIFICATION_KIND_ROLE_CHANGED"),
        (BUYER, "NOTIFICATION_KIND_USER_ASSIGNED"),
    ]
