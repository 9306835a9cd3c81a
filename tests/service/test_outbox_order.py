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
