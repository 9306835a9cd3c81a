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


def test_every_rpc_logs_one_structured_line(start_service, caplog):
    import json
    import logging

    app = start_service("notification")
    caplog.set_level(logging.INFO, logger="tenure.rpc")
    stub(app).GetTime(clock_pb2.GetTimeRequest(), metadata=[("x-request-id", "req-42")], timeout=5)
    with pytest.raises(grpc.RpcError):
        stub(app).SetTime(clock_pb2.SetTimeRequest(), timeout=5)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "tenure.rpc"]
    assert [(line["method"], line["code"]) for line in lines] == [
        ("/tenure.common.v1.ClockService/GetTime", "OK"),
        ("/tenure.common.v1.ClockService/SetTime", "PERMISSION_DENIED"),
    ]
    assert lines[0]["request_id"] == "req-42" and lines[0]["service"] == "notification"
    assert all(isinstance(line["ms"], float | int) for line in lines)


def test_client_maps_errors_back_and_reports_a_peer_that_is_down(start_service):
    from shared.errors import NotAllowed, PeerUnavailable
    from shared.grpc.clients import ServiceClient
    from tests.service.test_event_pipe import free_port

    app = start_service("billing")
    client = ServiceClient(
        clock_pb2_grpc.ClockServiceStub, app.addr, timeout=5, metadata=[("x-actor-role", "user")]
    )
    with pytest.raises(NotAllowed) as e:
        client.SetTime(clock_pb2.SetTimeRequest())
    assert e.value.reason == "PERMISSION_DENIED" and "operator" in e.value.message
    down = ServiceClient(clock_pb2_grpc.ClockServiceStub, f"127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(PeerUnavailable):
        down.GetTime(clock_pb2.GetTimeRequest())


def test_an_rpc_not_built_answers_unimplemented_with_its_name(start_service):
    from sqlalchemy import MetaData

    from shared.app import ServiceApp
    from tenure.billing.v1 import billing_pb2, billing_pb2_grpc

    def bare(settings, clock):
        app = ServiceApp.create("bare", settings, clock, MetaData())
        app.add_servicer(
            billing_pb2_grpc.add_BillingServiceServicer_to_server,
            billing_pb2_grpc.BillingServiceServicer(),
            billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
            billing_pb2_grpc.BillingServiceServicer,
        )
        return app

    app = start_service("billing", create=bare)
    stub = billing_pb2_grpc.BillingServiceStub(grpc.insecure_channel(app.addr))
    with pytest.raises(grpc.RpcError) as e:
        stub.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id="inv_1"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert (
        e.value.details()
        == "tenure.billing.v1.BillingService/GetInvoice is not implemented yet in this release"
    )
