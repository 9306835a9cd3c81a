"""The subscription handlers on the fake unit of work (`fakes.py`): no server, no database. The rules here
were tested only through a running server: what an order books (invoice, order row, history, event), the
price of added seats, automatic renewal on and off, the refund windows, and a declined order leaving
nothing behind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.subscription import consumers, handlers, sweep
from services.subscription.domain import lifecycle
from services.subscription.domain.model import Stage, Term, Transition
from shared.errors import NotFound, RuleViolation
from shared.money import from_proto, to_proto
from tenure.events.v1 import events_pb2
from tests.unit.subscription.factory import order
from tests.unit.subscription.fakes import FakeBilling, FakeDatabase, peers

START = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)  # 10:00 in Oslo: day 1 of the purchases below


def _buy(db: FakeDatabase, billing: FakeBilling, request_id: str = "r-buy", **kw) -> handlers.OrderResult:
    with db.unit_of_work() as uow:
        return handlers.create_subscription(uow, peers(billing), order(**kw), request_id)


def _events(db: FakeDatabase, event_type: str) -> list:
    return [msg for t, _, msg in db.events if t == event_type]


def test_a_purchase_books_its_invoice_order_history_and_event():
    db, billing = FakeDatabase(START), FakeBilling()
    r = _buy(db, billing, seats=2)
    sub = r.subscription
    assert (r.subtotal, r.total) == (Decimal("940.00"), Decimal("1175.00"))
    (issued,) = billing.called("create_invoice")
    assert (issued["request_id"], issued["kind"], issued["order_number"]) == (
        "r-buy:invoice",
        "new",
        r.order_number,
    )
    assert issued["term_start_date"] == date(2024, 6, 10)
    (o,) = db.orders
    assert (o.kind, o.invoice_id, o.subtotal, o.total) == (
        "new",
        r.invoice_id,
        Decimal("940.00"),
        Decimal("1175.00"),
    )
    assert (o.order_date, o.period_start_date, o.request_id) == (
        date(2024, 6, 10),
        date(2024, 6, 10),
        "r-buy",
    )
    assert handlers.lifecycle_history(db, sub.subscription_id) == [
        Transition(None, Stage.ACTIVE, START, "created")
    ]
    (created,) = _events(db, "subscription.created")
    assert created.order_number == r.order_number and created.invoice_id == r.invoice_id
    assert from_proto(created.amount).amount == Decimal("1175.00") and not created.trial
    # the buyer opened the account: they are its buyer and primary admin
    assert handlers.list_subscriptions(db, "", None, 0, 10, person="kari@example.no") == [sub]


def test_a_trial_is_ordered_without_an_invoice():
    db, billing = FakeDatabase(START), FakeBilling()
    r = _buy(db, billing, trial=True, payment_method_id="")
    assert r.subscription.stage is Stage.TRIAL and not r.invoice_id and r.total == 0
    assert billing.called("create_invoice") == []
    (o,) = db.orders
    assert (o.kind, o.invoice_id, o.total) == ("trial", "", Decimal(0))
    (created,) = _events(db, "subscription.created")
    assert created.trial


def test_a_declined_card_orders_nothing_and_voids_the_invoice():
    db, billing = FakeDatabase(START), FakeBilling(decline={"pm-declined"})
    with pytest.raises(RuleViolation) as e:
        _buy(db, billing, payment_method_id="pm-declined")
    assert e.value.reason == "PAYMENT_DECLINED"
    (void,) = billing.called("void_invoice")
    assert void["request_id"] == "r-buy:invoice:void"
    assert db.store.subscriptions == {} and db.orders == [] and db.events == []
    assert db.store.members == set()  # the account was not opened either


def test_seats_added_on_1_december_cost_the_prorated_price_and_co_term():
    """Oslo annual purchase of 2 seats at 470.00 on 2024-06-10; 3 seats added on 2024-12-01 pay
    470 x 3 x 191 / 365 days = 737.84 and end on the renewal date."""
    db, billing = FakeDatabase(START), FakeBilling()
    sub = _buy(db, billing, seats=2).subscription
    db.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    with db.unit_of_work() as uow:
        r = handlers.add_seats(uow, peers(billing), sub.subscription_id, 3, "r-seats")
    assert r.subtotal == Decimal("737.84") and r.total == Decimal("922.30")
    assert (r.subscription.seats, r.subscription.renewal_seats) == (5, 5)
    assert r.subscription.renewal_date == sub.renewal_date
    (line,) = r.lines
    assert (line.prorated_days, line.term_days, line.period_end_date) == (191, 365, date(2025, 6, 10))
    seats_order = db.orders[-1]
    assert (seats_order.kind, seats_order.period_start_date, seats_order.subtotal) == (
        "add_seats",
        date(2024, 12, 1),
        Decimal("737.84"),
    )
    assert billing.called("create_invoice")[-1]["kind"] == "add_seats"
    (added,) = _events(db, "subscription.seats_added")
    assert added.seats_added == 3 and from_proto(added.prorated_amount).amount == Decimal("737.84")
    assert added.invoice_id == r.invoice_id


def test_turning_automatic_renewal_off_orders_nothing():
    db, billing = FakeDatabase(START), FakeBilling()
    sub = _buy(db, billing).subscription
    with db.unit_of_work() as uow:
        r = handlers.set_auto_renew(uow, peers(billing), sub.subscription_id, False, "r-off")
    assert not r.subscription.auto_renew and not r.order_number and not r.invoice_id
    assert len(db.orders) == 1 and len(billing.called("create_invoice")) == 1
    (changed,) = _events(db, "subscription.changed")
    assert changed.change == "auto_renew"


def test_turning_automatic_renewal_on_while_expired_reinstates_and_replaces_the_declined_invoice():
    db, billing = FakeDatabase(START), FakeBilling()
    sub = _buy(db, billing).subscription
    # the automatic renewal of 2025-06-10 was declined: Expired, its invoice still open
    expired = replace(
        sub,
        stage=Stage.EXPIRED,
        auto_renew=False,
        shutoff_reason=lifecycle.PAYMENT_FAILED,
        shutoff_start_date=date(2025, 6, 10),
        shutoff_invoice_id="inv-declined",
    )
    db.store.subscriptions[sub.subscription_id] = expired
    db.clock.set(datetime(2025, 6, 20, 9, 0, tzinfo=UTC))
    with db.unit_of_work() as uow:
        r = handlers.set_auto_renew(uow, peers(billing), sub.subscription_id, True, "r-on")
    s = r.subscription
    assert s.stage is Stage.ACTIVE and s.auto_renew and s.shutoff_reason == "" and not s.shutoff_invoice_id
    assert (s.current_period_start_date, s.renewal_date) == (date(2025, 6, 10), date(2026, 6, 10))
    assert s.unit_price == Decimal("420.00")  # the renewal price
    renewal_order = db.orders[-1]
    assert (renewal_order.kind, renewal_order.invoice_id) == ("renewal", r.invoice_id)
    assert db.store.renewals[(s.subscription_id, date(2025, 6, 10))].status == "PAID"
    (void,) = billing.called("void_invoice")
    assert void["invoice_id"] == "inv-declined" and r.invoice_id in void["reason"]
    assert handlers.lifecycle_history(db, s.subscription_id)[-1] == Transition(
        Stage.EXPIRED, Stage.ACTIVE, db.clock.now(), "reinstated"
    )
    assert [e.reason for e in _events(db, "subscription.stage_changed")] == ["reinstated"]
    (renewed,) = _events(db, "subscription.renewed")
    assert renewed.invoice_id == r.invoice_id and renewed.order_number == r.order_number


@pytest.mark.parametrize(
    ("term", "refund_at", "allowed"),
    [
        (Term.MONTHLY, datetime(2024, 6, 24, 20, 0, tzinfo=UTC), True),  # day 15 in Oslo (22:00)
        (Term.MONTHLY, datetime(2024, 6, 24, 22, 0, tzinfo=UTC), False),  # day 16 (00:00)
        (Term.ANNUAL, datetime(2024, 7, 9, 12, 0, tzinfo=UTC), True),  # day 30
        (Term.ANNUAL, datetime(2024, 7, 10, 12, 0, tzinfo=UTC), False),  # day 31
    ],
)
def test_refund_windows(term, refund_at, allowed):
    db, billing = FakeDatabase(START), FakeBilling()
    bought = _buy(db, billing, term=term)
    sid = bought.subscription.subscription_id
    db.clock.set(refund_at)
    if not allowed:
        with pytest.raises(RuleViolation) as e, db.unit_of_work() as uow:
            handlers.request_refund(uow, peers(billing), sid, "", "r-refund")
        assert e.value.reason == "REFUND_WINDOW_CLOSED"
        assert handlers.get_subscription(db, sid).stage is Stage.ACTIVE
        assert billing.called("refund_invoice") == [] and billing.called("cancel_installments") == []
        return
    with db.unit_of_work() as uow:
        r = handlers.request_refund(uow, peers(billing), sid, "", "r-refund")
    assert r.subscription.stage is Stage.CANCELLED and r.subscription.access_until == refund_at
    assert r.credit_note_ids == [f"cn-{bought.invoice_id}"] and r.refunded == bought.total
    (credit,) = billing.called("refund_invoice")
    assert credit["request_id"] == f"r-refund:credit:{bought.invoice_id}"
    assert billing.called("cancel_installments")[0]["reason"] == "refunded"
    assert [(t.from_stage, t.to_stage, t.reason) for t in handlers.lifecycle_history(db, sid)] == [
        (None, Stage.ACTIVE, "created"),
        (Stage.ACTIVE, Stage.CANCELLED, "refunded"),
    ]
    (refunded,) = _events(db, "subscription.refunded")
    assert from_proto(refunded.refunded_amount).amount == bought.total


def test_an_upgrade_of_a_term_in_installments_cancels_the_installments_not_yet_due():
    db, billing = FakeDatabase(datetime(2024, 10, 1, 8, 0, tzinfo=UTC)), FakeBilling()
    sub = _buy(db, billing, term=Term.THREE_YEAR, start_date=date(2024, 10, 1)).subscription
    assert sub.installments == 3
    db.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    with db.unit_of_work() as uow:
        r = handlers.upgrade(uow, peers(billing), sub.subscription_id, "ACD", None, "r-up")
    (cancel,) = billing.called("cancel_installments")
    assert (cancel["request_id"], cancel["subscription_id"], cancel["reason"]) == (
        "r-up:installments",
        sub.subscription_id,
        "upgraded",
    )
    assert r.old.upgraded_to == r.new.subscription_id and r.new.upgraded_from == sub.subscription_id
    assert not r.old.auto_renew and r.old.access_until == r.old_access_until
    upgrade_order = db.orders[-1]
    assert (upgrade_order.kind, upgrade_order.subscription_id) == ("upgrade", r.new.subscription_id)
    (upgraded,) = _events(db, "subscription.upgraded")
    assert upgraded.old_subscription.subscription_id == sub.subscription_id
    assert upgraded.new_subscription.subscription_id == r.new.subscription_id


def test_a_person_who_is_not_the_accounts_buyer_cannot_order_on_it():
    db, billing = FakeDatabase(START), FakeBilling()
    _buy(db, billing)
    with pytest.raises(NotFound) as e, db.unit_of_work() as uow:
        handlers.create_subscription(
            uow, peers(billing), order(buyer_email="ola@example.no"), "r-2", person="ola@example.no"
        )
    assert e.value.reason == "NOT_FOUND"


def test_a_declined_automatic_renewal_shuts_off_and_paying_its_invoice_reinstates_the_same_term():
    db, billing = FakeDatabase(START), FakeBilling()
    sub = _buy(db, billing).subscription
    billing.decline.add(sub.payment_method_id)
    renewal_instant = datetime(2025, 6, 9, 22, 0, tzinfo=UTC)  # 2025-06-10 00:00 in Oslo
    counts = sweep.run(db, billing, renewal_instant)  # type: ignore[arg-type]
    assert counts.renewed == 0 and counts.expired == 1
    shut = handlers.get_subscription(db, sub.subscription_id)
    assert shut.stage is Stage.EXPIRED and shut.shutoff_reason == lifecycle.PAYMENT_FAILED
    declined = db.store.renewals[(sub.subscription_id, date(2025, 6, 10))]
    assert declined.status == "DECLINED" and shut.shutoff_invoice_id == declined.invoice_id
    assert billing.called("create_invoice")[-1]["request_id"] == f"renewal:{sub.subscription_id}:2025-06-10"

    db.clock.set(datetime(2025, 6, 15, 9, 0, tzinfo=UTC))
    paid = events_pb2.Event(
        invoice_paid=events_pb2.InvoicePaid(
            invoice=events_pb2.InvoiceSummary(
                invoice_id=declined.invoice_id,
                subscription_id=sub.subscription_id,
                total=to_proto(Decimal("525.00"), "USD"),
            )
        )
    )
    with db.unit_of_work() as uow:
        consumers.on_invoice_paid(uow, paid)  # type: ignore[arg-type]
    back = handlers.get_subscription(db, sub.subscription_id)
    assert back.stage is Stage.ACTIVE and back.shutoff_reason == ""
    assert (back.current_period_start_date, back.renewal_date) == (date(2025, 6, 10), date(2026, 6, 10))
    assert db.store.renewals[(sub.subscription_id, date(2025, 6, 10))].status == "PAID"
    renewal_order = db.orders[-1]
    assert (renewal_order.kind, renewal_order.invoice_id, renewal_order.total) == (
        "renewal",
        declined.invoice_id,
        Decimal("525.00"),
    )
    assert [e.reason for e in _events(db, "subscription.stage_changed")][-1] == lifecycle.PAID
