"""gRPC servicer of tenure.notification.v1.NotificationService: decode → handler → encode."""

from __future__ import annotations

from services.notification import handlers
from services.notification.adapters.tables import AttachmentRow, NotificationRow
from services.notification.domain.model import Kind, Role, Status
from shared.auth.principal import current
from shared.errors import InvalidInput
from shared.grpc.codec import timestamp
from tenure.common.v1 import common_pb2
from tenure.notification.v1 import notification_pb2 as pb
from tenure.notification.v1 import notification_pb2_grpc as pb_grpc

_ts = timestamp


def kind_of(value: int, *, required: bool) -> Kind | None:
    if value == pb.NOTIFICATION_KIND_UNSPECIFIED:
        if required:
            raise InvalidInput("kind is required", field="kind", reason="KIND_REQUIRED")
        return None
    try:
        name = pb.NotificationKind.Name(value)
    except ValueError:
        raise InvalidInput(f"unknown kind {value}", field="kind", reason="KIND_REQUIRED") from None
    return Kind(name.removeprefix("NOTIFICATION_KIND_"))


def status_of(value: int) -> Status | None:
    if value == pb.NOTIFICATION_STATUS_UNSPECIFIED:
        return None
    try:
        return Status(pb.NotificationStatus.Name(value).removeprefix("NOTIFICATION_STATUS_"))
    except ValueError:
        raise InvalidInput(f"unknown status {value}", field="status", reason="INVALID_ARGUMENT") from None


def encode(row: NotificationRow, files: list[AttachmentRow], *, bodies: bool) -> pb.Notification:
    msg = pb.Notification(
        notification_id=row.notification_id,
        event_id=row.event_id,
        event_type=row.event_type,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        kind=pb.NotificationKind.Value(f"NOTIFICATION_KIND_{row.kind}"),
        recipient_email=row.recipient_email,
        recipient_name=row.recipient_name,
        recipient_role=common_pb2.Role.Value(f"ROLE_{Role(row.recipient_role).value}"),
        language=row.language,
        subject=row.subject,
        status=pb.NotificationStatus.Value(f"NOTIFICATION_STATUS_{row.status}"),
        attempts=row.attempts,
        last_error=row.last_error,
        resend_of_notification_id=row.resend_of_notification_id,
        message_id=row.message_id,
        attachments=[
            pb.Attachment(filename=f.filename, content_type=f.content_type, size_bytes=len(f.content))
            for f in files
        ],
    )
    for name, value in (
        ("sent_time", row.sent_time),
        ("create_time", row.create_time),
        ("next_attempt_time", row.next_attempt_time if row.status == Status.PENDING.value else None),
    ):
        ts = _ts(value)
        if ts is not None:
            getattr(msg, name).CopyFrom(ts)
    if bodies:
        msg.text_body = row.text_body
        msg.html_body = row.html_body
    return msg


class NotificationServicer(pb_grpc.NotificationServiceServicer):
    def __init__(self, deps: handlers.Deps) -> None:
        self.deps = deps

    def ListNotifications(self, request, context):
        flt = handlers.ListFilter(
            account_id=request.account_id,
            recipient_email=request.recipient_email,
            kind=kind_of(request.kind, required=False),
            status=status_of(request.status),
            event_id=request.event_id,
        )
        rows, token = handlers.list_notifications(
            self.deps, flt, request.page_size, request.page_token, current()
        )
        files = handlers.attachments_of(self.deps, [r.notification_id for r in rows])
        return pb.ListNotificationsResponse(
            notifications=[encode(r, files.get(r.notification_id, []), bodies=False) for r in rows],
            next_page_token=token,
        )

    def GetNotification(self, request, context):
        row, files = handlers.get_notification(self.deps, request.notification_id, current())
        return pb.GetNotificationResponse(notification=encode(row, files, bodies=True))

    def RenderTemplate(self, request, context):
        kind = kind_of(request.kind, required=True)
        out = handlers.render_template(self.deps, kind, request.language, dict(request.fields))
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
                uow, self.deps, request.notification_id, request.request_id, current()
            )
            return pb.ResendNotificationResponse(notification=encode(row, files, bodies=False))

        return self.deps.db.run_idempotent("ResendNotification", request, pb.ResendNotificationResponse, work)

    def RunDelivery(self, request, context):
        if request.limit < 0:
            raise InvalidInput("limit must not be negative", field="limit", reason="INVALID_ARGUMENT")
        counts = handlers.run_delivery(self.deps, request.limit or 100)
        return pb.RunDeliveryResponse(sent=counts.sent, retrying=counts.retrying, failed=counts.failed)
