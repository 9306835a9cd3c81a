"""Events are delivered in commit order: a transaction that took its outbox row first but commits last
is still delivered (an id-ordered cursor would have moved past it)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import MetaData, func, select

from shared.db import Database
from shared.outbox import Relay
from tenure.events.v1 import events_pb2


class Recorder:
    """Stands in for a subscriber's stub: records what the relay delivers."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def Deliver(self, request, timeout=None, metadata=None):  # noqa: N802 - the gRPC method name
        self.reasons.append(request.event.stage_changed.reason)
        return events_pb2.DeliverResponse()


def publish(uow, reason: str) -> None:
    uow.publish("subscription.stage_changed", stage_changed=events_pb2.StageChanged(reason=reason))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_late_commit_with_an_earlier_row_is_not_skipped(new_db_url, clock):
    db = Database(new_db_url("order"), MetaData(), clock, source="subscription")
    db.create_all()
    relay = Relay(db, ["sink:1"])
    recorder = Recorder()
    relay._subs[0].target.stub = recorder

    first_inserted = threading.Event()
    second_committed = threading.Event()

    def slow():
        with db.unit_of_work() as uow:
            publish(uow, "inserted first, committed last")
            first_inserted.set()
            second_committed.wait(10)

    t = threading.Thread(target=slow)
    t.start()
    assert first_inserted.wait(10)
    with db.unit_of_work() as uow:
        publish(uow, "inserted second, committed first")
    relay.deliver_once()  # the first transaction is still open
    second_committed.set()
    t.join(10)
    relay.deliver_once()
    assert recorder.reasons == ["inserted second, committed first", "inserted first, committed last"]
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(db.tables["outbox"])).scalar_one() == 2
    assert relay.pending() == 0
    db.dispose()


class Holding(Recorder):
    """A subscriber that holds the first delivery until told to answer."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def Deliver(self, request, timeout=None, metadata=None):  # noqa: N802 - the gRPC method name
        self.entered.set()
        assert self.release.wait(10)
        return super().Deliver(request, timeout, metadata)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_relays_on_one_database_never_deliver_the_same_rows(new_db_url, clock):
    """Two copies of a service: while one relay's pass holds a subscriber's cursor, the other leaves that
    subscriber alone (and still serves another one); afterwards nothing is left for either."""
    url = new_db_url("replicas")
    dbs = [Database(url, MetaData(), clock, source="subscription") for _ in range(2)]
    dbs[0].create_all()
    first, second = Relay(dbs[0], ["sink:1", "sink:2"]), Relay(dbs[1], ["sink:1", "sink:2"])
    held, other, late = Holding(), Recorder(), Recorder()
    first._subs[0].target.stub = held
    first._subs[1].target.stub = Recorder()
    second._subs[0].target.stub = late
    second._subs[1].target.stub = other
    with dbs[0].unit_of_work() as uow:
        for r in ("a", "b", "c"):
            publish(uow, r)
    first._subs[1].next_attempt = float("inf")  # the first copy leaves sink:2 to the second in this pass
    t = threading.Thread(target=first.deliver_once)
    t.start()
    assert held.entered.wait(10)  # the first copy is in the middle of sink:1's rows
    assert second.deliver_once() == 3  # sink:2's three, nothing of sink:1's
    assert (late.reasons, other.reasons) == ([], ["a", "b", "c"])
    held.release.set()
    t.join(10)
    assert held.reasons == ["a", "b", "c"]
    assert second.deliver_once() == 0 and late.reasons == []
    first._subs[1].next_attempt = 0.0
    assert first.deliver_once() == 0  # sink:2's cursor moved past them too
    assert first.pending() == second.pending() == 0
    for db in dbs:
        db.dispose()
