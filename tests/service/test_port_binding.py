"""A service's gRPC port is its own unless `reuse_port` says otherwise: a second copy started on a port
that is taken fails at once with a clear error, and the first keeps serving (a stale `make run` can no
longer quietly take part of the traffic)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.billing.app import create
from shared.grpc.server import PortInUseError
from shared.settings import BillingSettings


def _serving(addr: str) -> bool:
    with grpc.insecure_channel(addr) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return resp.status == health_pb2.HealthCheckResponse.SERVING


def _second(new_db_url, clock, port: int, **overrides):
    settings = BillingSettings(
        addr=f"127.0.0.1:{port}", database_url=new_db_url("billing-2"), event_subscribers="", **overrides
    )
    return create(settings, clock)


def test_a_second_copy_on_a_taken_port_fails_and_the_first_keeps_serving(start_service, new_db_url, clock):
    first = start_service("billing")
    assert first.settings.reuse_port is False  # the default: exclusive
    second = _second(new_db_url, clock, first.port)
    try:
        with pytest.raises(PortInUseError) as err:
            second.start()
    finally:
        second.stop(grace=0)
    message = str(err.value)
    assert f"127.0.0.1:{first.port}" in message and "in use" in message
    assert "TENURE_BILLING_REUSE_PORT" in message  # says how to share it on purpose
    assert _serving(first.addr)
    assert second.server.port == 0  # it never listened


def test_copies_that_both_ask_to_share_a_port_may(start_service, new_db_url, clock):
    first = start_service("billing", reuse_port=True)
    second = _second(new_db_url, clock, first.port, reuse_port=True)
    try:
        assert second.start() == first.port
        assert _serving(first.addr)
    finally:
        second.stop(grace=0)
    assert _serving(first.addr)


def test_sharing_needs_both_copies_to_ask(start_service, new_db_url, clock):
    first = start_service("billing")  # exclusive
    second = _second(new_db_url, clock, first.port, reuse_port=True)
    try:
        with pytest.raises(PortInUseError):
            second.start()
    finally:
        second.stop(grace=0)
    assert _serving(first.addr)
