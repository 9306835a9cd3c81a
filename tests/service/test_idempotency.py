"""`Database.run_idempotent`: one effect per request_id, stored in the same transaction, on both backends."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from shared.db import Database
from shared.errors import InvalidInput, RuleViolation
from tenure.subscription.v1 import subscription_pb2 as pb


@pytest.fixture
def db(new_db_url, clock):
    md = MetaData()
    Table(
        "effects", md, Column("id", Integer, primary_key=True, autoincrement=True), Column("what", String(40))
    )
    d = Database(new_db_url("idem"), md, clock, source="subscription")
    d.create_all()
    yield d
    d.dispose()


def effects(db) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(db.metadata.tables["effects"])).scalar_one()


def work(db, label="done", fail=False):
    def fn(uow):
        uow.session.execute(insert(db.metadata.tables["effects"]).values(what=label))
        if fail:
            raise RuleViolation("refused after writing", reason="TEST")
        return pb.SetAutoRenewResponse(order_number=label)

    return fn


def test_repeat_returns_first_response_and_does_nothing_twice(db):
    req = pb.SetAutoRenewRequest(request_id="r-1", subscription_id="sub_1", auto_renew=True)
    first = db.run_idempotent("SetAutoRenew", req, pb.SetAutoRenewResponse, work(db, "first"))
    again = db.run_idempotent("SetAutoRenew", req, pb.SetAutoRenewResponse, work(db, "second"))
    assert first.order_number == again.order_number == "first"
    assert effects(db) == 1


def test_same_id_with_a_different_request_is_refused(db):
    db.run_idempotent(
        "SetAutoRenew",
        pb.SetAutoRenewRequest(request_id="r-2", auto_renew=True),
        pb.SetAutoRenewResponse,
        work(db),
    )
    with pytest.raises(InvalidInput) as e:
        db.run_idempotent(
            "SetAutoRenew",
            pb.SetAutoRenewRequest(request_id="r-2", auto_renew=False),
            pb.SetAutoRenewResponse,
            work(db),
        )
    assert e.value.reason == "REQUEST_ID_REUSED"
    assert effects(db) == 1


def test_a_failed_request_leaves_nothing_and_can_be_retried(db):
    req = pb.SetAutoRenewRequest(request_id="r-3", auto_renew=True)
    with pytest.raises(RuleViolation):
        db.run_idempotent("SetAutoRenew", req, pb.SetAutoRenewResponse, work(db, fail=True))
    assert effects(db) == 0
    assert (
        db.run_idempotent("SetAutoRenew", req, pb.SetAutoRenewResponse, work(db, "ok")).order_number == "ok"
    )
    assert effects(db) == 1


def test_concurrent_repeats_have_one_effect_and_call_out_once(db):
    req = pb.SetAutoRenewRequest(request_id="r-4", auto_renew=True)
    barrier = threading.Barrier(8)
    results, errors, calls = [], [], []

    def call(i):
        inner = work(db, f"t{i}")

        def counted(uow):
            calls.append(i)  # stands for a call to another service: must happen once
            return inner(uow)

        barrier.wait()
        try:
            results.append(db.run_idempotent("SetAutoRenew", req, pb.SetAutoRenewResponse, counted))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.order_number for r in results}) == 1
    assert effects(db) == 1
    assert len(calls) == 1
