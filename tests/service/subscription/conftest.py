"""A running subscription service beside a real billing service, and helpers to call them.

Calls go as Kari, the buyer the orders name, unless they carry their own token (`metadata=OPERATOR`,
`person(...)`); an order that names another buyer is placed by that buyer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import date_pb2
from grpc_status import rpc_status
from sqlalchemy import select

from shared.money import from_proto
from shared.outbox import OUTBOX_COLUMNS, events_of
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.subscription.v1 import subscription_pb2 as pb
from tenure.subscription.v1 import subscription_pb2_grpc
from tests.auth import channel, operator, person

KARI = "kari@example.no"
OPERATOR = operator()
OK_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    st = rpc_status.from_call(err)
    for d in st.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {err}")


def money(msg) -> Decimal:
    return from_proto(msg).amount


def day(y: int, m: int, d: int) -> date_pb2.Date:
    return date_pb2.Date(year=y, month=m, day=d)


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class Stack:
    sub: subscription_pb2_grpc.SubscriptionServiceStub
    billing: billing_pb2_grpc.BillingServiceStub
    sub_app: object
    billing_app: object
    clock: object

    @classmethod
    def at(cls, sub_app, billing_app, clock, sub_addr: str = "", billing_addr: str = "") -> Stack:
        """Stubs of the two services that call as Kari unless a call names its own caller."""
        as_kari = person(KARI)
        return cls(
            sub=subscription_pb2_grpc.SubscriptionServiceStub(
                channel(sub_addr or sub_app.addr, default=as_kari)
            ),
            billing=billing_pb2_grpc.BillingServiceStub(
                channel(billing_addr or billing_app.addr, default=as_kari)
            ),
            sub_app=sub_app,
            billing_app=billing_app,
            clock=clock,
        )

    def card(self, account_id: str, number: str = OK_CARD, who: str = KARI) -> str:
        resp = self.billing.AddPaymentMethod(
            billing_pb2.AddPaymentMethodRequest(
                account_id=account_id,
                type=common_pb2.PAYMENT_METHOD_TYPE_CARD,
                card_number=number,
                request_id=rid(),
            ),
            metadata=person(who),
        )
        return resp.payment_method.payment_method_id

    def paypal(self, account_id: str, who: str = KARI) -> str:
        resp = self.billing.AddPaymentMethod(
            billing_pb2.AddPaymentMethodRequest(
                account_id=account_id,
                type=common_pb2.PAYMENT_METHOD_TYPE_PAYPAL,
                paypal_email="pay@example.no",
                request_id=rid(),
            ),
            metadata=person(who),
        )
        return resp.payment_method.payment_method_id

    def order(self, account_id: str = "acct-1", pm: str | None = None, **kw) -> pb.CreateSubscriptionRequest:
        """An order of one annual AutoCAD LT seat; the card is added by the buyer the order names."""
        buyer = kw.pop("buyer", None) or pb.Buyer(email=KARI, name="Kari Nordmann", language="nb")
        fields = dict(
            request_id=rid(),
            account_id=account_id,
            buyer=buyer,
            product_code="ACDLT",
            plan=common_pb2.PLAN_STANDARD,
            term=common_pb2.TERM_ANNUAL,
            seats=1,
            currency_code="USD",
            country_code="NO",
            time_zone="Europe/Oslo",
            channel=common_pb2.CHANNEL_DIRECT_ONLINE,
            payment_method_id=pm if pm is not None else self.card(account_id, who=buyer.email),
        )
        fields.update(kw)
        return pb.CreateSubscriptionRequest(**fields)

    def buy(self, account_id: str = "acct-1", pm: str | None = None, **kw) -> pb.CreateSubscriptionResponse:
        """Place `order(...)` as the buyer it names."""
        req = self.order(account_id, pm, **kw)
        return self.sub.CreateSubscription(req, metadata=person(req.buyer.email))


@pytest.fixture
def stack(start_service, clock) -> Stack:
    billing_app = start_service("billing", sweep_interval_seconds=0)
    sub_app = start_service(
        "subscription", billing_addr=billing_app.addr, entitlement_addr="", lifecycle_interval_seconds=0
    )
    return Stack.at(sub_app, billing_app, clock)


def outbox_events(db) -> list[events_pb2.Event]:
    """Every event in a service's outbox, in delivery order, as the relay sends them (batch rows expanded)."""
    ob = db.tables["outbox"]
    with db.read() as s:
        rows = s.execute(select(*(ob.c[c] for c in OUTBOX_COLUMNS)).order_by(ob.c.seq, ob.c.id)).all()
    return [ev for row in rows for ev in events_of(row)]
