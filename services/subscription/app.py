"""Composition root of the subscription service: database, servicers, clients of billing and
entitlement, the demo catalog loaded on first start, the consumer of billing's invoice events, the
lifecycle loop, and the test clock that moves the other services' clocks."""

from __future__ import annotations

from services.subscription import consumers, handlers, sweep
from services.subscription.adapters.peers import Billing, Entitlement, PeerClock
from services.subscription.adapters.tables import MEMBERS, SubscriptionModel
from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork
from services.subscription.booking import Peers
from services.subscription.clock_driver import ClockDriver
from services.subscription.permissions import permissions
from services.subscription.servicer import SubscriptionServicer
from shared.app import ServiceApp
from shared.auth.membership import ProjectionDirectory
from shared.clock import Clock
from shared.settings import SubscriptionSettings
from tenure.billing.v1 import billing_pb2_grpc
from tenure.common.v1 import clock_pb2_grpc
from tenure.entitlement.v1 import entitlement_pb2_grpc
from tenure.subscription.v1 import subscription_pb2, subscription_pb2_grpc


class SubscriptionApp(ServiceApp):
    def migrate(self) -> None:
        super().migrate()
        handlers.seed(self.db)  # the demo catalog of rules §1, once


def create(settings: SubscriptionSettings, clock: Clock) -> ServiceApp:
    app = SubscriptionApp.create(
        "subscription", settings, clock, SubscriptionModel.metadata, uow_class=SubscriptionUnitOfWork
    )
    billing = Billing(app.client(billing_pb2_grpc.BillingServiceStub, settings.billing_addr))
    entitlement = (
        Entitlement(app.client(entitlement_pb2_grpc.EntitlementServiceStub, settings.entitlement_addr))
        if settings.entitlement_addr
        else None
    )
    directory = ProjectionDirectory(app.db, MEMBERS)
    servicer = SubscriptionServicer(app.db, clock, Peers(billing, entitlement))
    peers = {
        name: PeerClock(name, app.client(clock_pb2_grpc.ClockServiceStub, addr))
        for name, addr in (
            ("billing", settings.billing_addr),
            ("entitlement", settings.entitlement_addr),
            ("notification", settings.notification_addr),
        )
        if addr
    }
    servicer.advance_clock = ClockDriver(app.db, clock, app.relay, billing, peers)
    app.add_servicer(
        subscription_pb2_grpc.add_SubscriptionServiceServicer_to_server,
        servicer,
        subscription_pb2.DESCRIPTOR.services_by_name["SubscriptionService"],
        subscription_pb2_grpc.SubscriptionServiceServicer,
        permissions(app.db, directory),
    )
    app.add_event_sink(
        {
            "billing.invoice_paid": consumers.on_invoice_paid,
            "billing.invoice_overdue": consumers.on_invoice_overdue,
            "entitlement.role_changed": directory.on_role_changed,
        }
    )
    app.every(
        "lifecycle", settings.lifecycle_interval_seconds, lambda: sweep.run(app.db, billing, clock.now())
    )
    return app
