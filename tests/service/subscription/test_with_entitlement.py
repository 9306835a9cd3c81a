"""Renewal seats never below the users assigned, asked of the real entitlement service, which learns
about the subscription from the subscription service's events."""

from __future__ import annotations

import grpc
import pytest

from tenure.entitlement.v1 import entitlement_pb2, entitlement_pb2_grpc
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import channel, person

from .conftest import KARI, Stack, error_info, rid


def test_renewal_seats_cannot_go_below_the_users_assigned(start_service, clock):
    billing_app = start_service("billing", sweep_interval_seconds=0)
    ent_app = start_service("entitlement")
    sub_app = start_service(
        "subscription",
        billing_addr=billing_app.addr,
        entitlement_addr=ent_app.addr,
        event_subscribers=ent_app.addr,
        lifecycle_interval_seconds=0,
    )
    stack = Stack.at(sub_app, billing_app, clock)
    ent = entitlement_pb2_grpc.EntitlementServiceStub(channel(ent_app.addr))
    s = stack.buy(seats=3).subscription
    sub_app.relay.drain(10)
    buyer = person(KARI)
    for user in ("ola@example.no", "per@example.no"):
        ent.AssignSeat(
            entitlement_pb2.AssignSeatRequest(
                request_id=rid(),
                subscription_id=s.subscription_id,
                user_email=user,
                user_name=user,
                language="nb",
            ),
            metadata=buyer,
        )
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.SetRenewalSeats(
            pb.SetRenewalSeatsRequest(subscription_id=s.subscription_id, seats=1, request_id=rid())
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(e.value).reason == "ERROR_REASON_SEATS_BELOW_ASSIGNED"
    ok = stack.sub.SetRenewalSeats(
        pb.SetRenewalSeatsRequest(subscription_id=s.subscription_id, seats=2, request_id=rid())
    )
    assert (ok.subscription.seats, ok.subscription.renewal_seats) == (3, 2)
