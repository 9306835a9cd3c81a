from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidInput
from shared.money import Money, from_proto, round_money, split_evenly, to_proto


def test_round_half_up_to_minor_unit():
    assert round_money(Decimal("737.835"), "USD") == Decimal("737.84")
    assert round_money(Decimal("737.8349"), "USD") == Decimal("737.83")
    assert round_money(Decimal("2.5"), "JPY") == Decimal("3")
    assert round_money(Decimal("-0.005"), "EUR") == Decimal("-0.01")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        round_money(0.1, "USD")
    with pytest.raises(TypeError):
        Money(Decimal("1.00"), "USD") * 1.5


def test_installment_split_first_carries_remainder():
    assert split_evenly(Decimal("1310.00"), 3, "USD") == [
        Decimal("436.68"),
        Decimal("436.66"),
        Decimal("436.66"),
    ]
    assert split_evenly(Decimal("2358.00"), 3, "USD") == [Decimal("786.00")] * 3


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=12))
def test_split_sums_to_total(cents, parts):
    total = Decimal(cents) / 100
    split = split_evenly(total, parts, "USD")
    assert sum(split) == total
    assert max(split) - min(split) < Decimal("0.01") * parts


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_proto_round_trip(cents):
    amount = Decimal(cents) / 100
    msg = to_proto(amount, "NOK")
    assert (msg.units >= 0 and msg.nanos >= 0) or (msg.units <= 0 and msg.nanos <= 0)
    assert from_proto(msg) == Money(amount, "NOK")


def test_proto_refuses_more_decimals_than_the_currency_has():
    from google.type import money_pb2

    with pytest.raises(InvalidInput):
        from_proto(money_pb2.Money(currency_code="USD", units=1, nanos=5_000_000))
    with pytest.raises(InvalidInput):
        from_proto(money_pb2.Money(currency_code="USD", units=1, nanos=-500_000_000))
    with pytest.raises(InvalidInput):
        from_proto(money_pb2.Money(currency_code="XXX", units=1))
