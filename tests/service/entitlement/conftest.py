"""A running entitlement service and helpers to feed it events and call it.

Every call carries a token (tests/auth.py): events are delivered as a service, seats assigned as the
account's admin (by default the buyer of the first order, who is its primary admin), reads about a
user as a product (a service) unless the test says who asks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.entitlement.v1 import entitlement_pb2_grpc
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests.auth import channel, operator, person, service

BUYER = "buyer@example.com"
OPERATOR = operator()
#: a product asking about its users (CheckAccess, GetUserEntitlements, RecordActivation)
PRODUCT = service("product")
#: another Tenure service delivering events
PRODUCER = service("subscription")


def actor(email: str):
    """A signed-in person's metadata."""
    return person(email)


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def reason_of(err: grpc.RpcError) -> str:
    st = rpc_status.from_call(err)
    for d in st.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            assert info.domain == "entitlement.tenure"
            return info.reason
    raise AssertionError("no ErrorInfo in the error")


@dataclass
class Sub:
    """A subscription as the subscription service would describe it in its events."""

    subscription_id: str
    account_id: str
    product_code: str = "ACDLT"
    seats: int = 3
    plan: int = common_pb2.PLAN_STANDARD
    stage: int = common_pb2.STAGE_ACTIVE
    shutoff_policy: int = common_pb2.SHUTOFF_POLICY_STANDARD
    buyer_email: str = "buyer@example.com"
    access_until: datetime | None = None
    extra: dict = field(default_factory=dict)

    def snapshot(self) -> events_pb2.SubscriptionSnapshot:
        s = events_pb2.SubscriptionSnapshot(
            subscription_id=self.subscription_id,
            account_id=self.account_id,
            product_code=self.product_code,
            product_name={"ACDLT": "AutoCAD LT", "ACD": "AutoCAD", "DOCS": "Docs"}.get(self.product_code, ""),
            plan=self.plan,
            seats=self.seats,
            stage=self.stage,
            shutoff_policy=self.shutoff_policy,
            buyer_email=self.buyer_email,
            buyer_name="Bea Buyer",
            buyer_language="nb",
        )
        if self.access_until:
            s.access_until_time.CopyFrom(ts(self.access_until))
        return s


class Harness:
    def __init__(self, app) -> None:
        self.app = app
        # calls without their own metadata go as the buyer of the tests' accounts
        self.channel = channel(app.addr, default=person(BUYER))
        self.stub = entitlement_pb2_grpc.EntitlementServiceStub(self.channel)
        self.sink = events_pb2_grpc.EventSinkServiceStub(self.channel)
        self.seq = 0

    def deliver(self, event_type: str, event_id: str | None = None, **payload) -> events_pb2.DeliverResponse:
        self.seq += 1
        ev = events_pb2.Event(
            event_id=event_id or str(uuid.uuid4()),
            event_type=event_type,
            source="subscription",
            sequence=self.seq,
            **payload,
        )
        return self.sink.Deliver(events_pb2.DeliverRequest(event=ev), metadata=PRODUCER)

    def created(self, sub: Sub):
        return self.deliver(
            "subscription.created",
            account_id=sub.account_id,
            subscription_id=sub.subscription_id,
            subscription_created=events_pb2.SubscriptionCreated(
                subscription=sub.snapshot(), order_number="O-1"
            ),
        )

    def stage(self, sub: Sub, stage: int, reason: str = "term_ended"):
        before, sub.stage = sub.stage, stage
        return self.deliver(
            "subscription.stage_changed",
            account_id=sub.account_id,
            subscription_id=sub.subscription_id,
            stage_changed=events_pb2.StageChanged(
                subscription=sub.snapshot(), from_stage=before, to_stage=stage, reason=reason
            ),
        )

    def assign(self, sub: Sub, email: str, by: str = "buyer@example.com", request_id: str | None = None):
        return self.stub.AssignSeat(
            pb.AssignSeatRequest(
                request_id=request_id or uuid.uuid4().hex,
                subscription_id=sub.subscription_id,
                user_email=email,
                user_name=email.split("@")[0].title(),
                language="sv",
            ),
            metadata=actor(by),
        ).assignment

    def check(self, email: str, product: str, capability: int, as_=PRODUCT) -> pb.CheckAccessResponse:
        return self.stub.CheckAccess(
            pb.CheckAccessRequest(user_email=email, product_code=product, capability=capability),
            metadata=as_,
        )

    def payer(self, account_id: str, email: str, granted: bool = True, by: str = "buyer@example.com"):
        return self.deliver(
            "billing.payer_changed",
            account_id=account_id,
            payer_changed=events_pb2.PayerChanged(
                account_id=account_id,
                email=email,
                name="Pat Payer",
                language="fr",
                granted=granted,
                actor_email=by,
            ),
        )

    def opened(self, account_id: str, buyer_email: str):
        return self.deliver(
            "billing.account_opened",
            account_id=account_id,
            account_opened=events_pb2.AccountOpened(
                account_id=account_id, buyer_email=buyer_email, buyer_name="Olga Opener", buyer_language="sv"
            ),
        )

    def role_changes(self) -> list[tuple[str, str, str, bool]]:
        """(account, e-mail, role, granted) of every entitlement.role_changed in the outbox, in order."""
        return [
            (
                e.role_changed.account_id,
                e.role_changed.email,
                common_pb2.Role.Name(e.role_changed.role).removeprefix("ROLE_"),
                e.role_changed.granted,
            )
            for e in self.outbox("entitlement.role_changed")
        ]

    def outbox(self, event_type: str) -> list[events_pb2.Event]:
        from sqlalchemy import select

        t = self.app.db.tables["outbox"]
        with self.app.db.read() as s:
            rows = s.execute(select(t.c.payload).where(t.c.event_type == event_type).order_by(t.c.id)).all()
        return [events_pb2.Event.FromString(r.payload) for r in rows]


@pytest.fixture
def ent(start_service) -> Harness:
    h = Harness(start_service("entitlement"))
    yield h
    h.channel.close()
