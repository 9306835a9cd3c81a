"""Composition root of the billing service: database, servicers, events and loops."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import BillingSettings
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc


def create(settings: BillingSettings, clock: Clock) -> ServiceApp:
    app = ServiceApp.create("billing", settings, clock, MetaData())
    app.add_servicer(
        billing_pb2_grpc.add_BillingServiceServicer_to_server,
        billing_pb2_grpc.BillingServiceServicer(),
        billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
        billing_pb2_grpc.BillingServiceServicer,
    )
    return app
