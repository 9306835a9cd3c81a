"""Previews of orders and the payments to come (rules §3, §5), on the fake unit of work: a quote of every
order kind with the price book's numbers, the installment split against billing's own rule, a property
that each quote equals the order placed right after it, and an account's upcoming payments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from services.billing.domain import installments as billing_installments
from services.subscription import handlers, sweep
from services.subscription import previews as order_previews
from services.subscription.domain import dates, previews
from services.subscription.domain.model import OrderLine, Plan, Stage, Term
from shared.errors import InvalidInput, RuleViolation
from tests.unit.subscription.factory import at, order
from tests.unit.subscription.fakes import FakeBilling, FakeDatabase, peers

D = Decimal


def _setup(now: datetime) -> tuple[FakeDatabase, FakeBilling]:
    db = FakeDatabase(now)
    return db, FakeBilling(clock=db.clock)


def _buy(db: FakeDatabase, billing: FakeBilling, rid: str = "r-buy", **kw) -> handlers.OrderResult:
    with db.unit_of_work() as uow:
        return handlers.create_subscription(uow, peers(billing), order(**kw), rid)


def _quote(db: FakeDatabase, billing: FakeBilling, q: order_previews.QuoteRequest) -> order_previews.Quote:
    return order_previews.quote_order(db, peers(billing), q)  # type: ignore[arg-type]


def _named(quoted: list[OrderLine], placed: list[OrderLine]) -> list[OrderLine]:
    """The quote's lines, those of a subscription not yet ordered (a purchase, an upgrade's new one) named
    as the order named it."""
    return [
        replace(q, subscription_id=p.subscription_id) if not q.subscription_id else q
        for q, p in zip(quoted, placed, strict=True)
    ]


def _renewal_instant(sub) -> datetime:
    return dates.renewal_instant(sub.renewal_date, sub.time_zone)


def _move(db: FakeDatabase, when: datetime) -> None:
    db.clock.set(max(when, db.clock.now()))


def _run_sweep(db: FakeDatabase, billing: FakeBilling, when: datetime) -> None:
    db.clock.set(when)
    sweep.run(db, billing, when)  # type: ignore[arg-type]


# -- the installment split is billing's -----------------------------------------------------------------


def test_a_three_year_subtotal_splits_as_rules_5_says():
    line = OrderLine("AutoCAD LT", 1, D("1310.00"), "USD", D("1310.00"), date(2024, 10, 1), date(2027, 10, 1))
    parts = previews.split([line], date(2024, 10, 1), "USD")
    assert [p.subtotal for p in parts] == [D("436.68"), D("436.66"), D("436.66")]
    assert [p.due_date for p in parts] == [date(2024, 10, 1), date(2025, 10, 1), date(2026, 10, 1)]
    assert parts[0].lines[0].description == "AutoCAD LT (installment 1 of 3)"
    leap = previews.split([line], date(2028, 2, 29), "USD")
    assert [p.due_date for p in leap] == [date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28)]


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(st.integers(1, 10_000_000), min_size=1, max_size=4),
    credit=st.integers(0, 5_000_000),
    currency=st.sampled_from(["USD", "JPY", "NOK"]),
    start=st.dates(date(2024, 9, 16), date(2040, 12, 31)),
)
def test_the_split_is_billings_schedule(amounts, credit, currency, start):
    q = D(1) if currency == "JPY" else D("0.01")
    values = [a * q for a in amounts]
    if credit:  # an upgrade's credit for unused value is a negative line
        values.append(-min(credit * q, sum(values) - q))
    assume(sum(values) > 0 and all(v != 0 for v in values))
    lines = [OrderLine(f"line {i}", 1, v, currency, v, start, start) for i, v in enumerate(values)]
    ours = previews.split(lines, start, currency)
    theirs = billing_installments.schedule(values, start, currency)
    assert [p.due_date for p in ours] == [s.due_date for s in theirs]
    assert [p.subtotal for p in ours] == [s.amount for s in theirs]
    assert [tuple(ln.amount for ln in p.lines) for p in ours] == [s.line_amounts for s in theirs]


def test_which_orders_are_split():
    line = [OrderLine("x", 1, D(1310), "USD", D(1310), date(2024, 9, 16), date(2027, 9, 16))]
    day = date(2024, 9, 16)
    assert previews.uses_installments("new", Term.THREE_YEAR, day, line)
    assert previews.uses_installments("renewal", Term.THREE_YEAR, day, line)
    assert previews.uses_installments("trial_converted", Term.THREE_YEAR, day, line)
    assert not previews.uses_installments("new", Term.THREE_YEAR, date(2024, 9, 15), line)
    assert not previews.uses_installments("new", Term.ANNUAL, day, line)
    assert not previews.uses_installments("add_seats", Term.THREE_YEAR, day, line)
    assert not previews.uses_installments("align", Term.THREE_YEAR, day, line)


# -- a quote of each order kind --------------------------------------------------------------------------

OCT = datetime(2024, 10, 1, 8, 0, tzinfo=UTC)  # 10:00 in Oslo, after installments began (2024-09-16)


def test_quote_of_a_three_year_purchase_shows_its_installments_and_charges_the_first():
    db, billing = _setup(OCT)
    req = order(term=Term.THREE_YEAR, seats=1, start_date=None)
    q = _quote(db, billing, order_previews.QuoteCreate(req))
    assert (q.subtotal, q.tax, q.total) == (D("1310.00"), D("327.50"), D("1637.50"))
    assert [(p.sequence, p.due_date, p.subtotal, p.total) for p in q.installments] == [
        (1, date(2024, 10, 1), D("436.68"), D("545.85")),
        (2, date(2025, 10, 1), D("436.66"), D("545.83")),
        (3, date(2026, 10, 1), D("436.66"), D("545.83")),
    ]
    assert (q.due_date, q.due_now) == (date(2024, 10, 1), D("545.85"))
    r = _buy(db, billing, term=Term.THREE_YEAR, seats=1, start_date=None)
    assert r.total == q.due_now and _named(q.lines, r.lines) == r.lines


def test_quote_of_a_three_year_purchase_before_installments_is_paid_up_front():
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    q = _quote(db, billing, order_previews.QuoteCreate(order(term=Term.THREE_YEAR, seats=2)))
    assert (q.subtotal, q.total, q.due_now, q.installments) == (D("2620.00"), D("3275.00"), D("3275.00"), [])


def test_quote_of_added_seats_is_the_prorated_order():
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    sid = _buy(db, billing).subscription.subscription_id
    db.clock.set(at(date(2025, 1, 10)))
    q = _quote(db, billing, order_previews.QuoteAddSeats(sid, 1))
    # 470.00 x 151 days left / 365 days = 194.44
    assert (q.subtotal, q.total, q.due_now) == (D("194.44"), D("243.05"), D("243.05"))
    assert q.lines[0].prorated_days == 151


def test_quote_of_a_renewal_applies_the_renewal_seats_at_the_renewal_price():
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    sid = _buy(db, billing, seats=2).subscription.subscription_id
    with db.unit_of_work() as uow:
        handlers.set_renewal_seats(uow, peers(billing), sid, 3)  # type: ignore[arg-type]
    db.clock.set(at(date(2025, 5, 1)))
    q = _quote(db, billing, order_previews.QuoteRenew(sid))
    (line,) = q.lines
    assert (line.quantity, line.unit_price, q.subtotal, q.total) == (
        3,
        D("420.00"),
        D("1260.00"),
        D("1575.00"),
    )
    assert q.applied == ("seats",)


def test_quote_of_a_term_change_is_the_renewal_it_causes_in_installments():
    db, billing = _setup(OCT)
    sid = _buy(db, billing, seats=1, start_date=None).subscription.subscription_id
    q = _quote(db, billing, order_previews.QuoteChangeTerm(sid, Term.THREE_YEAR))
    (line,) = q.lines
    assert (line.unit_price, line.period_start_date, line.period_end_date) == (
        D("1179.00"),
        date(2025, 10, 1),
        date(2028, 10, 1),
    )
    assert [(p.due_date, p.subtotal) for p in q.installments] == [
        (date(2025, 10, 1), D("393.00")),
        (date(2026, 10, 1), D("393.00")),
        (date(2027, 10, 1), D("393.00")),
    ]
    assert (q.due_date, q.due_now, q.applied) == (date(2025, 10, 1), D("491.25"), ("term",))
    # nothing was changed by the quote
    assert handlers.get_subscription(db, sid).pending_term is None


def test_quote_of_a_product_switch_is_the_renewal_at_the_new_products_price():
    db, billing = _setup(OCT)
    sid = _buy(db, billing, seats=2, start_date=None).subscription.subscription_id
    db.clock.set(at(date(2025, 8, 1)))  # inside the renewal window
    q = _quote(db, billing, order_previews.QuoteProductSwitch(sid, "ACD"))
    (line,) = q.lines
    assert (line.quantity, line.unit_price, q.subtotal) == (2, D("1780.00"), D("3560.00"))
    assert (q.due_date, q.applied) == (date(2025, 10, 1), ("product",))


def test_quote_of_a_reinstatement_is_the_renewal_from_the_original_renewal_date():
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    sub = _buy(db, billing, auto_renew=False).subscription
    _run_sweep(db, billing, _renewal_instant(sub) + timedelta(days=3))
    assert handlers.get_subscription(db, sub.subscription_id).stage is Stage.EXPIRED
    q = _quote(db, billing, order_previews.QuoteReinstate(sub.subscription_id))
    (line,) = q.lines
    assert (line.unit_price, line.period_start_date, q.total) == (D("420.00"), date(2025, 6, 10), D("525.00"))


def test_quote_of_a_reinstatement_refuses_an_active_subscription():
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    sid = _buy(db, billing).subscription.subscription_id
    with pytest.raises(RuleViolation) as e:
        _quote(db, billing, order_previews.QuoteReinstate(sid))
    assert e.value.reason == "STAGE_NOT_ALLOWED"


# -- each quote is the order that follows it --------------------------------------------------------------

ZONES = st.sampled_from(["Europe/Oslo", "America/Los_Angeles", "Pacific/Auckland", "Asia/Kolkata", "UTC"])
KINDS = st.sampled_from(
    ["create", "add_seats", "renew", "align", "upgrade", "convert_trial", "change_term", "product_switch"]
)


def _place(db: FakeDatabase, billing: FakeBilling, kind: str, sids: list[str], seats: int, term: Term):
    """Place the order `kind` now; its lines, subtotal, what it charged and the subscription it billed
    (None: a pending change, ordered at the renewal)."""
    p = peers(billing)
    with db.unit_of_work() as uow:
        if kind == "add_seats":
            r = handlers.add_seats(uow, p, sids[0], seats, "r-o")
        elif kind == "renew":
            r = handlers.renew(uow, p, sids[0], "r-o")
        elif kind == "align":
            a = handlers.align(uow, p, "acct-1", sids, "r-o")
            return a.lines, sum((ln.amount for ln in a.lines), D(0)), a.total, sids[0]
        elif kind == "upgrade":
            u = handlers.upgrade(uow, p, sids[0], "ACD", None, "r-o")
            return u.lines, sum((ln.amount for ln in u.lines), D(0)), u.total, u.new.subscription_id
        elif kind == "convert_trial":
            r = handlers.convert_trial(uow, p, sids[0], term, seats, "pm-card", "r-o")
        elif kind == "change_term":
            handlers.change_term(uow, sids[0], term)
            return None
        else:
            handlers.schedule_product_switch(uow, sids[0], "ACD")
            return None
    return r.lines, r.subtotal, r.total, sids[0]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=KINDS,
    seats=st.integers(1, 40),
    term=st.sampled_from([Term.MONTHLY, Term.ANNUAL, Term.THREE_YEAR]),
    new_term=st.sampled_from([Term.MONTHLY, Term.ANNUAL, Term.THREE_YEAR]),
    start=st.dates(date(2024, 1, 1), date(2027, 12, 31)),
    offset=st.floats(0.0, 0.999),
    tz=ZONES,
)
def test_a_quote_equals_the_order_placed_right_after_it(kind, seats, term, new_term, start, offset, tz):
    db, billing = _setup(at(start, tz, hour=9))
    trial = kind == "convert_trial"
    first = _buy(
        db, billing, trial=trial, term=term, seats=seats, time_zone=tz, start_date=start
    ).subscription
    sids = [first.subscription_id]
    if kind == "align":
        later = start + timedelta(days=max(1, int(first.term_days * offset)))
        _move(db, at(later, tz, hour=9))
        second = _buy(db, billing, "r-2", term=term, seats=1, time_zone=tz, start_date=later).subscription
        assume(second.renewal_date != first.renewal_date)
        sids.append(second.subscription_id)
    elif kind in ("renew", "product_switch"):
        window = dates.renewal_window_opens(first.renewal_date)
        day = window + timedelta(days=int(dates.days_between(window, first.renewal_date) * offset))
        _move(db, at(day, tz, hour=9))
    elif not trial:
        day = start + timedelta(days=int(first.term_days * offset))
        _move(db, at(day, tz, hour=9))
    else:
        _move(db, at(start + timedelta(days=int(29 * offset)), tz, hour=9))
    if kind == "change_term":
        assume(new_term is not term)
    quote_of = {
        "create": lambda: order_previews.QuoteCreate(
            order(term=term, seats=seats, time_zone=tz, start_date=None, account_id="acct-2")
        ),
        "add_seats": lambda: order_previews.QuoteAddSeats(sids[0], seats),
        "renew": lambda: order_previews.QuoteRenew(sids[0]),
        "align": lambda: order_previews.QuoteAlign("acct-1", sids),
        "upgrade": lambda: order_previews.QuoteUpgrade(sids[0], "ACD", None),
        "convert_trial": lambda: order_previews.QuoteConvertTrial(sids[0], term, seats),
        "change_term": lambda: order_previews.QuoteChangeTerm(sids[0], new_term),
        "product_switch": lambda: order_previews.QuoteProductSwitch(sids[0], "ACD"),
    }
    try:
        q = _quote(db, billing, quote_of[kind]())
    except RuleViolation as refused:  # the order is refused the same way
        with pytest.raises(RuleViolation) as e:
            if kind == "create":
                _buy(
                    db,
                    billing,
                    "r-o",
                    term=term,
                    seats=seats,
                    time_zone=tz,
                    start_date=None,
                    account_id="acct-2",
                )
            else:
                _place(db, billing, kind, sids, seats, new_term if kind == "change_term" else term)
        assert e.value.reason == refused.reason
        event(f"{kind}: refused ({refused.reason})")
        return
    if kind == "create":
        r = _buy(
            db, billing, "r-o", term=term, seats=seats, time_zone=tz, start_date=None, account_id="acct-2"
        )
        placed = (r.lines, r.subtotal, r.total, r.subscription.subscription_id)
    else:
        placed = _place(db, billing, kind, sids, seats, new_term if kind == "change_term" else term)
    if placed is None:  # a pending change: its order is the automatic renewal at the renewal date
        sid = sids[0]
        sub = handlers.get_subscription(db, sid)
        _run_sweep(db, billing, _renewal_instant(sub))
        renewal = db.orders[-1]
        assert (renewal.kind, renewal.subscription_id) == ("renewal", sid)
        placed = (renewal.lines, renewal.subtotal, renewal.total, sid)
        assert q.due_date == sub.renewal_date
    lines, subtotal, total, sid = placed
    assert len(q.lines) == len(lines) and _named(q.lines, lines) == lines
    assert q.subtotal == subtotal
    assert q.due_now == total  # what the order charged (the first installment's total when split)
    event(f"{kind}: placed" + (" in installments" if q.installments else ""))
    if q.installments:
        scheduled = billing.installments(sid)
        assert [(p.sequence, p.due_date, p.subtotal) for p in q.installments] == [
            (s.sequence, s.due_date, s.amount) for s in scheduled
        ]
    else:
        assert q.total == total


# -- upcoming payments ----------------------------------------------------------------------------------


def test_upcoming_payments_show_the_renewal_with_its_pending_changes_and_the_installments_held():
    db, billing = _setup(OCT)
    annual = _buy(db, billing, seats=2, start_date=None).subscription
    three = _buy(db, billing, "r-3", term=Term.THREE_YEAR, seats=1, start_date=None).subscription
    off = _buy(db, billing, "r-off", seats=5, start_date=None, auto_renew=False).subscription
    with db.unit_of_work() as uow:
        handlers.set_renewal_seats(uow, peers(billing), annual.subscription_id, 4)  # type: ignore[arg-type]
        handlers.change_term(uow, annual.subscription_id, Term.THREE_YEAR)
    db.clock.set(at(date(2024, 11, 1)))
    got = order_previews.list_upcoming_payments(db, peers(billing), "acct-1", 3 * 366)  # type: ignore[arg-type]
    assert off.subscription_id not in {p.subscription_id for p in got}
    mine = [p for p in got if p.subscription_id == annual.subscription_id]
    # 4 renewal seats x 1179.00 (3-year renewal price) = 4716.00, in three installments of 1572.00
    assert [(p.kind, p.due_date, p.seats, p.unit_price, p.subtotal, p.total, p.sequence) for p in mine] == [
        ("RENEWAL", date(2025, 10, 1), 4, D("1179.00"), D("1572.00"), D("1965.00"), 1),
        ("RENEWAL", date(2026, 10, 1), 4, D("1179.00"), D("1572.00"), D("1965.00"), 2),
        ("RENEWAL", date(2027, 10, 1), 4, D("1179.00"), D("1572.00"), D("1965.00"), 3),
    ]
    assert mine[0].applied == ("term", "seats") and mine[0].term is Term.THREE_YEAR
    held = [p for p in got if p.subscription_id == three.subscription_id]
    # the 3-year purchase's 2nd and 3rd installments (1310.00 -> 436.68, 436.66, 436.66); its renewal is
    # in 2027-10-01, inside the horizon, and is shown in installments too
    assert [(p.kind, p.due_date, p.subtotal, p.tax) for p in held[:2]] == [
        ("INSTALLMENT", date(2025, 10, 1), D("436.66"), D("109.17")),
        ("INSTALLMENT", date(2026, 10, 1), D("436.66"), D("109.17")),
    ]
    assert [(p.kind, p.due_date, p.subtotal) for p in held[2:]] == [
        ("RENEWAL", date(2027, 10, 1), D("393.00")),
    ]
    assert got == sorted(got, key=lambda p: (p.due_date, p.subscription_id, p.kind, p.sequence))


def test_upcoming_payments_stop_at_the_horizon_and_match_the_renewal_the_sweep_orders():
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    sub = _buy(db, billing, seats=3).subscription
    assert order_previews.list_upcoming_payments(db, peers(billing), "acct-1", 364) == []  # type: ignore[arg-type]
    (p,) = order_previews.list_upcoming_payments(db, peers(billing), "acct-1", 365)  # type: ignore[arg-type]
    assert (p.kind, p.due_date, p.seats, p.subtotal, p.total) == (
        "RENEWAL",
        date(2025, 6, 10),
        3,
        D("1260.00"),
        D("1575.00"),
    )
    _run_sweep(db, billing, _renewal_instant(sub))
    renewal = db.orders[-1]
    assert (renewal.kind, renewal.subtotal, renewal.total) == ("renewal", p.subtotal, p.total)


def test_upcoming_payments_refuse_a_bad_horizon_and_a_missing_account():
    db, billing = _setup(OCT)
    with pytest.raises(InvalidInput) as e:
        order_previews.list_upcoming_payments(db, peers(billing), "", 0)  # type: ignore[arg-type]
    assert [f for f, _ in e.value.field_violations] == ["account_id"]
    with pytest.raises(InvalidInput) as e:
        order_previews.list_upcoming_payments(db, peers(billing), "acct-1", 5000)  # type: ignore[arg-type]
    assert [f for f, _ in e.value.field_violations] == ["horizon_days"]


def test_premium_upgrade_quote_keeps_plan():
    # an upgrade to Premium prices the Premium plan of the same product, with the unused value credited
    db, billing = _setup(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))
    sid = _buy(db, billing, product_code="ACD").subscription.subscription_id
    db.clock.set(at(date(2024, 12, 10)))
    q = _quote(db, billing, order_previews.QuoteUpgrade(sid, "", Plan.PREMIUM))
    assert q.credit > 0 and q.subtotal == sum((ln.amount for ln in q.lines), D(0))
    assert q.due_now == q.total
