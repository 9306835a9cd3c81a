"""The event pipe: outbox → relay → EventSinkService (or a JetStream stream and its durable consumer)
→ inbox, exactly once, in order, nothing lost.

The producer and consumer here are small apps of their own (their own tables, no migration
history), started with the settings classes of two real services. Tests that take `transport` run
once with the direct gRPC push and once over NATS JetStream, each with a stream of its own.
"""

from __future__ import annotations

import socket
import time
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from shared.app import ServiceApp
from shared.errors import RuleViolation
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests import nats_support
from tests.auth import channel, service


@pytest.fixture(params=["grpc", "nats"])
def transport(request, monkeypatch):
    """`grpc`: the relay pushes to `event_subscribers`. `nats`: every app started in the test publishes to
    and consumes from a stream of the test's own (deleted afterwards); `event_subscribers` is unused."""
    if request.param == "grpc":
        yield "grpc"
        return
    if not nats_support.NATS_AVAILABLE:
        pytest.skip("NATS with JetStream is not reachable")
    bus = nats_support.unique_bus()
    for k, v in nats_support.env_of(bus).items():
        monkeypatch.setenv(k, v)
    yield "nats"
    nats_support.delete_stream(bus)


def producer(settings, clock):
    return ServiceApp.create("producer", settings, clock, MetaData())


def consumer_factory(refuses=lambda ev: False):
    """A consumer that applies stage changes, refusing those for which `refuses(event)` is true."""
    md = MetaData()
    applied = Table(
        "applied",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("reason", String(40)),
    )

    def handle(uow, ev):
        if refuses(ev):
            raise RuleViolation("this consumer refuses it", reason="TEST_REFUSED")
        uow.session.execute(insert(applied).values(reason=ev.stage_changed.reason))

    def create(settings, clock):
        app = ServiceApp.create("consumer", settings, clock, md)
        app.add_event_sink({"subscription.stage_changed": handle})
        return app

    return create, applied


def publish(app, *reasons):
    with app.db.unit_of_work() as uow:
        for r in reasons:
            uow.publish(
                "subscription.stage_changed",
                account_id="acc_1",
                subscription_id="sub_1",
                stage_changed=events_pb2.StageChanged(reason=r),
            )


def applied_reasons(app, table):
    with app.db.read() as s:
        return [r for (r,) in s.execute(select(table.c.reason).order_by(table.c.id))]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_event_is_applied_once_in_order(transport, start_service):
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    prod = start_service("billing", create=producer, event_subscribers=cons.addr)
    publish(prod, "a", "b")
    publish(prod, "c")
    assert wait_for(lambda: applied_reasons(cons, applied) == ["a", "b", "c"])
    assert prod.relay.drain(5)
    time.sleep(0.2)
    assert applied_reasons(cons, applied) == ["a", "b", "c"]
    with cons.db.read() as s:
        assert s.execute(select(func.count()).select_from(cons.db.tables["inbox"])).scalar_one() == 3


def test_consumer_down_at_first_gets_everything_later(transport, start_service):
    if transport == "nats":
        return consumer_never_started_reads_the_stream_from_its_start(start_service)
    port = free_port()
    prod = start_service("billing", create=producer, event_subscribers=f"127.0.0.1:{port}")
    publish(prod, "one", "two", "three")
    time.sleep(0.5)
    assert prod.relay.pending() == 3
    cur = prod.db.tables["outbox_cursor"]
    with prod.db.read() as s:
        row = s.execute(select(cur.c.last_id, cur.c.attempts, cur.c.last_error)).one()
    assert row.last_id == 0 and row.attempts >= 1 and "UNAVAILABLE" in row.last_error
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create, addr=f"127.0.0.1:{port}")
    assert wait_for(lambda: applied_reasons(cons, applied) == ["one", "two", "three"], timeout=15)
    assert wait_for(lambda: prod.relay.pending() == 0)


def test_same_event_delivered_twice_is_applied_once(start_service):
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    ev = events_pb2.Event(
        event_id="7d1e5b8a-0000-4000-8000-000000000001",
        event_type="subscription.stage_changed",
        source="subscription",
        stage_changed=events_pb2.StageChanged(reason="once"),
    )
    stub = events_pb2_grpc.EventSinkServiceStub(channel(cons.addr, default=service()))
    first = stub.Deliver(events_pb2.DeliverRequest(event=ev), timeout=5)
    second = stub.Deliver(events_pb2.DeliverRequest(event=ev), timeout=5)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert applied_reasons(cons, applied) == ["once"]


def test_refused_event_maps_to_error_model_changes_nothing_and_blocks_later_events(transport, start_service):
    create, applied = consumer_factory(refuses=lambda ev: ev.stage_changed.reason == "refuse")
    cons = start_service("entitlement", create=create)
    stub = events_pb2_grpc.EventSinkServiceStub(channel(cons.addr, default=service()))
    ev = events_pb2.Event(
        event_id="7d1e5b8a-0000-4000-8000-000000000002",
        event_type="subscription.stage_changed",
        stage_changed=events_pb2.StageChanged(reason="refuse"),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.Deliver(events_pb2.DeliverRequest(event=ev), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "this consumer refuses it"
    st = rpc_status.from_call(err.value)
    info = error_details_pb2.ErrorInfo()
    assert st.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("ERROR_REASON_TEST_REFUSED", "consumer.tenure")
    with cons.db.read() as s:
        assert s.execute(select(func.count()).select_from(cons.db.tables["inbox"])).scalar_one() == 0

    # Through the relay: the refused event is retried, and the one after it waits (order is kept).
    prod = start_service("billing", create=producer, event_subscribers=cons.addr)
    publish(prod, "refuse", "after")
    time.sleep(1.0)
    assert applied_reasons(cons, applied) == []
    # over NATS: both rows are in the stream, one handed out and refused (again and again), one waiting
    assert prod.relay.pending() == 2


def test_ports_and_health(start_service):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    create, _ = consumer_factory()
    cons = start_service("entitlement", create=create)
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(cons.addr))
    assert (
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    assert (
        stub.Check(
            health_pb2.HealthCheckRequest(service="tenure.events.v1.EventSinkService"), timeout=5
        ).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def publish_batch(app, *reasons) -> str:
    """One outbox batch row of stage changes (as the lifecycle sweep writes them): what they share in the
    payload, the rest per element."""
    import json

    row_id = str(uuid.uuid4())
    shared = events_pb2.Event(
        event_type="subscription.stage_changed",
        source="producer",
        stage_changed=events_pb2.StageChanged(to_stage=3),
    )
    items = [
        {"accountId": "acc_1", "subscriptionId": f"sub_{i}", "stageChanged": {"reason": r}}
        for i, r in enumerate(reasons)
    ]
    with app.db.unit_of_work() as uow:
        uow.session.execute(
            insert(app.db.tables["outbox"]).values(
                event_id=row_id,
                event_type="subscription.stage_changed",
                account_id="",
                subscription_id="",
                occurred_time=uow.now,
                payload=shared.SerializeToString(),
                batch=json.dumps(items),
            )
        )
        uow.count_published(1)
    return row_id


def test_a_json_batch_is_delivered_event_by_event_and_a_retried_batch_applies_each_once(
    transport, start_service
):
    """The consumer refuses the second event of a batch once: the relay sends the batch again from its first
    event, whose repeat the inbox drops (its id is the same: derived from the row and the event's place).
    Over NATS the refused event alone comes again, and the one after it waits for it."""
    refused = []

    def refuses_b_once(ev) -> bool:
        if ev.stage_changed.reason == "b" and not refused:
            refused.append(ev.event_id)
            return True
        return False

    create, applied = consumer_factory(refuses=refuses_b_once)
    cons = start_service("entitlement", create=create)
    prod = start_service("billing", create=producer, event_subscribers=cons.addr)
    row_id = publish_batch(prod, "a", "b", "c")
    assert wait_for(lambda: applied_reasons(cons, applied) == ["a", "b", "c"], timeout=15)
    assert wait_for(lambda: prod.relay.pending() == 0)
    assert len(refused) == 1
    inbox = cons.db.tables["inbox"]
    with cons.db.read() as s:
        ids = [r for (r,) in s.execute(select(inbox.c.event_id).order_by(inbox.c.received_time))]
    expected = [str(uuid.uuid5(uuid.UUID(row_id), str(i))) for i in range(3)]
    assert sorted(ids) == sorted(expected) and refused == [expected[1]]


def test_events_of_a_batch_row_are_its_payload_merged_with_each_element():
    import json
    from types import SimpleNamespace

    from shared.outbox import events_of

    shared = events_pb2.Event(
        event_type="subscription.renewal_reminder",
        source="subscription",
        renewal_reminder=events_pb2.RenewalReminder(
            days_before=45, subscription=events_pb2.SubscriptionSnapshot(term=2, time_zone="Europe/Oslo")
        ),
    )
    row = SimpleNamespace(
        seq=7,
        event_id="7d1e5b8a-0000-4000-8000-000000000003",
        payload=shared.SerializeToString(),
        batch=json.dumps(
            [
                {"subscriptionId": f"sub_{i}", "renewalReminder": {"subscription": {"seats": i}}}
                for i in (1, 2)
            ]
        ),
    )
    first, second = events_of(row)
    assert (first.event_type, first.source, first.sequence, first.subscription_id) == (
        "subscription.renewal_reminder",
        "subscription",
        7,
        "sub_1",
    )
    snap = first.renewal_reminder.subscription
    assert (first.renewal_reminder.days_before, snap.term, snap.time_zone, snap.seats) == (
        45,
        2,
        "Europe/Oslo",
        1,
    )
    assert second.renewal_reminder.subscription.seats == 2 and second.subscription_id == "sub_2"
    assert [e.event_id for e in events_of(row)] == [first.event_id, second.event_id]  # stable
    assert first.event_id != second.event_id
    single = SimpleNamespace(seq=8, event_id="", payload=first.SerializeToString(), batch=None)
    (again,) = events_of(single)
    assert (again.event_id, again.sequence, again.subscription_id) == (first.event_id, 8, "sub_1")


# -- over NATS JetStream ------------------------------------------------------------------------------


def consumer_never_started_reads_the_stream_from_its_start(start_service):
    """The producer's relay publishes whether or not anyone consumes; a consumer started later reads the
    stream from its first event."""
    prod = start_service("billing", create=producer)
    publish(prod, "one", "two", "three")
    bus = prod.bus.settings
    assert wait_for(lambda: nats_support.stream_messages(bus) == 3)
    # in the stream, and no consumer waits for anything yet (once the relay has moved its cursor, which it
    # does after the stream acknowledged the third event)
    assert wait_for(lambda: prod.relay.pending() == 0)
    cur = prod.db.tables["outbox_cursor"]
    with prod.db.read() as s:
        assert s.execute(select(cur.c.subscriber, cur.c.last_id)).all() == [(f"nats:{bus.stream}", 3)]
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    assert wait_for(lambda: applied_reasons(cons, applied) == ["one", "two", "three"], timeout=15)
    assert wait_for(lambda: prod.relay.pending() == 0)


def test_a_consumer_that_was_down_catches_up_from_the_stream(transport, start_service, new_db_url):
    if transport != "nats":
        pytest.skip("the direct push's version is test_consumer_down_at_first_gets_everything_later")
    create, applied = consumer_factory()
    cons_db = new_db_url("consumer")
    cons = start_service("entitlement", create=create, database_url=cons_db)
    prod = start_service("billing", create=producer)
    publish(prod, "before")
    assert wait_for(lambda: applied_reasons(cons, applied) == ["before"])
    cons.stop(grace=0)
    publish(prod, "while", "down")
    bus = prod.bus.settings
    assert wait_for(lambda: nats_support.stream_messages(bus) == 3)
    assert nats_support.consumers(bus) == {
        "consumer": (2, 0)
    }  # its durable (the service's name) keeps its place
    assert prod.relay.pending() == 2
    cons = start_service("entitlement", create=create, database_url=cons_db)
    assert wait_for(lambda: applied_reasons(cons, applied) == ["before", "while", "down"], timeout=15)
    assert wait_for(lambda: prod.relay.pending() == 0)
    assert nats_support.consumers(bus) == {"consumer": (0, 0)}


def test_events_go_to_one_subject_per_type_and_subscription_and_the_event_id_is_the_msg_id(
    transport, start_service
):
    if transport != "nats":
        pytest.skip("subjects are NATS's")
    import asyncio

    import nats

    prod = start_service("billing", create=producer)
    publish(prod, "a")
    bus = prod.bus.settings
    assert wait_for(lambda: nats_support.stream_messages(bus) == 1)
    ob = prod.db.tables["outbox"]
    with prod.db.read() as s:
        (event_id,) = s.execute(select(ob.c.event_id)).one()

    async def first():
        nc = await nats.connect(bus.url)
        try:
            return await nc.jetstream().get_msg(bus.stream, 1)
        finally:
            await nc.close()

    msg = asyncio.run(first())
    assert msg.subject == f"{bus.subject_prefix}.subscription.stage_changed.sub_1"
    assert msg.headers["Nats-Msg-Id"] == event_id
    ev = events_pb2.Event.FromString(msg.data)
    assert (ev.event_id, ev.stage_changed.reason, ev.sequence) == (event_id, "a", 1)


def test_a_row_published_again_is_dropped_by_the_stream(transport, start_service):
    """The relay died after the stream acknowledged a row but before its cursor moved: the row goes out
    again, and JetStream drops it by its Nats-Msg-Id (the consumers' inboxes would drop it after the window)."""
    if transport != "nats":
        pytest.skip("de-duplication by Nats-Msg-Id is JetStream's")
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    prod = start_service("billing", create=producer)
    publish(prod, "x", "y")
    assert wait_for(lambda: applied_reasons(cons, applied) == ["x", "y"])
    (target,) = prod.relay.targets
    assert (target.published, target.duplicates) == (2, 0)
    cur = prod.db.tables["outbox_cursor"]
    from sqlalchemy import update

    with prod.db.unit_of_work() as uow:
        uow.session.execute(update(cur).values(last_id=0))
    assert prod.relay.drain(10)
    assert (target.published, target.duplicates) == (4, 2)
    assert nats_support.stream_messages(prod.bus.settings) == 2
    assert applied_reasons(cons, applied) == ["x", "y"]


def test_a_service_whose_nats_cannot_be_reached_does_not_start(start_service, monkeypatch):
    monkeypatch.setenv("TENURE_NATS_URL", f"nats://127.0.0.1:{free_port()}")
    create, _ = consumer_factory()
    with pytest.raises(
        RuntimeError, match=r"NATS at nats://127\.0\.0\.1:\d+ \(TENURE_NATS_URL\) cannot be reached"
    ):
        start_service("entitlement", create=create, client_timeout_seconds=1.0)
