"""Composition root of the entitlement service: database, servicers, events and loops."""

from __future__ import annotations

from sqlalchemy import MetaData

from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import EntitlementSettings
from tenure.entitlement.v1 import entitlement_pb2, entitlement_pb2_grpc


def create(settings: EntitlementSettings, clock: Clock) -> ServiceApp:
    app = ServiceApp.create("entitlement", settings, clock, MetaData())
    app.add_servicer(
        entitlement_pb2_grpc.add_EntitlementServiceServicer_to_server,
        entitlement_pb2_grpc.EntitlementServiceServicer(),
        entitlement_pb2.DESCRIPTOR.services_by_name["EntitlementService"],
        entitlement_pb2_grpc.EntitlementServiceServicer,
    )
    return app
