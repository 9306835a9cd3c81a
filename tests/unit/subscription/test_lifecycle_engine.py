"""What the sweep does for one subscription (rules §3–§4): the walk through the shutoff with the rules' Oslo
dates, reminders, renewals handed to billing, trial and upgrade ends, and the invariant the sweep relies on
(after `advance`, nothing local is still due)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.subscription.domain import dates, lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import demo_catalog
from services.subscription.domain.lifecycle import LOCAL, REMOTE, LifecycleState, advance, plan
from services.subscription.domain.model import PaymentMethodType, Stage, Term
from services.subscription.domain.subscription import lifecycle_state, with_state
from shared.errors import RuleViolation

from .factory import OSLO, bought


def oslo(y, m, d, hh=0, mm=0, ss=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(OSLO)).astimezone(UTC)


def annual_off() -> LifecycleState:
    # ACDLT bought 2024-06-10 in Oslo, annual, auto-renew off: expires 2025-06-09 23:59:59
    return lifecycle_state(bought(auto_renew=False))


def test_oslo_annual_walk_active_expired_suspended_cancelled():
    s = annual_off()
    assert plan(s)[0] == oslo(2025, 4, 25)  # the 45-day reminder comes first
    a = advance(s, oslo(2025, 6, 9, 23, 59, 59))
    assert a.state.stage is Stage.ACTIVE and not a.transitions
    a = advance(a.state, oslo(2025, 6, 10))
    assert a.state.stage is Stage.EXPIRED
    assert [(t.from_stage, t.to_stage, t.at, t.reason) for t in a.transitions] == [
        (Stage.ACTIVE, Stage.EXPIRED, oslo(2025, 6, 10), lifecycle.TERM_ENDED)
    ]
    assert plan(a.state) == (oslo(2025, 6, 25), LOCAL)
    assert advance(a.state, oslo(2025, 6, 24, 23, 59, 59)).state.stage is Stage.EXPIRED
    a = advance(a.state, oslo(2025, 6, 25))
    assert a.state.stage is Stage.SUSPENDED and a.transitions[0].at == oslo(2025, 6, 25)
    assert plan(a.state) == (oslo(2025, 7, 25), LOCAL)
    a = advance(a.state, oslo(2025, 7, 25))
    assert a.state.stage is Stage.CANCELLED and a.transitions[0].reason == lifecycle.SHUTOFF
    assert plan(a.state) == (None, LOCAL) and a.remote is None


def test_a_late_sweep_catches_up_in_order_with_the_rules_instants():
    a = advance(annual_off(), oslo(2025, 8, 1))
    assert [(t.to_stage, t.at) for t in a.transitions] == [
        (Stage.EXPIRED, oslo(2025, 6, 10)),
        (Stage.SUSPENDED, oslo(2025, 6, 25)),
        (Stage.CANCELLED, oslo(2025, 7, 25)),
    ]
    assert a.reminders == ()  # no reminder once the term has ended


def test_monthly_is_cancelled_30_days_after_expiry():
    s = lifecycle_state(bought(auto_renew=False, term=Term.MONTHLY))  # renews 2024-07-10
    a = advance(s, oslo(2024, 8, 9))
    assert [(t.to_stage, t.at) for t in a.transitions] == [
        (Stage.EXPIRED, oslo(2024, 7, 10)),
        (Stage.SUSPENDED, oslo(2024, 7, 25)),
        (Stage.CANCELLED, oslo(2024, 8, 9)),
    ]


def test_reminders_45_30_4_each_once_and_monthly_terms_get_only_the_4_day_one():
    s = annual_off()
    sent = []
    for when in (oslo(2025, 4, 25), oslo(2025, 4, 26), oslo(2025, 5, 10), oslo(2025, 6, 5), oslo(2025, 6, 6)):
        a = advance(s, when)
        sent += a.reminders
        s = a.state
    assert sent == [45, 30, 4]
    assert plan(s) == (oslo(2025, 6, 10), LOCAL)  # next: the end of the term
    monthly = lifecycle_state(bought(term=Term.MONTHLY))  # 2024-06-10 -> 2024-07-10, expiry 07-09
    assert plan(monthly)[0] == oslo(2024, 7, 5)  # 4 days before 07-09; 45 and 30 fall before the term
    assert advance(monthly, oslo(2024, 6, 10, 12)).reminders == ()
    assert advance(monthly, oslo(2024, 7, 5)).reminders == (4,)


def test_auto_renew_hands_the_renewal_to_billing_at_the_renewal_instant():
    s = lifecycle_state(bought())
    s = replace(s, last_reminder_days=4)  # all reminders sent
    assert plan(s) == (oslo(2025, 6, 10), REMOTE)
    assert advance(s, oslo(2025, 6, 9, 23, 59, 59)).remote is None
    a = advance(s, oslo(2025, 6, 10))
    assert a.remote == lifecycle.RENEW and a.state.stage is Stage.ACTIVE and not a.transitions


def test_a_late_renewal_voids_the_reminders_it_missed():
    s = lifecycle_state(bought())
    a = advance(s, oslo(2025, 6, 11))
    assert a.remote == lifecycle.RENEW and a.reminders == ()
    assert plan(a.state) == (oslo(2025, 6, 10), REMOTE)


def test_declined_renewal_starts_the_shutoff_at_the_renewal_instant():
    s, t = lifecycle.start_shutoff(lifecycle_state(bought()), date(2025, 6, 10), lifecycle.PAYMENT_FAILED)
    assert (t.from_stage, t.to_stage, t.at, t.reason) == (
        Stage.ACTIVE,
        Stage.EXPIRED,
        oslo(2025, 6, 10),
        lifecycle.PAYMENT_FAILED,
    )
    assert (s.suspend_time, s.cancel_time) == (oslo(2025, 6, 25), oslo(2025, 7, 25))


def test_an_unpaid_credit_line_cancelled_asks_billing_for_prepay_only():
    sub = bought(payment_method_type=PaymentMethodType.INVOICE)
    s, _ = lifecycle.start_shutoff(lifecycle_state(sub), date(2024, 7, 10), lifecycle.INVOICE_OVERDUE)
    a = advance(s, oslo(2024, 8, 24))
    assert a.state.stage is Stage.CANCELLED and a.state.prepay_pending
    assert a.remote == lifecycle.MARK_PREPAY_ONLY and plan(a.state)[1] == REMOTE
    done = replace(a.state, prepay_pending=False)
    assert advance(done, oslo(2024, 9, 1)).remote is None and plan(done) == (None, LOCAL)
    card, _ = lifecycle.start_shutoff(lifecycle_state(bought()), date(2024, 7, 10), lifecycle.INVOICE_OVERDUE)
    assert not advance(card, oslo(2024, 8, 24)).state.prepay_pending


def test_old_side_of_an_upgrade_ends_30_days_after_the_order_date():
    catalog = demo_catalog()
    sub = bought(catalog)
    up = ops.upgrade(sub, catalog, oslo(2024, 12, 1, 10), "sub-2", "ACD")
    s = lifecycle_state(up.old)
    assert plan(s) == (oslo(2024, 12, 31), LOCAL)
    assert advance(s, oslo(2024, 12, 30, 23)).state.stage is Stage.ACTIVE
    a = advance(s, oslo(2024, 12, 31))
    assert [(t.to_stage, t.reason) for t in a.transitions] == [(Stage.CANCELLED, lifecycle.UPGRADED)]
    assert lifecycle_state(up.new).stage is Stage.ACTIVE and plan(lifecycle_state(up.new))[0] > oslo(
        2025, 1, 1
    )


def test_a_trial_ends_after_30_days():
    sub = bought(trial=True, term=None, payment_method_id="")
    s = lifecycle_state(sub)
    assert plan(s) == (oslo(2024, 7, 10), LOCAL)
    a = advance(s, oslo(2024, 7, 10))
    assert [(t.from_stage, t.to_stage, t.reason) for t in a.transitions] == [
        (Stage.TRIAL, Stage.CANCELLED, lifecycle.TRIAL_ENDED)
    ]


def test_renewing_while_suspended_keeps_the_anniversary_and_clears_the_shutoff():
    catalog = demo_catalog()
    sub = bought(catalog, auto_renew=False)
    a = advance(lifecycle_state(sub), oslo(2025, 6, 30))
    suspended = with_state(sub, a.state)
    assert suspended.stage is Stage.SUSPENDED
    out = ops.renew(suspended, catalog, oslo(2025, 6, 30, 12))
    new = out.subscription
    assert new.stage is Stage.ACTIVE and new.current_period_start_date == date(2025, 6, 10)
    assert new.renewal_date == date(2026, 6, 10) and str(new.unit_price) == "420.00"  # the renewal price
    assert (new.shutoff_reason, new.suspend_time, new.cancel_time) == ("", None, None)
    assert [(t.from_stage, t.to_stage) for t in out.transitions] == [(Stage.SUSPENDED, Stage.ACTIVE)]
    assert plan(lifecycle_state(new))[0] == oslo(2026, 4, 25)


def test_an_overdue_invoice_shutoff_is_ended_by_paying_not_by_renewing():
    catalog = demo_catalog()
    sub = bought(catalog, payment_method_type=PaymentMethodType.INVOICE)
    s, _ = lifecycle.start_shutoff(lifecycle_state(sub), date(2024, 7, 10), lifecycle.INVOICE_OVERDUE)
    shut = replace(with_state(sub, s), shutoff_invoice_id="inv-1")
    try:
        ops.renew(shut, catalog, oslo(2024, 7, 11))
    except RuleViolation as e:
        assert e.reason == "INVOICE_UNPAID" and e.metadata["invoice_id"] == "inv-1"
    else:
        raise AssertionError("renewing an overdue shutoff must be refused")


STAGES = st.sampled_from([Stage.TRIAL, Stage.ACTIVE, Stage.EXPIRED, Stage.SUSPENDED, Stage.CANCELLED])
ZONES = st.sampled_from(["Europe/Oslo", "America/New_York", "Australia/Sydney", "America/Santiago", "UTC"])


@st.composite
def states(draw):
    tz = draw(ZONES)
    term = draw(st.sampled_from(list(Term)))
    start = draw(st.dates(min_value=date(2016, 1, 1), max_value=date(2030, 12, 31)))
    renewal = dates.add_months(start, term.months)
    stage = draw(STAGES)
    shutoff = None
    if stage in (Stage.EXPIRED, Stage.SUSPENDED):
        shutoff = lifecycle.shutoff_schedule(
            draw(st.dates(min_value=start, max_value=renewal)), term, tz, lifecycle.TERM_ENDED
        )
    upgraded = draw(st.booleans())
    return LifecycleState(
        stage=stage,
        term=term,
        time_zone=tz,
        renewal_date=renewal,
        renewal_time=dates.renewal_instant(renewal, tz),
        current_period_start_date=start,
        auto_renew=draw(st.booleans()),
        access_until=dates.local_midnight(start + timedelta(days=draw(st.integers(1, 400))), tz)
        if upgraded
        else None,
        upgraded=upgraded,
        pays_by_invoice=draw(st.booleans()),
        shutoff_reason=lifecycle.INVOICE_OVERDUE if shutoff else "",
        shutoff_start_date=shutoff.start_date if shutoff else None,
        suspend_time=shutoff.suspended_time if shutoff else None,
        cancel_time=shutoff.cancelled_time if shutoff else None,
        last_reminder_days=draw(st.sampled_from([None, 45, 30, 4])),
        prepay_pending=stage is Stage.CANCELLED and draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(states(), st.integers(min_value=-400, max_value=1500))
def test_after_advance_nothing_local_is_due_and_a_second_advance_changes_nothing(s, offset_days):
    now = s.renewal_time + timedelta(days=offset_days, hours=7)
    a = advance(s, now)
    nxt, kind = plan(a.state)
    assert nxt is None or nxt > now or kind == REMOTE
    if a.remote is None:
        again = advance(a.state, now)
        assert again.transitions == () and again.reminders == () and again.state == a.state
    else:
        assert kind == REMOTE and nxt is not None and nxt <= now
    times = [t.at for t in a.transitions]
    assert times == sorted(times) and all(t <= now for t in times)


def test_a_move_is_the_advance_and_the_plan_with_each_shutoff_change_keyed_by_its_shutoff():
    mv = lifecycle.move(annual_off(), oslo(2025, 6, 26))
    assert mv.before == annual_off()
    assert [(t.to_stage, t.at) for t in mv.transitions] == [
        (Stage.EXPIRED, oslo(2025, 6, 10)),
        (Stage.SUSPENDED, oslo(2025, 6, 25)),
    ]
    assert mv.period_keys == ("2025-06-10", "2025-06-10")  # one shutoff: a raced sweep records each once
    assert (mv.next_action_time, mv.due_kind, mv.stuck) == (oslo(2025, 7, 25), LOCAL, False)
    reminder = lifecycle.move(annual_off(), oslo(2025, 4, 25, 12))
    assert (reminder.reminders, reminder.transitions, reminder.period_keys) == ((45,), (), ())
    assert reminder.next_action_time == oslo(2025, 5, 10)  # the 30-day reminder


def test_a_move_that_leaves_local_work_due_is_retried_a_second_later_not_spun_on():
    # a rule bug stood in for by an advance that does nothing: the trial's end stays due after the move
    broken = replace(annual_off(), stage=Stage.TRIAL)
    now = oslo(2025, 6, 26)
    real = lifecycle.advance
    try:
        lifecycle.advance = lambda state, at, policy=lifecycle.POLICY: lifecycle.Advance(state)
        mv = lifecycle.move(broken, now)
    finally:
        lifecycle.advance = real
    assert mv.stuck and mv.next_action_time == now + timedelta(seconds=1) and mv.due_kind == LOCAL
