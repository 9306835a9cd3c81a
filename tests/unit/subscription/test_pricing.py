"""Proration by days (rules §3) and its property: the pieces of a split term add up to the whole."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.subscription.domain import dates
from services.subscription.domain.model import Term
from services.subscription.domain.pricing import line_amount, prorate
from shared.errors import InvalidInput
from shared.money import quantum


def test_three_seats_added_on_1_december_cost_737_84():
    term_days = dates.days_between(date(2024, 6, 10), date(2025, 6, 10))
    days_left = dates.days_between(date(2024, 12, 1), date(2025, 6, 10))
    assert (term_days, days_left) == (365, 191)
    assert prorate(Decimal("470.00"), 3, days_left, term_days, "USD") == Decimal("737.84")


def test_rounding_is_half_up_once_at_the_line_total():
    # 0.01 x 1 x 1 / 2 = 0.005 -> 0.01 (half up), and JPY has no decimals.
    assert prorate(Decimal("0.01"), 1, 1, 2, "USD") == Decimal("0.01")
    assert prorate(Decimal("1000"), 1, 1, 3, "JPY") == Decimal("333")
    assert prorate(Decimal("1000"), 1, 1, 2, "JPY") == Decimal("500")
    assert line_amount(Decimal("1179.00"), 3, "USD") == Decimal("3537.00")


def test_bad_proration_input():
    with pytest.raises(InvalidInput):
        prorate(Decimal("1"), 1, 1, 0, "USD")
    with pytest.raises(InvalidInput):
        prorate(Decimal("1"), 1, -1, 10, "USD")


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2)


@settings(max_examples=300, deadline=None)
@given(
    unit=prices,
    seats=st.integers(min_value=1, max_value=500),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    term=st.sampled_from(list(Term)),
    cuts=st.lists(st.integers(min_value=1, max_value=1096), min_size=1, max_size=6),
    currency=st.sampled_from(["USD", "EUR", "NOK", "SEK", "JPY"]),
)
def test_prorated_pieces_of_a_term_sum_to_the_full_price(unit, seats, start, term, cuts, currency):
    unit = unit.quantize(quantum(currency)) if currency == "JPY" else unit
    end = dates.add_months(start, term.months)
    term_days = dates.days_between(start, end)
    points = sorted({c % term_days for c in cuts if c % term_days})
    bounds = [0, *points, term_days]
    pieces = [
        prorate(unit, seats, b - a, term_days, currency) for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    full = line_amount(unit, seats, currency)
    splits = len(bounds) - 2
    assert abs(sum(pieces) - full) <= splits * quantum(currency)
    # A piece for the whole term is the full price, and no piece is negative.
    assert prorate(unit, seats, term_days, term_days, currency) == full
    assert all(p >= 0 for p in pieces)
