from decimal import Decimal

import pytest

from services.billing.domain.credit import credit_amount, settlement_for
from services.billing.domain.model import MethodType, Settlement
from shared.errors import InvalidInput, RuleViolation

D = Decimal


def test_default_credit_is_everything_paid_and_not_yet_credited():
    assert credit_amount(None, paid=D("786.00"), credited=D("0"), currency="USD") == D("786.00")
    assert credit_amount(None, paid=D("786.00"), credited=D("86.00"), currency="USD") == D("700.00")


def test_credit_can_never_exceed_paid_minus_credited():
    assert credit_amount(D("700.00"), paid=D("786.00"), credited=D("86.00"), currency="USD") == D("700.00")
    with pytest.raises(RuleViolation) as e:
        credit_amount(D("700.01"), paid=D("786.00"), credited=D("86.00"), currency="USD")
    assert e.value.reason == "CREDIT_EXCEEDS_PAID"
    with pytest.raises(RuleViolation):
        credit_amount(None, paid=D("0"), credited=D("0"), currency="USD")


def test_credit_amount_must_be_positive_and_in_minor_units():
    with pytest.raises(InvalidInput):
        credit_amount(D("0"), paid=D("10.00"), credited=D("0"), currency="USD")
    with pytest.raises(InvalidInput):
        credit_amount(D("1.005"), paid=D("10.00"), credited=D("0"), currency="USD")


def test_card_and_paypal_are_refunded_bank_transfers_become_cash_balance():
    assert settlement_for(MethodType.CARD) == Settlement.REFUND
    assert settlement_for(MethodType.PAYPAL) == Settlement.REFUND
    assert settlement_for(MethodType.INVOICE) == Settlement.CASH_BALANCE
