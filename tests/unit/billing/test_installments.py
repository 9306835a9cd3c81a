from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.installments import (
    due_dates,
    schedule,
    split_amount,
    uses_installments,
)
from services.billing.domain.model import InstallmentPlan, InvoiceKind, Term
from shared.errors import InvalidInput
from shared.money import allocate

D = Decimal


def test_three_year_renewal_of_two_seats_is_three_installments_of_786():
    plan = schedule([D("1179.00") * 2], date(2025, 3, 10), "USD")
    assert [i.amount for i in plan] == [D("786.00")] * 3
    assert [i.due_date for i in plan] == [date(2025, 3, 10), date(2026, 3, 10), date(2027, 3, 10)]
    assert [i.sequence for i in plan] == [1, 2, 3]


def test_new_three_year_purchase_splits_with_the_remainder_on_the_first():
    assert split_amount(D("1310.00"), "USD") == [D("436.68"), D("436.66"), D("436.66")]
    plan = schedule([D("1310.00")], date(2024, 9, 16), "USD")
    assert [i.amount for i in plan] == [D("436.68"), D("436.66"), D("436.66")]
    assert [i.line_amounts for i in plan] == [(D("436.68"),), (D("436.66"),), (D("436.66"),)]


def test_anniversaries_of_29_february_fall_on_28_february_without_drift():
    assert due_dates(date(2028, 2, 29)) == [date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28)]


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2024, 9, 15), False), (date(2024, 9, 16), True), (date(2026, 1, 1), True)],
)
def test_installments_apply_to_three_year_terms_from_16_september_2024(day, expected):
    assert uses_installments(InstallmentPlan.AUTO, Term.THREE_YEAR, InvoiceKind.NEW, day) is expected
    assert uses_installments(InstallmentPlan.AUTO, Term.THREE_YEAR, InvoiceKind.RENEWAL, day) is expected


def test_other_terms_and_kinds_are_paid_up_front():
    day = date(2025, 1, 1)
    assert not uses_installments(InstallmentPlan.AUTO, Term.ANNUAL, InvoiceKind.NEW, day)
    assert not uses_installments(InstallmentPlan.AUTO, Term.MONTHLY, InvoiceKind.RENEWAL, day)
    assert not uses_installments(InstallmentPlan.AUTO, Term.THREE_YEAR, InvoiceKind.ADD_SEATS, day)
    assert not uses_installments(InstallmentPlan.UP_FRONT, Term.THREE_YEAR, InvoiceKind.NEW, day)
    assert uses_installments(InstallmentPlan.ANNUAL, Term.THREE_YEAR, InvoiceKind.NEW, date(2023, 1, 1))
    with pytest.raises(InvalidInput):
        uses_installments(InstallmentPlan.ANNUAL, Term.ANNUAL, InvoiceKind.NEW, day)


def test_several_lines_share_each_installment_in_proportion():
    # 3 seats at 1310.00 plus a credit of -100.01 for the unused old term.
    lines = [D("3930.00"), D("-100.01")]
    plan = schedule(lines, date(2025, 5, 1), "USD")
    assert [i.amount for i in plan] == split_amount(D("3829.99"), "USD")
    for i in plan:
        assert sum(i.line_amounts) == i.amount
    for n, line in enumerate(lines):
        assert sum(i.line_amounts[n] for i in plan) == line


def test_zero_or_negative_subtotals_cannot_be_split():
    with pytest.raises(InvalidInput):
        split_amount(D("0.00"), "USD")
    with pytest.raises(InvalidInput):
        split_amount(D("-3.00"), "USD")


cents = st.integers(min_value=1, max_value=10**9).map(lambda c: D(c) / 100)


@given(total=cents, count=st.integers(min_value=1, max_value=12))
def test_split_is_exact_equal_to_the_cent_and_the_first_carries_the_remainder(total, count):
    parts = split_amount(total, "USD", count)
    assert sum(parts) == total
    assert len(parts) == count
    assert all(p == parts[1] for p in parts[1:])
    assert D(0) <= parts[0] - parts[-1] < D("0.01") * count


@given(yen=st.integers(min_value=1, max_value=10**9))
def test_split_in_a_currency_without_minor_unit(yen):
    parts = split_amount(D(yen), "JPY")
    assert sum(parts) == yen
    assert all(p == p.to_integral_value() for p in parts)


@given(
    lines=st.lists(st.integers(min_value=-50_000, max_value=500_000), min_size=1, max_size=6).filter(
        lambda ls: sum(ls) > 0
    ),
)
def test_schedule_bills_every_line_exactly_once(lines):
    amounts = [D(c) / 100 for c in lines]
    plan = schedule(amounts, date(2025, 1, 31), "EUR")
    assert sum(i.amount for i in plan) == sum(amounts)
    for i in plan:
        assert sum(i.line_amounts) == i.amount
    for n, line in enumerate(amounts):
        assert sum(i.line_amounts[n] for i in plan) == line


@given(
    amount=st.integers(min_value=0, max_value=10**7),
    weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6),
)
def test_allocation_is_exact_and_close_to_proportional(amount, weights):
    a = D(amount) / 100
    ws = [D(w) / 100 for w in weights]
    shares = allocate(a, ws, "USD")
    assert sum(shares) == a
    for share, w in zip(shares, ws, strict=True):
        assert abs(share - a * w / sum(ws)) < D("0.01")
