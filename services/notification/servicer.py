"""gRPC servicer of tenure.notification.v1.NotificationService: decode → handler → encode."""

from __future__ import annotations

from services.notification import handlers
from services.notification.codec import kind_of, notification_pb, status_of
from shared.auth.principal import current
from shared.db import Database
from shared.errors import InvalidInput
from tenure.notification.v1 import notification_pb2 as pb
from tenure.notification.v1 import notification_pb2_grpc as pb_grpc


class NotificationServicer(pb_grpc.NotificationServiceServicer):
    def __init__(self, db: Database, mailing: handlers.Mailing) -> None:
        self.db = db
        self.mailing = mailing

    def ListNotifications(self, request, context):
        flt = handlers.ListFilter(
            account_id=request.account_id,
            recipient_email=request.recipient_email,
            kind=kind_of(request.kind, required=False),
            status=status_of(request.status),
            event_id=request.event_id,
        )
        page = handlers.list_notifications(self.db, flt, request.page_size, request.page_token, current())
        return pb.ListNotificationsResponse(
            notifications=[
                notification_pb(r, page.attachments.get(r.notification_id, []), bodies=False)
                for r in page.notifications
            ],
            next_page_token=page.next_page_token,
        )

    def GetNotification(self, request, context):
        row, files = handlers.get_notification(self.db, request.notification_id, current())
        return pb.GetNotificationResponse(notification=notification_pb(row, files, bodies=True))

    def RenderTemplate(self, request, context):
        kind = kind_of(request.kind, required=True)
        out = handlers.render_template(self.mailing, kind, request.language, dict(request.fields))
        return pb.RenderTemplateResponse(
            subject=out.subject, text=out.text, html=out.html, language=out.language
        )

    def ResendNotification(self, request, context):
        if not request.request_id:
            raise InvalidInput(
                "request_id is required so that a repeated call sends nothing more",
                field="request_id",
                reason="INVALID_ARGUMENT",
            )

        def work(uow):
            row, files = handlers.resend(
                uow, self.mailing, request.notification_id, request.request_id, current()
            )
            return pb.ResendNotificationResponse(notification=notification_pb(row, files, bodies=False))

        return self.db.run_idempotent("ResendNotification", request, pb.ResendNotificationResponse, work)

    def RunDelivery(self, request, context):
        if request.limit < 0:
            raise InvalidInput("limit must not be negative", field="limit", reason="INVALID_ARGUMENT")
        counts = handlers.run_delivery(self.db, self.mailing, request.limit or 100)
        return pb.RunDeliveryResponse(sent=counts.sent, retrying=counts.retrying, failed=counts.failed)
