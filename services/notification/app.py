"""Composition root of the notification service: database, servicers, events and loops."""

from __future__ import annotations

from datetime import timedelta

from services.notification import handlers
from services.notification.adapters.mailer import FileMailer, SmtpMailer
from services.notification.adapters.peers import Peers
from services.notification.adapters.repository import NotificationUnitOfWork
from services.notification.adapters.tables import MEMBERS, NotificationModel
from services.notification.domain.delivery import RetryPolicy
from services.notification.domain.routing import CONSUMED_EVENT_TYPES
from services.notification.permissions import permissions
from services.notification.rendering import Renderer
from services.notification.servicer import NotificationServicer
from shared.app import ServiceApp
from shared.auth.membership import ProjectionDirectory
from shared.clock import Clock
from shared.settings import NotificationSettings
from tenure.billing.v1 import billing_pb2_grpc
from tenure.entitlement.v1 import entitlement_pb2_grpc
from tenure.notification.v1 import notification_pb2, notification_pb2_grpc


def make_mailer(settings: NotificationSettings):
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.mail_from,
            reply_to=settings.mail_reply_to,
            timeout=settings.client_timeout_seconds,
        )
    return FileMailer(settings.mail_dir, sender=settings.mail_from, reply_to=settings.mail_reply_to)


def retry_policy(settings: NotificationSettings) -> RetryPolicy:
    max_delay = timedelta(seconds=max(settings.delivery_max_backoff_seconds, 0.001))
    return RetryPolicy(first_delay=min(timedelta(seconds=30), max_delay), max_delay=max_delay)


def create(settings: NotificationSettings, clock: Clock) -> ServiceApp:
    app = ServiceApp.create(
        "notification", settings, clock, NotificationModel.metadata, uow_class=NotificationUnitOfWork
    )
    entitlement = app.client(entitlement_pb2_grpc.EntitlementServiceStub, settings.entitlement_addr)
    billing = app.client(billing_pb2_grpc.BillingServiceStub, settings.billing_addr)
    directory = ProjectionDirectory(app.db, MEMBERS)
    mailing = handlers.Mailing(
        renderer=Renderer(),
        peers=Peers(entitlement, billing),
        mailer=make_mailer(settings),
        sender=settings.mail_from,
        retry=retry_policy(settings),
        portal_url=settings.portal_url,
    )
    app.add_servicer(
        notification_pb2_grpc.add_NotificationServiceServicer_to_server,
        NotificationServicer(app.db, mailing),
        notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
        notification_pb2_grpc.NotificationServiceServicer,
        permissions(app.db, directory),
    )
    sink = {event_type: handlers.record_event for event_type in CONSUMED_EVENT_TYPES}
    sink["entitlement.role_changed"] = handlers.role_changed
    sink["billing.invoice_paid"] = handlers.invoice_paid
    app.add_event_sink(sink)
    app.every("delivery", settings.delivery_interval_seconds, lambda: handlers.run_delivery(app.db, mailing))
    # ClockService.DrainOutbox (AdvanceClock): the mail of every event received is made before it answers
    app.settle = lambda budget: handlers.settle(app.db, mailing, budget)
    app.mailing = mailing
    return app
