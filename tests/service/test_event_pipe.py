"""The event pipe: outbox → relay → EventSinkService → inbox, exactly once, nothing lost.

The producer and consumer here are small apps of their own (their own tables, no migration
history), started with the settings classes of two real services.
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
from tests.auth import channel, service


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


def test_event_is_applied_once_in_order(start_service):
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


def test_consumer_down_at_first_gets_everything_later(start_service):
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


def test_refused_event_maps_to_error_model_changes_nothing_and_blocks_later_events(start_service):
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


def test_a_json_batch_is_delivered_event_by_event_and_a_retried_batch_applies_each_once(start_service):
    """The consumer refuses the second event of a batch once: the relay sends the batch again from its first
    event, whose repeat the inbox drops (its id is the same: derived from the row and the event's place)."""
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
