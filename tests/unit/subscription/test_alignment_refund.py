"""Rules §3: cancelling (automatic renewal off, or a refund request) before the next renewal of a term that
an alignment extended refunds the alignment's prorated amount with a credit note, once; on the fake unit
of work and the fake billing (tax 25 %)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.subscription import handlers
from shared.errors import RuleViolation
from tests.unit.subscription.factory import order
from tests.unit.subscription.fakes import FakeBilling, FakeDatabase, peers

ALIGN_AT = datetime(2024, 10, 1, 8, 0, tzinfo=UTC)
CANCEL_AT = datetime(2025, 3, 1, 11, 0, tzinfo=UTC)  # after the 30-day refund window, before 2025-06-10


def _aligned(db: FakeDatabase, billing: FakeBilling) -> tuple[str, str]:
    """Two seats of ACDLT bought 2024-06-10 and one bought 2024-09-01, aligned on 2024-10-01: the first now
    renews on 2025-09-01 and paid 470 x 2 x 83 / 365 = 213.75 (+ 25 % tax: 267.19) for the extra days."""
    ids = []
    for rid, start, seats in (("r-a", date(2024, 6, 10), 2), ("r-b", date(2024, 9, 1), 1)):
        with db.unit_of_work() as uow:
            ids.append(
                handlers.create_subscription(
                    uow, peers(billing), order(start_date=start, seats=seats), rid
                ).subscription.subscription_id
            )
    with db.unit_of_work() as uow:
        r = handlers.align(uow, peers(billing), "acct-1", ids, "r-align")
    (invoice_id,) = r.invoice_ids
    assert r.lines[0].amount == Decimal("213.75") and r.total == Decimal("267.19")
    return ids[0], invoice_id


def test_turning_automatic_renewal_off_refunds_the_alignment_once():
    db, billing = FakeDatabase(ALIGN_AT), FakeBilling()
    sid, invoice_id = _aligned(db, billing)
    db.clock.set(CANCEL_AT)
    with db.unit_of_work() as uow:
        r = handlers.set_auto_renew(uow, peers(billing), sid, False, "r-off")
    sub = r.subscription
    assert not sub.auto_renew and sub.renewal_date == date(2025, 6, 10) and sub.aligned_from_date is None
    (credit,) = billing.called("credit_invoice")
    assert credit["invoice_id"] == invoice_id and credit["amount"] == Decimal("267.19")
    assert credit["request_id"] == f"{invoice_id}:alignment-refund"
    assert r.credit_note_ids == [f"cn-{invoice_id}:alignment-refund"] and r.refunded == Decimal("267.19")
    (line,) = r.lines
    assert (line.amount, line.quantity, line.prorated_days, line.term_days) == (
        Decimal("-213.75"),
        2,
        83,
        365,
    )
    assert (line.term_start_date, line.term_end_date) == (date(2024, 6, 10), date(2025, 6, 10))
    changes = [msg.change for t, _, msg in db.events if t == "subscription.changed"]
    assert changes[-1] == "alignment_refunded"
    # Off again, or a refund request now: nothing more is credited.
    with db.unit_of_work() as uow:
        handlers.set_auto_renew(uow, peers(billing), sid, False, "r-off-2")
    with pytest.raises(RuleViolation) as e, db.unit_of_work() as uow:
        handlers.request_refund(uow, peers(billing), sid, "", "r-refund")
    assert e.value.reason == "REFUND_WINDOW_CLOSED"
    assert len(billing.called("credit_invoice")) == 1


def test_a_refund_request_after_the_window_refunds_the_alignment_and_ends_the_term_as_bought():
    db, billing = FakeDatabase(ALIGN_AT), FakeBilling()
    sid, invoice_id = _aligned(db, billing)
    db.clock.set(CANCEL_AT)
    with db.unit_of_work() as uow:
        r = handlers.request_refund(uow, peers(billing), sid, "too many dates", "r-refund")
    assert r.refunded == Decimal("267.19") and r.credit_note_ids == [f"cn-{invoice_id}:alignment-refund"]
    assert [ln.amount for ln in r.lines] == [Decimal("-213.75")]
    sub = r.subscription
    assert sub.stage.value == "ACTIVE" and not sub.auto_renew and sub.renewal_date == date(2025, 6, 10)
    assert not billing.called("refund_invoice") and not billing.called("cancel_installments")
    assert not [t for t, _, _ in db.events if t == "subscription.refunded"]


def test_once_the_extra_days_have_begun_nothing_is_refunded():
    db, billing = FakeDatabase(ALIGN_AT), FakeBilling()
    sid, _ = _aligned(db, billing)
    db.clock.set(datetime(2025, 6, 10, 12, 0, tzinfo=UTC))
    with db.unit_of_work() as uow:
        r = handlers.set_auto_renew(uow, peers(billing), sid, False, "r-off")
    assert not r.subscription.auto_renew and r.subscription.renewal_date == date(2025, 9, 1)
    assert not billing.called("credit_invoice") and not r.lines
