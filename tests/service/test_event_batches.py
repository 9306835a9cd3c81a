"""The relay hands a consumer its events in batches (EventSinkService.DeliverBatch: one call and one
consumer transaction for up to 500 events), falls back to one event per call when a batch fails (so the
events before the failing one are acknowledged) or when the consumer has no DeliverBatch, and serves its
targets in parallel."""

from __future__ import annotations

import time

import grpc
import pytest
from sqlalchemy import func, select

from shared.outbox import MAX_BATCH, DeliveryFailed, GrpcTarget
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests.auth import channel, service
from tests.service.test_event_pipe import (
    applied_reasons,
    consumer_factory,
    free_port,
    producer,
    publish,
    wait_for,
)


class Counting:
    """A stub that forwards to a real one and counts the calls of each method."""

    def __init__(self, stub, batches=True):
        self.stub = stub
        self.calls: dict[str, int] = {"Deliver": 0, "DeliverBatch": 0}
        self.sizes: list[int] = []
        if batches:
            self.DeliverBatch = self._batch

    def Deliver(self, request, **kw):  # noqa: N802 - the stub's method
        self.calls["Deliver"] += 1
        return self.stub.Deliver(request, **kw)

    def _batch(self, request, **kw):
        self.calls["DeliverBatch"] += 1
        self.sizes.append(len(request.events))
        return self.stub.DeliverBatch(request, **kw)


def stage_changes(batch: str, *reasons: str) -> list[events_pb2.Event]:
    """subscription.stage_changed events with these reasons, their ids numbered within `batch`."""
    return [
        events_pb2.Event(
            event_id=f"7d1e5b8a-0000-4000-8000-0000000{batch}000{i}",
            event_type="subscription.stage_changed",
            stage_changed=events_pb2.StageChanged(reason=r),
        )
        for i, r in enumerate(reasons)
    ]


def cursor_of(app):
    cur = app.db.tables["outbox_cursor"]
    with app.db.read() as s:
        return s.execute(select(cur.c.last_id, cur.c.last_error)).one()


def inbox_count(app):
    with app.db.read() as s:
        return s.execute(select(func.count()).select_from(app.db.tables["inbox"])).scalar_one()


def counted_relay(prod, cons_addr, batches=True):
    """The producer's relay, its one target's stub wrapped in a counter."""
    (sub,) = prod.relay._subs
    counting = Counting(sub.target.stub, batches=batches)
    sub.target.stub = counting
    return counting


def test_seven_events_go_in_one_call_and_one_consumer_transaction(start_service):
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    prod = start_service("billing", create=producer, event_subscribers=cons.addr, relay_interval_seconds=3600)
    prod.relay.stop()  # the test drives the relay
    counting = counted_relay(prod, cons.addr)
    publish(prod, "a", "b", "c")
    publish(prod, "d")
    publish(prod, "e", "f", "g")
    commits = []
    from sqlalchemy import event

    event.listen(cons.db.engine, "commit", lambda conn: commits.append(1))
    assert prod.relay.deliver_once() == 7
    assert counting.calls == {"Deliver": 0, "DeliverBatch": 1} and counting.sizes == [7]
    assert applied_reasons(cons, applied) == ["a", "b", "c", "d", "e", "f", "g"]
    assert len(commits) == 1
    assert cursor_of(prod).last_id == 7 and prod.relay.pending() == 0


def test_a_batch_delivered_again_applies_nothing_twice(start_service):
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    stub = events_pb2_grpc.EventSinkServiceStub(channel(cons.addr, default=service()))
    events = stage_changes("1", "x", "y", "z")
    first = stub.DeliverBatch(events_pb2.DeliverBatchRequest(events=events), timeout=5)
    again = stub.DeliverBatch(events_pb2.DeliverBatchRequest(events=events[1:]), timeout=5)
    assert (first.applied, first.duplicates) == (3, 0)
    assert (again.applied, again.duplicates) == (0, 2)
    assert applied_reasons(cons, applied) == ["x", "y", "z"] and inbox_count(cons) == 3


def test_a_batch_with_a_refused_event_applies_none_and_the_relay_acknowledges_those_before_it(start_service):
    create, applied = consumer_factory(refuses=lambda ev: ev.stage_changed.reason == "refuse")
    cons = start_service("entitlement", create=create)
    stub = events_pb2_grpc.EventSinkServiceStub(channel(cons.addr, default=service()))
    events = stage_changes("2", "ok", "refuse")
    with pytest.raises(grpc.RpcError) as err:
        stub.DeliverBatch(events_pb2.DeliverBatchRequest(events=events), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert applied_reasons(cons, applied) == [] and inbox_count(cons) == 0  # all or none

    prod = start_service("billing", create=producer, event_subscribers=cons.addr, relay_interval_seconds=3600)
    prod.relay.stop()
    counting = counted_relay(prod, cons.addr)
    publish(prod, "one", "two", "refuse", "after")
    assert prod.relay.deliver_once() == 2
    assert applied_reasons(cons, applied) == ["one", "two"]  # the rows before the refused one
    row = cursor_of(prod)
    assert row.last_id == 2 and "this consumer refuses it" in row.last_error
    assert counting.calls["DeliverBatch"] == 1 and counting.calls["Deliver"] == 3  # one, two, refuse
    assert prod.relay.pending() == 2  # the refused one and the one after it wait


def test_a_consumer_without_deliver_batch_gets_one_event_per_call(start_service):
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    prod = start_service("billing", create=producer, event_subscribers=cons.addr, relay_interval_seconds=3600)
    prod.relay.stop()
    counting = counted_relay(prod, cons.addr, batches=False)
    publish(prod, "a", "b", "c")
    assert prod.relay.deliver_once() == 3
    assert counting.calls == {"Deliver": 3, "DeliverBatch": 0}
    assert applied_reasons(cons, applied) == ["a", "b", "c"]


def test_unimplemented_deliver_batch_falls_back_to_deliver_from_then_on():
    class Old:
        def __init__(self):
            self.delivered: list[str] = []
            self.batch_calls = 0

        def DeliverBatch(self, request, **kw):  # noqa: N802
            self.batch_calls += 1
            raise Unimplemented()

        def Deliver(self, request, **kw):  # noqa: N802
            self.delivered.append(request.event.event_id)

    class Unimplemented(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNIMPLEMENTED

        def details(self):
            return "Method not found!"

    old = Old()
    target = GrpcTarget("old", old)
    target.send([events_pb2.Event(event_id="1"), events_pb2.Event(event_id="2")])
    target.send([events_pb2.Event(event_id="3"), events_pb2.Event(event_id="4")])
    assert old.delivered == ["1", "2", "3", "4"] and old.batch_calls == 1


def test_more_events_than_a_batch_holds_go_in_several_calls():
    class Stub:
        def __init__(self):
            self.sizes: list[int] = []

        def DeliverBatch(self, request, **kw):  # noqa: N802
            self.sizes.append(len(request.events))

    stub = Stub()
    GrpcTarget("t", stub).send([events_pb2.Event(event_id=str(i)) for i in range(MAX_BATCH + 3)])
    assert stub.sizes == [MAX_BATCH, 3]


def test_a_down_target_does_not_hold_up_the_other(start_service):
    create, applied = consumer_factory()
    cons = start_service("entitlement", create=create)
    down = f"127.0.0.1:{free_port()}"
    prod = start_service("billing", create=producer, event_subscribers=f"{down},{cons.addr}")
    t0 = time.monotonic()
    publish(prod, "a", "b")
    assert wait_for(lambda: applied_reasons(cons, applied) == ["a", "b"], timeout=10)
    assert time.monotonic() - t0 < 5
    assert prod.relay.pending() == 2  # the down target still has both


def test_a_refused_batch_raises_delivery_failed_naming_the_refusal():
    class Refusing:
        def DeliverBatch(self, request, **kw):  # noqa: N802
            raise Refused()

    class Refused(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.FAILED_PRECONDITION

        def details(self):
            return "no"

    with pytest.raises(DeliveryFailed, match="FAILED_PRECONDITION: no"):
        GrpcTarget("t", Refusing()).send([events_pb2.Event(event_id="1"), events_pb2.Event(event_id="2")])
