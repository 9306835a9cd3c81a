"""The sweep's two ways of applying LOCAL work agree: the same generated subscriptions, written into two
fresh databases, are swept at the same instant row by row (the path the embedded database takes, through
the repository and `uow.publish`) in one and set-based (`adapters/bulk.py`, one statement per batch) in the
other, and every written row (the subscriptions' columns, the history, the reminders) and every event
(in delivery order per subscription, ids and sequence numbers aside) is the same.

The states are drawn around the sweep's instant: every stage and term, renewal dates and shutoffs that have
come due or not, reminders sent or not, upgrades whose overlap ends, pay-by-invoice shutoffs that leave the
account to be marked prepay-only, time zones with daylight saving, half-hour offsets and the date line,
several rows in one state (one move applied to many rows), buyers whose names need escaping in JSON, and
small batches and outbox rows (several statements, several event chunks)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.subscription import sweep
from services.subscription.adapters import bulk
from services.subscription.adapters.tables import SubscriptionModel
from services.subscription.domain import dates, lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import demo_catalog
from services.subscription.domain.lifecycle import LifecycleState
from services.subscription.domain.model import Channel, PaymentMethodType, Plan, Stage, Term
from shared.clock import TestClock
from shared.db import Database

from .bulk_load import load_subscriptions
from .conftest import outbox_events

ZONES = (
    "Europe/Oslo",
    "America/New_York",
    "America/St_Johns",  # -03:30 with daylight saving
    "Asia/Kolkata",  # +05:30, none
    "Australia/Lord_Howe",  # a half-hour daylight saving shift
    "Pacific/Auckland",  # southern summer
    "Pacific/Kiritimati",  # +14
    "UTC",
)
NAMES = ("Kari Nordmann", 'Jo "Jojo" Ås', "O'Brien \\ Backslash", "李雷", "Zoë 🎻")
REASONS = (lifecycle.TERM_ENDED, lifecycle.PAYMENT_FAILED, lifecycle.INVOICE_OVERDUE)
YEAR = datetime(2025, 1, 1, tzinfo=UTC)

# Tables the LOCAL sweep writes (children first, so the rows go before the subscriptions they name).
WRITTEN = ("outbox", "renewal_reminders", "lifecycle_transitions", "subscriptions")


@st.composite
def instants(draw) -> datetime:
    """The sweep's instant: any quarter hour of 2025, or exactly a local midnight (where stored instants
    fall, so `<=` at the boundary is exercised)."""
    if draw(st.booleans()):
        return YEAR + timedelta(minutes=15 * draw(st.integers(0, 365 * 24 * 4)))
    day = YEAR.date() + timedelta(days=draw(st.integers(0, 364)))
    return dates.local_midnight(day, draw(st.sampled_from(ZONES)))


@st.composite
def states(draw, now: datetime) -> LifecycleState:
    """A lifecycle state whose instants fall around `now`."""
    tz = draw(st.sampled_from(ZONES))
    today = dates.local_date(now, tz)

    def near(lo: int, hi: int) -> date:
        return today + timedelta(days=draw(st.integers(lo, hi)))

    stage = draw(st.sampled_from([*Stage, Stage.ACTIVE, Stage.ACTIVE]))  # most of the work starts Active
    term = draw(st.sampled_from(list(Term)))
    # the term (or trial) ended lately, is within the reminders' reach, or anywhere around
    renewal = near(*draw(st.sampled_from([(-40, 0), (1, 50), (-100, 100)])))
    upgraded = stage is not Stage.TRIAL and draw(st.integers(0, 3)) == 0
    access_until = None
    if upgraded or draw(st.integers(0, 9)) == 0:  # an overlap's end (rarely kept on a row not upgraded)
        access_until = dates.local_midnight(near(-20, 20), tz)
    shutoff: dict = {}
    if stage in (Stage.EXPIRED, Stage.SUSPENDED, Stage.CANCELLED) and draw(st.integers(0, 5)) > 0:
        start = near(-80, 5)
        reason = draw(st.sampled_from(REASONS))
        plan = lifecycle.shutoff_schedule(start, term, tz, reason)
        shutoff = dict(
            shutoff_reason=reason,
            shutoff_start_date=start,
            suspend_time=plan.suspended_time,
            cancel_time=plan.cancelled_time,
        )
    return LifecycleState(
        stage=stage,
        term=term,
        time_zone=tz,
        renewal_date=renewal,
        renewal_time=dates.renewal_instant(renewal, tz),
        current_period_start_date=dates.add_months(renewal, -term.months),
        auto_renew=draw(st.booleans()),
        access_until=access_until,
        upgraded=upgraded,
        pays_by_invoice=draw(st.booleans()),
        last_reminder_days=draw(st.sampled_from([None, None, *lifecycle.POLICY.reminder_days_before_expiry])),
        prepay_pending=stage is Stage.CANCELLED and draw(st.booleans()),
        **shutoff,
    )


@st.composite
def cases(draw) -> tuple[datetime, timedelta, list[ops.Subscription], int, int]:
    """An instant, how late the sweep for it runs (the clock that stamps the writes), the subscriptions to
    sweep (a few states, some shared by several rows), the sweep's batch size and the events per outbox
    row."""
    now = draw(instants())
    subs = []
    for state in draw(st.lists(states(now), min_size=1, max_size=6)):
        for _ in range(draw(st.integers(1, 3))):
            n = len(subs) + 1
            name = draw(st.sampled_from(NAMES))
            subs.append(_subscription(state, f"sub_{n:03d}", f"acct-{n % 3}", name, draw(st.integers(1, 40))))
    late = timedelta(minutes=7) if draw(st.booleans()) else timedelta(0)
    return now, late, subs, draw(st.sampled_from([2, 5, 1000])), draw(st.sampled_from([1, 3, 500]))


def _subscription(state: LifecycleState, sid: str, account: str, name: str, seats: int) -> ops.Subscription:
    """A subscription as an order makes it, in `state`. The state's fields are copied by name, so a field
    added to the state reaches the row (and the round trip below fails if the subscription does not hold
    it under that name or `lifecycle_state` does not read it back)."""
    req = ops.OrderRequest(
        account_id=account,
        buyer_email="kari@example.no",
        buyer_name=name,
        buyer_language="nb",
        product_code="ACDLT",
        seats=seats,
        currency="USD",
        country_code="NO",
        time_zone=state.time_zone,
        plan=Plan.STANDARD,
        term=Term.ANNUAL,
        channel=Channel.DIRECT_ONLINE,
        payment_method_id="pm-1",
        payment_method_type=PaymentMethodType.CARD,
        auto_renew=True,
        start_date=state.current_period_start_date,
    )
    start = dates.local_midnight(state.current_period_start_date, state.time_zone)
    sub = ops.create(req, demo_catalog(), sid, start).subscription
    own = {f.name for f in dataclasses.fields(ops.Subscription)}
    sub = dataclasses.replace(
        sub,
        **{f.name: getattr(state, f.name) for f in dataclasses.fields(LifecycleState) if f.name in own},
        upgraded_to="sub_next" if state.upgraded else "",
        payment_method_type=PaymentMethodType.INVOICE if state.pays_by_invoice else PaymentMethodType.CARD,
        create_time=start,
    )
    assert ops.lifecycle_state(sub) == state
    return sub


def _database(url: str) -> Database:
    db = Database(url, SubscriptionModel.metadata, TestClock(YEAR), source="subscription")
    db.create_all()
    return db


def _written(db: Database) -> dict:
    """Every row the sweep writes, in a stable order; events per subscription in delivery order, with the
    ids and sequence numbers (which differ by construction) cleared."""
    with db.read() as s:
        subs = [
            dict(r._mapping) for r in s.execute(text("SELECT * FROM subscriptions ORDER BY subscription_id"))
        ]
        history = s.execute(
            text(
                "SELECT subscription_id, from_stage, to_stage, transition_time, reason, period_key"
                " FROM lifecycle_transitions ORDER BY subscription_id, id"
            )
        ).all()
        reminders = s.execute(
            text("SELECT * FROM renewal_reminders ORDER BY subscription_id, renewal_date, days_before")
        ).all()
    events: dict[str, list[dict]] = {}
    for ev in outbox_events(db):
        ev.event_id = ""
        ev.sequence = 0
        events.setdefault(ev.subscription_id, []).append(json_format.MessageToDict(ev))
    return {
        "subscriptions": subs,
        "history": [tuple(r) for r in history],
        "reminders": [tuple(r) for r in reminders],
        "events": events,
    }


def _columns_apart(want: dict, got: dict) -> dict:
    """Per subscription, the columns whose values differ: (row by row, set-based)."""
    return {
        w["subscription_id"]: {c: (w[c], g.get(c)) for c in w if w[c] != g.get(c)}
        for w, g in zip(want["subscriptions"], got["subscriptions"], strict=False)
        if w != g
    }


def test_the_set_based_sweep_writes_what_the_row_by_row_sweep_writes(backend, new_db_url):
    if backend != "postgresql":
        pytest.skip("the set-based path is PostgreSQL's; SQLite sweeps row by row only")
    by_row, set_based = _database(new_db_url("by_row")), _database(new_db_url("set_based"))

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(cases())
    def check(case):
        now, late, subs, batch, per_row = case
        for db in (by_row, set_based):
            with db.engine.begin() as conn:
                for table in WRITTEN:
                    conn.execute(text(f"DELETE FROM {table}"))
            load_subscriptions(db.engine, subs, now=now - timedelta(days=1))
            db.clock = TestClock(now + late)
        counts_by_row, counts_set_based = sweep.SweepCounts(), sweep.SweepCounts()
        sweep._local_pass_by_row(by_row, now, batch, counts_by_row)
        with mock.patch.object(bulk, "EVENTS_PER_ROW", per_row):
            sweep._local_pass_set_based(set_based, now, batch, counts_set_based)
        want, got = _written(by_row), _written(set_based)
        assert got["subscriptions"] == want["subscriptions"], _columns_apart(want, got)
        for what in ("history", "reminders", "events"):
            assert got[what] == want[what], what
        assert counts_set_based == counts_by_row

    try:
        check()
    finally:
        by_row.dispose()
        set_based.dispose()
