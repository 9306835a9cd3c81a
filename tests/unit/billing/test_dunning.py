"""Payment retries (dunning, rules §5) on the fake unit of work: the schedule of 1, 3, 5 and 7 days after
the first decline, hard declines, a transient processing error, a new card paying at once, and the
e-mail facts of each failed attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.billing.domain import dunning
from services.billing.domain.gateway import DECLINES_AFTER_ATTACH, EXPIRED, PROCESSING_ERROR_ONCE
from services.billing.domain.model import InvoiceKind, InvoiceStatus, MethodType
from services.billing.handlers import sweep
from tests.unit.billing.fakes import CountingGateway, FakeDatabase
from tests.unit.billing.test_handlers import POLICY, method, order, profile

RENEWAL_AT = datetime(2025, 6, 9, 22, 0, tzinfo=UTC)  # 2025-06-10 00:00 in Oslo


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def gateway() -> CountingGateway:
    return CountingGateway()


def renewal(db, gateway, card: str, kind=InvoiceKind.RENEWAL):
    profile(db)
    db.clock.set(RENEWAL_AT)
    return order(
        db, gateway, method(db, gateway, number=card), kind=kind, time_zone="Europe/Oslo"
    ).invoice.invoice


def failures(db) -> list:
    return [m for t, m in db.store.events if t == "billing.payment_failed"]


def run(db, gateway, at: datetime) -> sweep.SweepResult:
    db.clock.set(at)
    return sweep.sweep(db, gateway, POLICY, at)


def test_the_schedule_is_days_after_the_first_decline_and_hard_declines_stop_at_once():
    assert dunning.DEFAULT_SCHEDULE_DAYS == (1, 3, 5, 7)
    first = dunning.after_decline(RENEWAL_AT, 1, "insufficient_funds")
    assert first.retrying and first.next_attempt_time == RENEWAL_AT + timedelta(days=1)
    assert dunning.after_decline(RENEWAL_AT, 4, "card_declined").next_attempt_time == RENEWAL_AT + timedelta(
        days=7
    )
    assert not dunning.after_decline(RENEWAL_AT, 5, "card_declined").retrying  # four retries, then stop
    for hard in ("expired_card", "lost_card", "stolen_card", "incorrect_number"):
        assert dunning.after_decline(RENEWAL_AT, 1, hard).status == dunning.RetryStatus.STOPPED
    assert dunning.enters_dunning(InvoiceKind.INSTALLMENT, MethodType.CARD)
    assert not dunning.enters_dunning(InvoiceKind.NEW, MethodType.CARD)  # checkout: the buyer sees it
    assert not dunning.enters_dunning(InvoiceKind.RENEWAL, MethodType.INVOICE)  # a transfer is awaited


def test_a_declined_renewal_is_retried_on_days_1_3_5_and_7_then_stops(db, gateway):
    inv = renewal(db, gateway, DECLINES_AFTER_ATTACH)
    assert inv.status == InvoiceStatus.OPEN.value and inv.decline_reason == "card_declined"
    (first,) = failures(db)
    assert first.attempt == 1 and not first.update_payment_method
    assert first.next_retry_time.ToDatetime(tzinfo=UTC) == RENEWAL_AT + timedelta(days=1)
    # the sweep says when it next has work: the first retry
    assert run(db, gateway, RENEWAL_AT + timedelta(hours=1)).next_due == RENEWAL_AT + timedelta(days=1)
    assert run(db, gateway, RENEWAL_AT + timedelta(days=1) - timedelta(seconds=1)).retried == 0
    for n, day in enumerate((1, 3, 5, 7), start=2):
        at = RENEWAL_AT + timedelta(days=day)
        result = run(db, gateway, at)
        assert (result.retried, result.retries_paid) == (1, 0)
        assert run(db, gateway, at).retried == 0  # the same instant again: no second attempt
        assert failures(db)[-1].attempt == n
    last = failures(db)[-1]
    assert last.update_payment_method and not last.HasField("next_retry_time")
    assert len(gateway.charges) == 5  # the first charge and four retries, each with its own key
    assert len({key for _, _, key in gateway.charges}) == 5
    assert run(db, gateway, RENEWAL_AT + timedelta(days=30)).retried == 0
    assert db.store.invoices[inv.invoice_id].status == InvoiceStatus.OPEN.value


def test_an_expired_card_is_not_retried(db, gateway):
    renewal(db, gateway, EXPIRED)
    (failed,) = failures(db)
    assert failed.decline_reason == "expired_card" and failed.update_payment_method
    assert not failed.HasField("next_retry_time")
    assert run(db, gateway, RENEWAL_AT + timedelta(days=8)).retried == 0
    assert len(gateway.charges) == 1


def test_a_processing_error_is_cleared_by_the_first_retry(db, gateway):
    inv = renewal(db, gateway, PROCESSING_ERROR_ONCE)
    assert failures(db)[0].decline_reason == "processing_error"
    result = run(db, gateway, RENEWAL_AT + timedelta(days=1))
    assert (result.retried, result.retries_paid) == (1, 1)
    paid = db.store.invoices[inv.invoice_id]
    assert paid.status == InvoiceStatus.PAID.value and paid.amount_paid == Decimal("587.50")
    assert db.events.count("billing.invoice_paid") == 1
    assert run(db, gateway, RENEWAL_AT + timedelta(days=3)).retried == 0  # nothing left to retry
    attempts = [(p.status, p.amount) for p in db.store.payments if p.invoice_id == inv.invoice_id]
    assert attempts == [("declined", Decimal("587.50")), ("succeeded", Decimal("587.50"))]


def test_adding_a_card_pays_the_unpaid_renewal_at_once_and_ends_the_retries(db, gateway):
    inv = renewal(db, gateway, DECLINES_AFTER_ATTACH)
    run(db, gateway, RENEWAL_AT + timedelta(days=1))
    run(db, gateway, RENEWAL_AT + timedelta(days=3))  # retried twice
    db.clock.set(RENEWAL_AT + timedelta(days=3, hours=2))
    new_card = method(db, gateway)  # the buyer replaces the card
    paid = db.store.invoices[inv.invoice_id]
    assert paid.status == InvoiceStatus.PAID.value and paid.payment_method_id == new_card
    assert paid.paid_time == RENEWAL_AT + timedelta(days=3, hours=2)
    succeeded = [p for p in db.store.payments if p.invoice_id == inv.invoice_id and p.status == "succeeded"]
    assert len(succeeded) == 1
    assert db.store.retries[inv.invoice_id].status == dunning.RetryStatus.PAID.value
    assert run(db, gateway, RENEWAL_AT + timedelta(days=5)).retried == 0
    method(db, gateway)  # another card later charges nothing
    assert len([c for c in gateway.charges if c[2].startswith("retry:")]) == 3


def test_a_declined_new_order_is_not_retried(db, gateway):
    profile(db)
    order(db, gateway, method(db, gateway, number=DECLINES_AFTER_ATTACH))
    (failed,) = failures(db)
    assert failed.attempt == 0 and not failed.HasField("next_retry_time")
    assert db.store.retries == {}
