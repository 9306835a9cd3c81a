"""The sweep's renewals on PostgreSQL, a batch per transaction: a call to billing that fails leaves only its
own subscription due (the rest of the batch commits), a declined one starts the shutoff, and a batch that
fails while writing is rolled back whole and done again one subscription at a time, with nothing renewed,
ordered or announced twice."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import text

from services.subscription import handlers, sweep
from services.subscription.adapters import bulk
from services.subscription.adapters.peers import IssuedInvoice
from services.subscription.adapters.tables import SubscriptionModel
from shared.clock import TestClock
from shared.db import Database
from tests.conftest import PG_AVAILABLE

from .bulk_load import AS_OF, CountingBilling, load
from .conftest import outbox_events

pytestmark = [pytest.mark.pg, pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")]

RENEW = 30
PERIOD = date(2025, 6, 10)


class FlakyBilling(CountingBilling):
    """Billing that is down for `down` and declines the cards of `declined` (by subscription id)."""

    def __init__(self, down: set[str] = frozenset(), declined: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.down, self.declined = set(down), set(declined)

    def create_invoice(self, *, request_id, sub, order_number, kind, lines, term_start_date) -> IssuedInvoice:
        if sub.subscription_id in self.down:
            raise ConnectionError("billing is unavailable")
        issued = super().create_invoice(
            request_id=request_id,
            sub=sub,
            order_number=order_number,
            kind=kind,
            lines=lines,
            term_start_date=term_start_date,
        )
        if sub.subscription_id in self.declined:
            return IssuedInvoice(issued.invoice_id, issued.total, "DECLINED", "card_declined", None)
        return issued


def _db(new_db_url) -> Database:
    db = Database(new_db_url("sub"), SubscriptionModel.metadata, TestClock(AS_OF), source="subscription")
    db.create_all()
    handlers.seed(db)
    load(db.engine, "renew", 1, RENEW, now=AS_OF)
    load(db.engine, "expire", RENEW + 1, 5, now=AS_OF)
    return db


def _sid(n: int) -> str:
    return f"sub_{n:09d}"


def _rows(db: Database, sql: str, **params: object) -> list[tuple]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(text(sql), params).all()]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_billing_down_for_one_leaves_only_it_due_and_a_decline_shuts_off(new_db_url, monkeypatch):
    monkeypatch.setattr(sweep, "REMOTE_BATCH", 8)  # several batches
    db = _db(new_db_url)
    down, declined = _sid(3), _sid(11)
    billing = FlakyBilling(down={down}, declined={declined})
    counts = sweep.run(db, billing, AS_OF)
    # the declined one: Expired from its renewal date, Suspended 15 days later (before AS_OF)
    assert (counts.renewed, counts.expired, counts.suspended) == (RENEW - 2, 5 + 1, 1)
    assert set(billing.calls.values()) == {1} and len(billing.calls) == RENEW - 1
    assert _rows(
        db, "SELECT subscription_id, stage, version FROM subscriptions WHERE subscription_id = :s", s=down
    ) == [(down, "ACTIVE", 1)]
    assert _rows(db, "SELECT status, count(*) FROM renewals GROUP BY status ORDER BY status") == [
        ("DECLINED", 1),
        ("PAID", RENEW - 2),
    ]
    assert _rows(
        db, "SELECT stage, shutoff_reason FROM subscriptions WHERE subscription_id = :s", s=declined
    ) == [("SUSPENDED", "payment_failed")]
    # billing is back: the next sweep renews the one left, and nothing else
    billing.down.clear()
    again = sweep.run(db, billing, AS_OF)
    assert (again.renewed, again.expired, again.total) == (1, 0, 1)
    assert set(billing.calls.values()) == {1} and len(billing.calls) == RENEW
    events = Counter(e.event_type for e in outbox_events(db))
    assert events["subscription.renewed"] == RENEW - 1
    assert _rows(db, "SELECT count(*), count(DISTINCT order_number) FROM orders WHERE kind = 'renewal'") == [
        (RENEW - 1, RENEW - 1)
    ]
    db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_declined_period_is_renewed_in_a_batch_over_its_declined_row(new_db_url):
    db = _db(new_db_url)
    declined = _sid(7)
    sweep.run(db, FlakyBilling(declined={declined}), AS_OF)
    # the customer's card works again: a renewal attempt of the same period later (the row made due again)
    with db.engine.begin() as c:
        c.execute(
            text(
                "UPDATE subscriptions SET stage = 'ACTIVE', shutoff_reason = '', shutoff_start_date = NULL,"
                " suspend_time = NULL, cancel_time = NULL, next_action_time = renewal_time, due_kind = 1"
                " WHERE subscription_id = :s"
            ),
            {"s": declined},
        )
    counts = sweep.run(db, FlakyBilling(), AS_OF)
    assert counts.renewed == 1
    assert _rows(db, "SELECT status, count(*) FROM renewals GROUP BY status") == [("PAID", RENEW)]
    db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_batch_that_fails_while_writing_is_rolled_back_and_done_one_by_one(new_db_url, monkeypatch):
    monkeypatch.setattr(sweep, "REMOTE_BATCH", 10)
    db = _db(new_db_url)
    real, failed = bulk.add_renewals, []

    def fail_once(uow, rows):
        if not failed:
            failed.append(len(rows))
            raise RuntimeError("the database went away")
        real(uow, rows)

    monkeypatch.setattr(bulk, "add_renewals", fail_once)
    billing = CountingBilling()
    counts = sweep.run(db, billing, AS_OF)
    assert failed == [10]
    assert counts.renewed == RENEW and counts.expired == 5
    # the rolled-back batch's ten were billed again with the same request ids (billing answers with the
    # invoice it issued first): one renewal, one order and one event each
    assert len(billing.calls) == RENEW and sorted(Counter(billing.calls.values()).items()) == [
        (1, 20),
        (2, 10),
    ]
    assert _rows(db, "SELECT count(*), count(DISTINCT subscription_id) FROM renewals") == [(RENEW, RENEW)]
    assert _rows(
        db, "SELECT count(*), count(DISTINCT subscription_id) FROM orders WHERE kind = 'renewal'"
    ) == [(RENEW, RENEW)]
    renewed = [e.subscription_id for e in outbox_events(db) if e.event_type == "subscription.renewed"]
    assert sorted(renewed) == [_sid(n) for n in range(1, RENEW + 1)]
    assert _rows(db, "SELECT count(*) FROM subscriptions WHERE next_action_time <= :t", t=AS_OF) == [(0,)]
    db.dispose()
