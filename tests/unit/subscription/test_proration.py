"""Rules §3 and §6: prorations and credits divide by the days of one term as bought, before and after an
alignment; cancelling an aligned term refunds the alignment; the upgrade flags; every prorated line explains
itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.subscription.domain import dates
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import Catalog, demo_catalog
from services.subscription.domain.model import Plan, Stage, Term
from services.subscription.domain.pricing import prorate
from shared.errors import RuleViolation

from .factory import at, bought


@pytest.fixture
def catalog() -> Catalog:
    return demo_catalog()


def _aligned(catalog: Catalog, seats: int = 1) -> ops.Subscription:
    """ACDLT annual at 470.00 bought 2024-06-10 in Oslo, aligned on 2024-10-01 to the renewal date of one
    bought 2024-09-01: it now renews on 2025-09-01."""
    a = bought(catalog, sid="a", seats=seats, start_date=date(2024, 6, 10))
    b = bought(catalog, sid="b", start_date=date(2024, 9, 1))
    out = ops.align([a, b], "acct-1", catalog, at(date(2024, 10, 1)))
    return out.subscriptions[0]


# -- the days of the term as bought -------------------------------------------------------------------


def test_a_seat_added_after_an_alignment_costs_470_x_234_over_365(catalog):
    sub = _aligned(catalog)
    assert (sub.current_period_start_date, sub.renewal_date) == (date(2024, 6, 10), date(2025, 9, 1))
    assert (sub.aligned_from_date, sub.term_end_date, sub.term_days) == (
        date(2025, 6, 10),
        date(2025, 6, 10),
        365,
    )
    out = ops.add_seats(sub, 1, catalog, at(date(2025, 1, 10)))
    (line,) = out.lines
    # 234 days from 2025-01-10 to the new renewal date, over the 365 days of the term as bought (not 448).
    assert (line.prorated_days, line.term_days) == (234, 365)
    assert line.amount == Decimal("301.32")  # 470 x 234 / 365 = 301.315..., half up
    assert (line.period_start_date, line.period_end_date) == (date(2025, 1, 10), date(2025, 9, 1))
    assert (line.term_start_date, line.term_end_date) == (date(2024, 6, 10), date(2025, 6, 10))
    assert line.explanation() == (
        "470.00 USD x 1 seat(s) x 234 day(s) (2025-01-10 to 2025-09-01) / 365 day(s) "
        "(2024-06-10 to 2025-06-10) = 301.32 USD"
    )


def test_the_alignment_line_carries_its_inputs(catalog):
    a = bought(catalog, sid="a", seats=2, start_date=date(2024, 6, 10))
    b = bought(catalog, sid="b", start_date=date(2024, 9, 1))
    (line,) = ops.align([a, b], "acct-1", catalog, at(date(2024, 10, 1))).lines
    # 83 extra days (2025-06-10 to 2025-09-01) of 2 seats: 470 x 2 x 83 / 365 = 213.75
    assert (line.quantity, line.unit_price, line.prorated_days, line.term_days) == (
        2,
        Decimal("470.00"),
        83,
        365,
    )
    assert (line.period_start_date, line.period_end_date) == (date(2025, 6, 10), date(2025, 9, 1))
    assert (line.term_start_date, line.term_end_date) == (date(2024, 6, 10), date(2025, 6, 10))
    assert line.amount == Decimal("213.75")
    assert line.explanation().endswith(
        "83 day(s) (2025-06-10 to 2025-09-01) / 365 day(s) (2024-06-10 to 2025-06-10) = 213.75 USD"
    )


def test_an_unaligned_term_divides_by_its_own_days_from_the_anchor(catalog):
    # Bought Jan 31 monthly: the term from Feb 29 runs to Mar 31 (31 days), not to Mar 29.
    sub = bought(catalog, term=Term.MONTHLY, start_date=date(2024, 1, 31))
    sub = ops.renew_term(sub, catalog, sub.renewal_time).subscription
    assert (sub.current_period_start_date, sub.renewal_date, sub.term_days) == (
        date(2024, 2, 29),
        date(2024, 3, 31),
        31,
    )
    (line,) = ops.add_seats(sub, 1, catalog, at(date(2024, 3, 1))).lines
    assert (line.prorated_days, line.term_days, line.amount) == (30, 31, Decimal("58.06"))  # 60 x 30 / 31


def test_the_upgrade_credit_after_an_alignment_uses_the_term_as_bought(catalog):
    sub = _aligned(catalog)
    out = ops.upgrade(sub, catalog, at(date(2025, 1, 10)), "n", target_product_code="ACD")
    credit = out.lines[1]
    assert out.credit == Decimal("301.32")  # 470 x 234 / 365, not 470 x 234 / 448 = 245.49
    assert (credit.amount, credit.prorated_days, credit.term_days) == (Decimal("-301.32"), 234, 365)
    assert (credit.term_start_date, credit.term_end_date) == (date(2024, 6, 10), date(2025, 6, 10))
    assert credit.explanation().startswith("-470.00 USD x 1 seat(s) x 234 day(s)")
    assert out.new.aligned_from_date is None and out.new.term_days == 365


def test_a_second_alignment_keeps_the_term_as_bought(catalog):
    sub = _aligned(catalog)  # renews 2025-09-01, as bought 2025-06-10
    c = bought(catalog, sid="c", start_date=date(2024, 10, 1))  # renews 2025-10-01
    out = ops.align([sub, c], "acct-1", catalog, at(date(2024, 10, 2)))
    again = out.subscriptions[0]
    (line,) = out.lines
    assert (again.renewal_date, again.aligned_from_date, again.aligned_from_anchor_date) == (
        date(2025, 10, 1),
        date(2025, 6, 10),
        date(2024, 6, 10),
    )
    assert (line.prorated_days, line.term_days, line.amount) == (30, 365, Decimal("38.63"))  # 470 x 30 / 365


def test_the_term_after_an_aligned_one_is_a_whole_term_on_the_new_anniversary(catalog):
    sub = _aligned(catalog)
    nxt = ops.renew_term(sub, catalog, sub.renewal_time).subscription
    assert (nxt.current_period_start_date, nxt.renewal_date, nxt.term_days) == (
        date(2025, 9, 1),
        date(2026, 9, 1),
        365,
    )
    assert (
        nxt.aligned_from_date is None
        and nxt.aligned_from_anchor_date is None
        and nxt.aligned_from_months is None
    )
    (line,) = ops.add_seats(nxt, 1, catalog, at(date(2026, 3, 1))).lines
    assert (line.prorated_days, line.term_days, line.amount) == (
        184,
        365,
        Decimal("211.73"),
    )  # 420 x 184 / 365


# -- the alignment refund -----------------------------------------------------------------------------


def test_cancelling_before_the_renewal_as_bought_undoes_the_alignment_and_credits_its_lines(catalog):
    a = bought(catalog, sid="a", seats=2, start_date=date(2024, 6, 10))
    b = bought(catalog, sid="b", start_date=date(2024, 9, 1))
    aligned = ops.align([a, b], "acct-1", catalog, at(date(2024, 10, 1)))
    sub, paid = aligned.subscriptions[0], aligned.lines
    now = at(date(2025, 3, 1))
    assert ops.refund_kind(sub, catalog, now) == "alignment"  # the 30-day window closed on 2024-07-09
    out = ops.refund_alignment(sub, paid, now)
    new = out.subscription
    assert (new.renewal_date, new.anchor_date, new.months_from_anchor) == (
        date(2025, 6, 10),
        date(2024, 6, 10),
        12,
    )
    assert not new.auto_renew and new.stage is Stage.ACTIVE and new.aligned_from_date is None
    (credit,) = out.lines
    assert credit.amount == Decimal("-213.75")
    assert (credit.quantity, credit.prorated_days, credit.term_days) == (2, 83, 365)
    assert (credit.period_start_date, credit.period_end_date) == (date(2025, 6, 10), date(2025, 9, 1))
    # Once: the term is no longer aligned, so there is nothing more to refund.
    assert not ops.alignment_refundable(new, now)
    with pytest.raises(RuleViolation) as e:
        ops.refund_alignment(new, paid, now)
    assert e.value.reason == "NOTHING_TO_CHANGE"
    with pytest.raises(RuleViolation) as e:
        ops.refund_kind(new, catalog, now)
    assert e.value.reason == "REFUND_WINDOW_CLOSED"


def test_the_alignment_is_not_refunded_once_its_extra_days_have_begun(catalog):
    sub = _aligned(catalog)
    # Local midnight of 2025-06-10 in Oslo is the first instant of the extra days.
    last = dates.renewal_instant(date(2025, 6, 10), sub.time_zone) - timedelta(seconds=1)
    assert ops.alignment_refundable(sub, last)
    assert not ops.alignment_refundable(sub, last + timedelta(seconds=1))
    with pytest.raises(RuleViolation) as e:
        ops.refund_kind(sub, catalog, at(date(2025, 6, 10)))
    assert e.value.reason == "REFUND_WINDOW_CLOSED"


def test_inside_the_refund_window_the_whole_term_is_refunded(catalog):
    a = bought(catalog, sid="a", start_date=date(2024, 9, 10))
    b = bought(catalog, sid="b", start_date=date(2024, 9, 20))
    sub = ops.align([a, b], "acct-1", catalog, at(date(2024, 9, 21))).subscriptions[0]
    assert ops.refund_kind(sub, catalog, at(date(2024, 10, 9))) == "full"  # day 30


def test_the_refund_option_is_offered_while_the_alignment_can_be_refunded(catalog):
    sub = _aligned(catalog)

    def option(now):
        return next(o for o in ops.self_service_options(sub, catalog, now) if o.action == "REQUEST_REFUND")

    assert option(at(date(2025, 3, 1))).available
    closed = option(at(date(2025, 6, 10)))
    assert not closed.available and closed.error_reason == "REFUND_WINDOW_CLOSED"


# -- upgrade flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "target", "plan", "serial"),
    [
        ("ACD", "AEC_COLLECTION", None, True),  # ACD's release year is 2019
        ("ACDLT", "ACD", None, False),  # ACDLT's is 2021
        ("ACD", "", Plan.PREMIUM, False),  # a plan change of the same product
        ("ACD", "AEC_COLLECTION", Plan.PREMIUM, True),  # the product changes, with the plan
        ("DC_SUITE", "AEC_COLLECTION", None, False),  # a suite is not a standalone product
    ],
)
def test_a_serial_number_update_only_when_leaving_a_standalone_product_of_2019_or_earlier(
    catalog, product, target, plan, serial
):
    assert (catalog.product("ACD").release_year, catalog.product("ACDLT").release_year) == (2019, 2021)
    sub = bought(catalog, product_code=product)
    out = ops.upgrade(sub, catalog, at(date(2024, 7, 1)), "n", target_product_code=target, target_plan=plan)
    assert out.serial_number_update_required is serial
    assert not out.reinstall_required


@pytest.mark.parametrize(
    ("stage", "target", "plan", "reinstall"),
    [
        (Stage.EXPIRED, "AEC_COLLECTION", None, True),
        (Stage.SUSPENDED, "AEC_COLLECTION", None, True),
        (Stage.ACTIVE, "AEC_COLLECTION", None, False),  # the current subscription has not expired
        (Stage.EXPIRED, "", Plan.PREMIUM, False),  # a plan change stays on the suite
    ],
)
def test_a_reinstall_only_when_moving_off_an_expired_suite(catalog, stage, target, plan, reinstall):
    assert catalog.upgrades_to("DC_SUITE") == ["AEC_COLLECTION"]
    sub = replace(bought(catalog, product_code="DC_SUITE"), stage=stage)
    out = ops.upgrade(sub, catalog, at(date(2025, 6, 15)), "n", target_product_code=target, target_plan=plan)
    assert out.reinstall_required is reinstall
    assert not out.serial_number_update_required


# -- properties ---------------------------------------------------------------------------------------

ZONES = st.sampled_from(
    [
        "Europe/Oslo",
        "America/Santiago",  # DST changes at local midnight
        "America/Havana",
        "Asia/Beirut",
        "Australia/Lord_Howe",  # half-hour DST
        "Pacific/Kiritimati",  # UTC+14
        "Pacific/Pago_Pago",  # UTC-11
        "America/St_Johns",
    ]
)
TERMS = st.sampled_from([Term.MONTHLY, Term.ANNUAL, Term.THREE_YEAR])
PURCHASES = st.dates(date(2016, 1, 1), date(2032, 12, 31))
HALF_CENT = Decimal("0.005")
CATALOG = demo_catalog()


@settings(max_examples=150, deadline=None)
@given(start=PURCHASES, tz=ZONES, term=TERMS, seats=st.integers(1, 50))
def test_seats_added_for_the_whole_term_of_an_unaligned_subscription_cost_exactly_the_term_price(
    start, tz, term, seats
):
    sub = bought(CATALOG, start_date=start, time_zone=tz, term=term)
    assert sub.term_days == dates.days_between(start, dates.add_months(start, term.months))
    (line,) = ops.add_seats(sub, seats, CATALOG, at(start, tz, hour=0)).lines
    assert line.amount == sub.unit_price * seats
    assert line.prorated_days == line.term_days == sub.term_days


@st.composite
def aligned_cases(draw):
    """A subscription bought on `start`, aligned (on a day before its renewal) to one bought later, and a
    day of the aligned term on which something changes."""
    tz = draw(ZONES)
    term = draw(TERMS)
    start = draw(PURCHASES)
    a = bought(CATALOG, sid="a", start_date=start, time_zone=tz, term=term)
    later = draw(st.integers(1, a.term_days - 1))
    b = bought(CATALOG, sid="b", start_date=start + timedelta(days=later), time_zone=tz, term=term)
    assume(b.renewal_date != a.renewal_date)  # 29, 30 and 31 January all renew monthly on 28 February
    align_day = start + timedelta(days=draw(st.integers(later, a.term_days - 1)))
    out = ops.align([a, b], "acct-1", CATALOG, at(align_day, tz))
    change = start + timedelta(days=draw(st.integers(0, dates.days_between(start, b.renewal_date) - 1)))
    return a, out, change


@settings(max_examples=150, deadline=None)
@given(case=aligned_cases())
def test_after_an_alignment_a_day_costs_what_it_cost_before(case):
    a, out, change = case
    sub = out.subscriptions[0]
    (extension,) = out.lines
    assert sub.term_days == a.term_days  # the denominator does not stretch
    assert extension.term_days == a.term_days
    # A seat for the whole aligned term costs the term price plus the extension, within one rounding.
    (whole,) = ops.add_seats(sub, 1, CATALOG, at(a.start_date, a.time_zone, hour=0)).lines
    assert abs(whole.amount - (a.unit_price + extension.amount)) <= 2 * HALF_CENT
    # A seat added later never costs more than one that was there all along.
    (added,) = ops.add_seats(sub, 1, CATALOG, at(change, a.time_zone)).lines
    assert added.amount <= whole.amount
    assert added.prorated_days == dates.days_between(change, sub.renewal_date)
    # The credit for what is left is the same proration (a term in installments is credited only what
    # was billed): never more than was paid for the seat.
    if sub.installments == 1:
        assert ops.unused_value(sub, change) == added.amount


@settings(max_examples=150, deadline=None)
@given(case=aligned_cases(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_prorated_pieces_never_sum_to_more_than_the_whole_by_more_than_rounding(case, cuts):
    a, out, _ = case
    sub = out.subscriptions[0]
    (extension,) = out.lines
    total_days = dates.days_between(sub.current_period_start_date, sub.renewal_date)
    bounds = sorted({0, total_days, *(c % (total_days + 1) for c in cuts)})
    pieces = [
        prorate(sub.unit_price, 1, hi - lo, sub.term_days, sub.currency)
        for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]
    whole = a.unit_price + extension.amount  # what one seat pays for the aligned term
    assert sum(pieces) <= whole + len(pieces) * HALF_CENT + HALF_CENT
    # and the pieces of the term as bought sum to its price within rounding
    as_bought = [
        prorate(
            sub.unit_price, 1, min(hi, sub.term_days) - min(lo, sub.term_days), sub.term_days, sub.currency
        )
        for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]
    assert abs(sum(as_bought) - sub.unit_price) <= len(as_bought) * HALF_CENT
