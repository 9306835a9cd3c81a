"""Entitlement fed by the real subscription service's events: an upgrade's 30-day overlap, the
shutoff stages driven by the lifecycle sweep, and a refund."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest

from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import common_pb2 as c
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.subscription.v1 import subscription_pb2 as spb
from tenure.subscription.v1 import subscription_pb2_grpc
from tests.auth import channel, operator, person
from tests.service.entitlement.conftest import Harness

BUYER = "kari@example.no"
AS_BUYER = person(BUYER)
OPERATOR = operator()


def rid() -> str:
    return uuid.uuid4().hex


class Stack:
    def __init__(self, start_service) -> None:
        self.billing_app = start_service("billing", sweep_interval_seconds=0)
        self.ent = Harness(start_service("entitlement"))
        self.sub_app = start_service(
            "subscription",
            billing_addr=self.billing_app.addr,
            entitlement_addr=self.ent.app.addr,
            event_subscribers=self.ent.app.addr,
            lifecycle_interval_seconds=0,
        )
        # the buyer orders, upgrades and asks for refunds
        self.sub = subscription_pb2_grpc.SubscriptionServiceStub(channel(self.sub_app.addr, default=AS_BUYER))
        self.billing = billing_pb2_grpc.BillingServiceStub(channel(self.billing_app.addr, default=AS_BUYER))

    def buy(self, **kw) -> spb.Subscription:
        pm = self.billing.AddPaymentMethod(
            billing_pb2.AddPaymentMethodRequest(
                account_id="acct-1",
                type=c.PAYMENT_METHOD_TYPE_CARD,
                card_number="4242424242424242",
                request_id=rid(),
            )
        ).payment_method.payment_method_id
        fields = dict(
            request_id=rid(),
            account_id="acct-1",
            buyer=spb.Buyer(email=BUYER, name="Kari Nordmann", language="nb"),
            product_code="ACDLT",
            plan=c.PLAN_STANDARD,
            term=c.TERM_ANNUAL,
            seats=2,
            currency_code="USD",
            country_code="NO",
            time_zone="Europe/Oslo",
            channel=c.CHANNEL_DIRECT_ONLINE,
            payment_method_id=pm,
        )
        fields.update(kw)
        s = self.sub.CreateSubscription(spb.CreateSubscriptionRequest(**fields)).subscription
        self.sync()
        return s

    def sync(self) -> None:
        assert self.sub_app.relay.drain(10)

    def sweep(self) -> None:
        try:
            self.sub.RunLifecycle(spb.RunLifecycleRequest(request_id=rid()), metadata=OPERATOR)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                pytest.skip("the subscription service's lifecycle sweep is not built yet")
            raise
        self.sync()

    def check(self, product: str, capability=c.CAPABILITY_PRODUCT_ACCESS, user="ola@example.no"):
        return self.ent.check(user, product, capability)


@pytest.fixture
def stack(start_service) -> Stack:
    return Stack(start_service)


def test_upgrade_overlap_then_old_side_ends(stack, clock):
    old = stack.buy()
    stack.ent.assign(_sub(old), "ola@example.no", by=BUYER)
    up = stack.sub.UpgradeSubscription(
        spb.UpgradeSubscriptionRequest(
            request_id=rid(), subscription_id=old.subscription_id, target_product_code="ACD"
        )
    )
    stack.sync()
    new = up.new_subscription
    stack.ent.assign(_sub(new), "ola@example.no", by=BUYER)
    # during the overlap the user holds the old product and the new one
    assert stack.check("ACDLT").allowed and stack.check("ACD").allowed
    until = stack.check("ACDLT").access_until_time.ToDatetime()
    assert until == up.old_access_until_time.ToDatetime()
    access = stack.ent.stub.GetSubscriptionAccess(
        pb.GetSubscriptionAccessRequest(subscription_id=old.subscription_id), metadata=AS_BUYER
    )
    assert access.upgraded_to_subscription_id == new.subscription_id
    clock.advance(timedelta(days=31))
    r = stack.check("ACDLT")  # ended by the clock, whatever events come later
    assert (r.allowed, r.reason) == (False, pb.ACCESS_REASON_ACCESS_ENDED)
    assert stack.check("ACD").allowed


def test_shutoff_stages_from_the_sweep_and_refund(stack, clock):
    s = stack.buy(auto_renew=False)
    stack.ent.assign(_sub(s), "ola@example.no", by=BUYER)
    assert stack.check("ACDLT", c.CAPABILITY_DOWNLOADS).level == c.ACCESS_LEVEL_FULL
    clock.set(s.renewal_time.ToDatetime().replace(tzinfo=clock.now().tzinfo) + timedelta(hours=1))
    stack.sweep()
    r = stack.check("ACDLT", c.CAPABILITY_DOWNLOADS)
    assert (r.stage, r.level) == (c.STAGE_EXPIRED, c.ACCESS_LEVEL_LIMITED)
    clock.advance(timedelta(days=15))
    stack.sweep()
    r = stack.check("ACDLT", c.CAPABILITY_USER_MANAGEMENT)
    assert (r.stage, r.level) == (c.STAGE_SUSPENDED, c.ACCESS_LEVEL_READ_ONLY)
    clock.advance(timedelta(days=30))
    stack.sweep()
    r = stack.check("ACDLT", c.CAPABILITY_SUPPORT)
    assert (r.stage, r.level) == (c.STAGE_CANCELLED, c.ACCESS_LEVEL_SELF_HELP)
    assert not stack.ent.stub.ListAssignments(
        pb.ListAssignmentsRequest(account_id="acct-1"), metadata=AS_BUYER
    ).assignments


def test_refund_ends_access_at_once(stack):
    s = stack.buy()
    stack.ent.assign(_sub(s), "ola@example.no", by=BUYER)
    stack.sub.RequestRefund(
        spb.RequestRefundRequest(request_id=rid(), subscription_id=s.subscription_id, reason="t")
    )
    stack.sync()
    r = stack.check("ACDLT")
    assert (r.allowed, r.stage) == (False, c.STAGE_CANCELLED)
    assert not stack.ent.stub.ListAssignments(
        pb.ListAssignmentsRequest(account_id="acct-1"), metadata=AS_BUYER
    ).assignments
    reasons = [e.seat_unassigned.reason for e in stack.ent.outbox("entitlement.seat_unassigned")]
    assert reasons == ["refunded"]
    # holding no seat any more, Ola is no longer a user of the account
    users = [(email, granted) for _, email, role, granted in stack.ent.role_changes() if role == "USER"]
    assert users == [("ola@example.no", True), ("ola@example.no", False)]


def _sub(s: spb.Subscription):
    class _S:
        subscription_id = s.subscription_id

    return _S
