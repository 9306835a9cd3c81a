"""Credit notes: never more than was paid on the invoice minus what earlier credit notes took."""

from __future__ import annotations

from decimal import Decimal

from services.billing.domain.model import MethodType, Settlement
from shared.errors import InvalidInput, RuleViolation
from shared.money import round_money, to_decimal


def creditable(paid: Decimal, credited: Decimal) -> Decimal:
    return max(paid - credited, Decimal(0))


def credit_amount(requested: Decimal | None, *, paid: Decimal, credited: Decimal, currency: str) -> Decimal:
    """The amount of a new credit note: the requested amount, or all that is left to credit."""
    left = creditable(paid, credited)
    if requested is None:
        if left <= 0:
            raise RuleViolation(
                "nothing paid on this invoice is left to credit", reason="CREDIT_EXCEEDS_PAID"
            )
        return left
    amount = to_decimal(requested)
    if amount != round_money(amount, currency):
        raise InvalidInput(f"the amount has more decimals than {currency} allows", field="amount")
    if amount <= 0:
        raise InvalidInput("a credit note amount must be positive", field="amount")
    if amount > left:
        raise RuleViolation(
            f"a credit note can be at most {left} {currency}: paid {paid} minus {credited} already credited",
            reason="CREDIT_EXCEEDS_PAID",
            metadata={"creditable": str(left)},
        )
    return amount


def settlement_for(method: MethodType) -> Settlement:
    """Card and PayPal charges are refunded through the gateway; bank transfers become cash balance."""
    return Settlement.CASH_BALANCE if method == MethodType.INVOICE else Settlement.REFUND
