"""Composition root of the subscription service: database, servicers, clients of billing and
entitlement, and the demo catalog loaded on first start."""

from __future__ import annotations

from services.subscription import handlers
from services.subscription.adapters.peers import Billing, Entitlement
from services.subscription.adapters.tables import SubscriptionModel
from services.subscription.servicer import SubscriptionServicer
from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import SubscriptionSettings
from tenure.billing.v1 import billing_pb2_grpc
from tenure.entitlement.v1 import entitlement_pb2_grpc
from tenure.subscription.v1 import subscription_pb2, subscription_pb2_grpc


class SubscriptionApp(ServiceApp):
    def migrate(self) -> None:
        super().migrate()
        handlers.seed(self.db)  # the demo catalog of SPEC §1, once


def create(settings: SubscriptionSettings, clock: Clock) -> ServiceApp:
    app = SubscriptionApp.create("subscription", settings, clock, SubscriptionModel.metadata)
    billing = Billing(app.client(billing_pb2_grpc.BillingServiceStub, settings.billing_addr))
    entitlement = (
        Entitlement(app.client(entitlement_pb2_grpc.EntitlementServiceStub, settings.entitlement_addr))
        if settings.entitlement_addr
        else None
    )
    servicer = SubscriptionServicer(app.db, clock, handlers.Peers(billing, entitlement))
    app.add_servicer(
        subscription_pb2_grpc.add_SubscriptionServiceServicer_to_server,
        servicer,
        subscription_pb2.DESCRIPTOR.services_by_name["SubscriptionService"],
        subscription_pb2_grpc.SubscriptionServiceServicer,
    )
    return app
