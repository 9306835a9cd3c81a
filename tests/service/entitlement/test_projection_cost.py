"""What applying a batch of `subscription.*` events costs the entitlement consumer in SQL statements,
and that the per-transaction memos behind that cost keep every rule: the team is loaded (and, on
PostgreSQL, locked) once per account per transaction, a new subscription's view is written with one
statement, and a role change made earlier in the same transaction is seen by the events after it."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from sqlalchemy import event, select

from services.entitlement.adapters.cache import AccessCache
from services.entitlement.adapters.repository import EntitlementUnitOfWork
from services.entitlement.adapters.tables import EntitlementModel, MemberRoleRow, SubscriptionRow
from services.entitlement.app import EventHandlers
from services.entitlement.domain.model import Role
from shared.db import Database
from shared.outbox import EventSink
from tenure.common.v1 import common_pb2 as c
from tenure.events.v1 import events_pb2
from tests.bench.relay import snapshot

ACCOUNTS = 5
EVENTS = 50


@pytest.fixture
def sink(new_db_url, clock):
    db = Database(
        new_db_url("entitlement"),
        EntitlementModel.metadata,
        clock,
        source="entitlement",
        uow_class=EntitlementUnitOfWork,
    )
    db.create_all()
    yield EventSink(db, EventHandlers(AccessCache(lambda email: (), ttl=60)))
    db.dispose()


def _event(event_type: str, account_id: str, **payload) -> events_pb2.Event:
    ev = events_pb2.Event(
        event_id=str(uuid.uuid4()), event_type=event_type, source="test", account_id=account_id
    )
    ((field, message),) = payload.items()
    getattr(ev, field).CopyFrom(message)
    return ev


def created(i: int, account: str | None = None) -> events_pb2.Event:
    account = account or f"acct-cost-{i % ACCOUNTS}"
    snap = snapshot(i, account, product="ACDLT")
    return _event(
        "subscription.created",
        account,
        subscription_created=events_pb2.SubscriptionCreated(subscription=snap),
    )


def payer(account: str, email: str, granted: bool) -> events_pb2.Event:
    return _event(
        "billing.payer_changed",
        account,
        payer_changed=events_pb2.PayerChanged(account_id=account, email=email, name="Pat", granted=granted),
    )


class Statements:
    """Every statement the consumer's engine runs while counting, by the table it is about."""

    def __init__(self, db: Database) -> None:
        self.all: list[str] = []
        self.db = db
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.all.append(" ".join(statement.split()).lower())

    def about(self, *words: str) -> list[str]:
        return [s for s in self.all if all(w in s for w in words)]

    def close(self) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._seen)


def _roles(db: Database) -> Counter[tuple[str, str]]:
    with db.read() as s:
        return Counter((r.account_id, r.role) for r in s.scalars(select(MemberRoleRow)))


def test_a_batch_of_new_subscriptions_costs_three_statements_an_event_or_fewer(sink):
    db = sink.db
    sink.apply_batch([created(i) for i in range(ACCOUNTS)])  # the teams exist: what follows is steady
    counted = Statements(db)
    try:
        assert sink.apply_batch([created(i) for i in range(EVENTS)]) == 0
    finally:
        counted.close()
    views = counted.about("subscription_view")
    # one locking read and one INSERT per event: no read-back of the row through the ORM
    assert len(counted.about("insert into subscription_view")) == EVENTS
    assert len(views) == 2 * EVENTS
    # the team of each account is read once in the transaction, not once per event
    assert len(counted.about("from member_role")) <= ACCOUNTS
    assert len(counted.about("from member ")) + len(counted.about("from member\n")) <= ACCOUNTS
    # a subscription first seen in this transaction has no seats to look up
    assert counted.about("from assignment") == []
    # inbox read, then per event inbox insert + view read + view insert; teams once per account
    assert len(counted.all) <= 1 + 3 * EVENTS + 3 * ACCOUNTS + 5
    with db.read() as s:
        assert len(list(s.scalars(select(SubscriptionRow)))) == ACCOUNTS + EVENTS
    # the buyer of each account's first order is its buyer and primary admin, once
    assert _roles(db) == Counter(
        {
            (f"acct-cost-{i}", r): 1
            for i in range(ACCOUNTS)
            for r in (Role.BUYER.value, Role.PRIMARY_ADMIN.value)
        }
    )


def test_the_team_lock_is_taken_once_per_account_and_transaction(sink, backend):
    if backend != "postgresql":
        pytest.skip("SQLite's BEGIN IMMEDIATE serializes every writer; only PostgreSQL takes team locks")
    counted = Statements(sink.db)
    try:
        sink.apply_batch([created(i) for i in range(EVENTS)])
        first = counted.about("pg_advisory_xact_lock(hashtext")
        counted.all.clear()
        sink.apply_batch([created(i) for i in range(EVENTS)])
        again = counted.about("pg_advisory_xact_lock(hashtext")
    finally:
        counted.close()
    # every account's events serialize on its team, once for the whole transaction
    assert len(first) == ACCOUNTS and len(again) == ACCOUNTS


def test_a_role_change_earlier_in_the_batch_is_seen_by_the_events_after_it(sink):
    db = sink.db
    account = "acct-cost-roles"
    sink.apply_batch(
        [
            created(0, account),
            payer(account, "pat@example.com", True),
            created(1, account),
            payer(account, "pat@example.com", False),  # sees the payer named two events before
            created(2, account),
            payer(account, "sam@example.com", True),
        ]
    )
    with db.read() as s:
        roles = {
            (r.email, r.role)
            for r in s.scalars(select(MemberRoleRow).where(MemberRoleRow.account_id == account))
        }
    buyer = f"buyer{account}@example.com"
    assert roles == {
        (buyer, Role.BUYER.value),
        (buyer, Role.PRIMARY_ADMIN.value),
        ("sam@example.com", Role.PAYER.value),
    }
    published = Counter()
    outbox = db.tables["outbox"]
    with db.read() as s:
        for payload in s.scalars(select(outbox.c.payload)):
            ev = events_pb2.Event.FromString(payload)
            rc = ev.role_changed
            published[(rc.email, ev.event_type, rc.granted)] += 1
    assert published == Counter(
        {
            (buyer, "entitlement.role_changed", True): 2,
            ("pat@example.com", "entitlement.role_changed", True): 1,
            ("pat@example.com", "entitlement.role_changed", False): 1,
            ("sam@example.com", "entitlement.role_changed", True): 1,
        }
    )


def test_a_change_to_a_known_subscription_is_one_update_of_its_view(sink):
    db = sink.db
    first = [created(i) for i in range(ACCOUNTS)]
    sink.apply_batch(first)
    changes = []
    for ev in first:
        snap = events_pb2.SubscriptionSnapshot()
        snap.CopyFrom(ev.subscription_created.subscription)
        snap.stage, snap.seats = c.STAGE_SUSPENDED, 9
        changes.append(
            _event(
                "subscription.stage_changed",
                snap.account_id,
                stage_changed=events_pb2.StageChanged(subscription=snap, reason="payment_failed"),
            )
        )
    counted = Statements(db)
    try:
        sink.apply_batch(changes)
    finally:
        counted.close()
    assert len(counted.about("update subscription_view")) == ACCOUNTS
    assert counted.about("insert into subscription_view") == []
    with db.read() as s:
        views = list(s.scalars(select(SubscriptionRow)))
    assert {(v.stage, v.seats) for v in views} == {("SUSPENDED", 9)}
