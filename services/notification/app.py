"""Composition root of the notification service: database, servicers, events and loops."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import NotificationSettings
from tenure.notification.v1 import notification_pb2, notification_pb2_grpc


def create(settings: NotificationSettings, clock: Clock) -> ServiceApp:
    app = ServiceApp.create("notification", settings, clock, MetaData())
    app.add_servicer(
        notification_pb2_grpc.add_NotificationServiceServicer_to_server,
        notification_pb2_grpc.NotificationServiceServicer(),
        notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
        notification_pb2_grpc.NotificationServiceServicer,
    )
    return app
