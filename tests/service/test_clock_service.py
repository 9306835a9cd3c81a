"""ClockService on every server: read the clock, move the test clock (operators only), drain the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2

from shared.clock import SystemClock
from tenure.common.v1 import clock_pb2, clock_pb2_grpc

OPERATOR = [("x-actor-role", "operator")]


def ts(dt):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def stub(app):
    return clock_pb2_grpc.ClockServiceStub(grpc.insecure_channel(app.addr))


def test_operator_moves_the_test_clock_forward_only(start_service, clock):
    app = start_service("entitlement")
    s = stub(app)
    now = s.GetTime(clock_pb2.GetTimeRequest(), timeout=5)
    assert now.test_clock and now.now_time.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
    target = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    moved = s.SetTime(clock_pb2.SetTimeRequest(to_time=ts(target)), metadata=OPERATOR, timeout=5)
    assert moved.now_time.ToDatetime(tzinfo=UTC) == target == clock.now()
    with pytest.raises(grpc.RpcError) as back:
        s.SetTime(clock_pb2.SetTimeRequest(to_time=ts(datetime(2025, 1, 1, tzinfo=UTC))), metadata=OPERATOR)
    assert back.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert clock.now() == target


def test_moving_the_clock_needs_the_operator_role(start_service, clock):
    app = start_service("billing")
    with pytest.raises(grpc.RpcError) as e:
        stub(app).SetTime(clock_pb2.SetTimeRequest(to_time=ts(datetime(2030, 1, 1, tzinfo=UTC))), timeout=5)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert clock.now() == datetime(2024, 6, 10, 8, 0, tzinfo=UTC)


def test_system_clock_refuses_to_move(start_service):
    from services.billing.app import create

    def on_system_clock(settings, _clock):
        return create(settings, SystemClock())

    app = start_service("billing", create=on_system_clock)
    with pytest.raises(grpc.RpcError) as e:
        stub(app).SetTime(
            clock_pb2.SetTimeRequest(to_time=ts(datetime(2030, 1, 1, tzinfo=UTC))),
            metadata=OPERATOR,
            timeout=5,
        )
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TEST_CLOCK_DISABLED" in str(e.value.trailing_metadata())
    assert not stub(app).GetTime(clock_pb2.GetTimeRequest(), timeout=5).test_clock
