"""Composition root of the billing service: database, servicer, sandbox gateway and the sweep loop."""

from __future__ import annotations

import logging

from services.billing.adapters.directory import BillingDirectory
from services.billing.adapters.metered_gateway import MeteredGateway
from services.billing.adapters.tables import BillingModel
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain.gateway import PaymentGateway, SandboxGateway
from services.billing.handlers import accounts, documents, sweep
from services.billing.handlers.common import Policy
from services.billing.permissions import permissions
from services.billing.servicer import BillingServicer
from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import BillingSettings
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc

log = logging.getLogger("tenure.billing")


def policy_from(settings: BillingSettings) -> Policy:
    return Policy(
        net_days=settings.payment_terms_days,
        attachment_max_bytes=settings.attachment_max_bytes,
        seller=documents.seller_from(settings),
    )


def create(settings: BillingSettings, clock: Clock, gateway: PaymentGateway | None = None) -> ServiceApp:
    app = ServiceApp.create("billing", settings, clock, BillingModel.metadata, uow_class=BillingUnitOfWork)
    gateway = MeteredGateway(gateway or SandboxGateway(), app.metrics)  # payment attempts by result
    policy = policy_from(settings)
    servicer = BillingServicer(app.db, clock, gateway, policy)
    directory = BillingDirectory(app.db)
    app.add_servicer(
        billing_pb2_grpc.add_BillingServiceServicer_to_server,
        servicer,
        billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
        billing_pb2_grpc.BillingServiceServicer,
        permissions(app.db, directory),
    )
    # the teams (and the buyer of each billing profile) follow entitlement
    app.add_event_sink({"entitlement.role_changed": accounts.role_changed})

    def run_sweep() -> None:
        result = sweep.sweep(app.db, gateway, policy, clock.now())
        if result.issued or result.overdue:
            log.info("billing sweep: %s", result)

    app.every("sweep", settings.sweep_interval_seconds, run_sweep)
    return app
