from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.gateway import (
    PaymentGateway,
    SandboxGateway,
    card_brand,
    luhn_valid,
    normalize_card_number,
)
from shared.errors import InvalidInput

D = Decimal


@pytest.fixture
def gw() -> PaymentGateway:
    return SandboxGateway()


def test_4242_always_succeeds(gw):
    card = gw.tokenize_card("4242 4242 4242 4242")
    assert (card.last4, card.brand) == ("4242", "visa")
    result = gw.charge(card.token, D("786.00"), "USD", idempotency_key="k1")
    assert result.succeeded and result.charge_id.startswith("ch_sbx_") and result.decline_reason == ""


def test_0002_is_declined_and_9995_declines_for_insufficient_funds(gw):
    declined = gw.charge(gw.tokenize_card("4000000000000002").token, D("10.00"), "USD", idempotency_key="k")
    assert not declined.succeeded
    assert declined.decline_reason == "card_declined"
    assert declined.charge_id == ""
    poor = gw.charge(gw.tokenize_card("4000-0000-0000-9995").token, D("10.00"), "USD", idempotency_key="k")
    assert (poor.succeeded, poor.decline_reason) == (False, "insufficient_funds")


def test_other_luhn_valid_numbers_succeed_and_the_number_is_not_in_the_token(gw):
    card = gw.tokenize_card("5555555555554444")
    assert card.brand == "mastercard"
    assert "5555555555554444" not in card.token
    assert gw.charge(card.token, D("1.00"), "EUR", idempotency_key="x").succeeded


@pytest.mark.parametrize("number", ["4242424242424241", "1234", "abcd efgh ijkl mnop", ""])
def test_non_luhn_numbers_are_refused_as_bad_input(gw, number):
    with pytest.raises(InvalidInput) as e:
        gw.tokenize_card(number)
    assert e.value.reason == "CARD_NUMBER_INVALID"
    assert e.value.field_violations[0][0] == "card_number"


def test_paypal_sandbox_succeeds_and_needs_an_email(gw):
    token = gw.tokenize_paypal("payer@example.com")
    assert gw.charge(token, D("5.00"), "USD", idempotency_key="p").succeeded
    with pytest.raises(InvalidInput):
        gw.tokenize_paypal("not-an-email")


def test_a_retried_charge_is_the_same_charge_and_refunds_succeed(gw):
    token = gw.tokenize_card("4242424242424242").token
    first = gw.charge(token, D("9.00"), "USD", idempotency_key="same")
    again = gw.charge(token, D("9.00"), "USD", idempotency_key="same")
    other = gw.charge(token, D("9.00"), "USD", idempotency_key="other")
    assert first.charge_id == again.charge_id != other.charge_id
    refund = gw.refund(first.charge_id, D("9.00"), "USD", idempotency_key="r")
    assert refund.succeeded and refund.refund_id.startswith("re_sbx_")
    assert not gw.refund("ch_unknown", D("1.00"), "USD", idempotency_key="r").succeeded


def test_brands():
    assert card_brand("378282246310005") == "amex"
    assert card_brand("6011111111111117") == "discover"
    assert card_brand("2223003122003222") == "mastercard"
    assert normalize_card_number("4242-4242-4242-4242") == "4242424242424242"


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_appending_the_luhn_check_digit_makes_a_valid_number(body):
    valid = [d for d in "0123456789" if luhn_valid(body + d)]
    assert len(valid) == 1
