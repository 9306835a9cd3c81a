"""Composition root of the entitlement service: database, servicer, CheckAccess cache and the
event sink that builds the subscription projection and the account teams."""

from __future__ import annotations

from services.entitlement import handlers
from services.entitlement.adapters.cache import AccessCache, AccessChangeFeed
from services.entitlement.adapters.directory import TeamDirectory
from services.entitlement.adapters.repository import EntitlementUnitOfWork
from services.entitlement.adapters.tables import EntitlementModel
from services.entitlement.codec import subscription_event_of
from services.entitlement.domain.projection import SUBSCRIPTION_EVENT_PREFIX
from services.entitlement.permissions import permissions
from services.entitlement.servicer import EntitlementServicer
from shared.app import ServiceApp
from shared.clock import Clock
from shared.settings import EntitlementSettings
from tenure.entitlement.v1 import entitlement_pb2, entitlement_pb2_grpc

PAYER_CHANGED = "billing.payer_changed"
ACCOUNT_OPENED = "billing.account_opened"


class EventHandlers(dict):
    """The sink's handler table: every `subscription.*` event type goes to the projection (new event
    types of the subscription service are applied without a change here); billing's payer changes
    and opened accounts go to the teams. Other event types are acknowledged and ignored."""

    def __init__(self, cache: AccessCache) -> None:
        super().__init__({PAYER_CHANGED: self.payer_changed, ACCOUNT_OPENED: self.account_opened})
        self.cache = cache

    def get(self, event_type, default=None):
        if event_type.startswith(SUBSCRIPTION_EVENT_PREFIX):
            return self.apply
        return super().get(event_type, default)

    def apply(self, uow, ev) -> None:
        event = subscription_event_of(ev)
        if event is not None:
            handlers.apply_subscription_event(uow, self.cache, event)

    @staticmethod
    def payer_changed(uow, ev) -> None:
        p = ev.payer_changed
        handlers.payer_changed(uow, p.account_id, p.email, p.name, p.language, p.granted, p.actor_email)

    @staticmethod
    def account_opened(uow, ev) -> None:
        a = ev.account_opened
        handlers.open_account(uow, a.account_id, a.buyer_email, a.buyer_name, a.buyer_language)


def create(settings: EntitlementSettings, clock: Clock) -> ServiceApp:
    app = ServiceApp.create(
        "entitlement", settings, clock, EntitlementModel.metadata, uow_class=EntitlementUnitOfWork
    )
    db = app.db
    cache = AccessCache(lambda email: handlers.load_grants(db, email), ttl=settings.access_cache_ttl_seconds)
    servicer = EntitlementServicer(db, clock, cache)
    app.add_servicer(
        entitlement_pb2_grpc.add_EntitlementServiceServicer_to_server,
        servicer,
        entitlement_pb2.DESCRIPTOR.services_by_name["EntitlementService"],
        entitlement_pb2_grpc.EntitlementServiceServicer,
        permissions(db, TeamDirectory(db)),
    )
    app.add_event_sink(EventHandlers(cache))
    feed = AccessChangeFeed(db, cache)
    app.every("access-changes", settings.access_change_poll_seconds, feed.poll)
    app.access_cache = cache
    app.access_feed = feed
    return app
