import pytest

from services.billing.domain.model import Channel, MethodType
from services.billing.domain.payment_rules import eligibility
from shared.errors import RuleViolation


def check(
    method=MethodType.INVOICE, *, prepay_only=False, quote=False, channel=Channel.DIRECT_ONLINE, subs=()
):
    return eligibility(
        method, prepay_only=prepay_only, quote=quote, channel=channel, invoice_paid_subscriptions=set(subs)
    )


def test_card_and_paypal_always_pay_even_prepay_only():
    assert check(MethodType.CARD, prepay_only=True).allowed
    assert check(MethodType.PAYPAL).allowed


def test_pay_by_invoice_is_for_quotes():
    assert check(quote=True).allowed
    assert check(channel=Channel.PARTNER_QUOTE).allowed


def test_pay_by_invoice_is_for_accounts_already_paying_a_subscription_by_invoice():
    assert check(subs={"sub-1"}).allowed


def test_pay_by_invoice_is_refused_otherwise_with_a_reason():
    result = check()
    assert not result.allowed
    assert result.reason == "PAY_BY_INVOICE_NOT_ALLOWED"
    with pytest.raises(RuleViolation) as e:
        result.require()
    assert e.value.reason == "PAY_BY_INVOICE_NOT_ALLOWED"


def test_prepay_only_accounts_never_pay_by_invoice():
    result = check(prepay_only=True, quote=True, subs={"sub-1"})
    assert (result.allowed, result.reason) == (False, "ACCOUNT_PREPAY_ONLY")
