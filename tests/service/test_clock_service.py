"""ClockService on every server: read the clock, move the test clock (operators only), drain the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import timestamp_pb2

from shared.clock import SystemClock, TestClock
from tenure.common.v1 import clock_pb2, clock_pb2_grpc
from tests.auth import operator, person

OPERATOR = operator()
START = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
ADA = person("ada@example.com")


def ts(dt):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def stub(app):
    return clock_pb2_grpc.ClockServiceStub(grpc.insecure_channel(app.addr))


def time_of(app):
    return stub(app).GetTime(clock_pb2.GetTimeRequest(), metadata=ADA, timeout=5)


def test_operator_moves_the_test_clock_forward_only(start_service, clock):
    app = start_service("entitlement")
    s = stub(app)
    now = s.GetTime(clock_pb2.GetTimeRequest(), metadata=ADA, timeout=5)
    assert now.test_clock and now.now_time.ToDatetime(tzinfo=UTC) == datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
    target = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    moved = s.SetTime(clock_pb2.SetTimeRequest(to_time=ts(target)), metadata=OPERATOR, timeout=5)
    assert moved.now_time.ToDatetime(tzinfo=UTC) == target == clock.now()
    with pytest.raises(grpc.RpcError) as back:
        s.SetTime(clock_pb2.SetTimeRequest(to_time=ts(datetime(2025, 1, 1, tzinfo=UTC))), metadata=OPERATOR)
    assert back.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert clock.now() == target


def test_a_restarted_service_resumes_its_test_clock_where_it_was(start_service, clock, new_db_url):
    url = new_db_url("clock")
    first = start_service("entitlement", database_url=url)
    target = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    stub(first).SetTime(clock_pb2.SetTimeRequest(to_time=ts(target)), metadata=OPERATOR, timeout=5)
    first.stop(grace=0)
    # a new process: its clock starts at TENURE_CLOCK_START again, the stored time moves it on
    again = start_service("entitlement", create=None, database_url=url, clock_override=TestClock(START))
    assert time_of(again).now_time.ToDatetime(tzinfo=UTC) == target
    later = datetime(2025, 7, 1, tzinfo=UTC)
    stub(again).SetTime(clock_pb2.SetTimeRequest(to_time=ts(later)), metadata=OPERATOR, timeout=5)
    assert first.db.stored_clock() == later  # stored as it moves (the same database)


def test_moving_the_clock_needs_an_operator_token(start_service, clock):
    app = start_service("billing")
    later = clock_pb2.SetTimeRequest(to_time=ts(datetime(2030, 1, 1, tzinfo=UTC)))
    for metadata, code in [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ([("x-actor-role", "operator")], grpc.StatusCode.UNAUTHENTICATED),
        (ADA, grpc.StatusCode.PERMISSION_DENIED),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            stub(app).SetTime(later, metadata=metadata, timeout=5)
        assert e.value.code() == code
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
    assert not time_of(app).test_clock


def test_every_rpc_logs_one_structured_line(start_service, caplog):
    import json
    import logging

    app = start_service("notification")
    caplog.set_level(logging.INFO, logger="tenure.rpc")
    stub(app).GetTime(clock_pb2.GetTimeRequest(), metadata=[("x-request-id", "req-42"), *ADA], timeout=5)
    with pytest.raises(grpc.RpcError):
        stub(app).SetTime(clock_pb2.SetTimeRequest(), metadata=ADA, timeout=5)
    with pytest.raises(grpc.RpcError):
        stub(app).SetTime(clock_pb2.SetTimeRequest(), timeout=5)
    from shared.telemetry.logs import json_formatter

    records = [json_formatter().format(r) for r in caplog.records if r.name == "tenure.rpc"]
    lines = [json.loads(r) for r in records]
    assert [(line["method"], line["code"], line["principal"]) for line in lines] == [
        ("/tenure.common.v1.ClockService/GetTime", "OK", "ada@example.com"),
        ("/tenure.common.v1.ClockService/SetTime", "PERMISSION_DENIED", "ada@example.com"),
        ("/tenure.common.v1.ClockService/SetTime", "UNAUTHENTICATED", "anonymous"),
    ]
    assert lines[0]["request_id"] == "req-42" and lines[0]["service"] == "notification"
    assert all(isinstance(line["duration_ms"], float | int) for line in lines)
    token = ADA[0][1].removeprefix("Bearer ")
    assert not any(token in r or token.split(".")[2] in r for r in records), "a token was logged"


def test_client_maps_errors_back_and_reports_a_peer_that_is_down(start_service):
    from shared.errors import NotAllowed, PeerUnavailable
    from shared.grpc.clients import ServiceClient
    from tests.service.test_event_pipe import free_port

    app = start_service("billing")
    client = ServiceClient(clock_pb2_grpc.ClockServiceStub, app.addr, timeout=5, credentials=lambda: ADA)
    with pytest.raises(NotAllowed) as e:
        client.SetTime(clock_pb2.SetTimeRequest())
    assert e.value.reason == "PERMISSION_DENIED" and "operator" in e.value.message
    down = ServiceClient(clock_pb2_grpc.ClockServiceStub, f"127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(PeerUnavailable):
        down.GetTime(clock_pb2.GetTimeRequest())


def test_an_rpc_not_built_answers_unimplemented_with_its_name(start_service):
    from sqlalchemy import MetaData

    from shared.app import ServiceApp
    from shared.auth.policy import rule
    from shared.grpc.auth import Permissions
    from tenure.billing.v1 import billing_pb2, billing_pb2_grpc

    def bare(settings, clock):
        app = ServiceApp.create("bare", settings, clock, MetaData())
        app.add_servicer(
            billing_pb2_grpc.add_BillingServiceServicer_to_server,
            billing_pb2_grpc.BillingServiceServicer(),
            billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
            billing_pb2_grpc.BillingServiceServicer,
            Permissions("tenure.billing.v1.BillingService", {"GetInvoice": rule("person")}),
        )
        return app

    app = start_service("billing", create=bare)
    stub = billing_pb2_grpc.BillingServiceStub(grpc.insecure_channel(app.addr))
    with pytest.raises(grpc.RpcError) as e:
        stub.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id="inv_1"), metadata=ADA, timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert (
        e.value.details()
        == "tenure.billing.v1.BillingService/GetInvoice is not implemented yet in this release"
    )
