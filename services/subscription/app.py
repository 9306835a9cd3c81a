"""Composition root of the subscription service: database, servicers, events and loops."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import SubscriptionSettings
from tenure.subscription.v1 import subscription_pb2, subscription_pb2_grpc


def create(settings: SubscriptionSettings, clock: Clock) -> ServiceApp:
    app = ServiceApp.create("subscription", settings, clock, MetaData())
    app.add_servicer(
        subscription_pb2_grpc.add_SubscriptionServiceServicer_to_server,
        subscription_pb2_grpc.SubscriptionServiceServicer(),
        subscription_pb2.DESCRIPTOR.services_by_name["SubscriptionService"],
        subscription_pb2_grpc.SubscriptionServiceServicer,
    )
    return app
