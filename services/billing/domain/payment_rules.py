"""Which payment method may pay an order (rules §5).

Card and PayPal may always pay. Pay by invoice is only for purchases made through a quote, or for an
account that already has a subscription paid by invoice, and never for an account made prepay-only
after a subscription was cancelled for an unpaid credit line.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from services.billing.domain.model import Channel, MethodType
from shared.errors import RuleViolation


@dataclass(frozen=True, slots=True)
class Eligibility:
    allowed: bool
    reason: str = ""
    message: str = ""

    def require(self) -> None:
        if not self.allowed:
            raise RuleViolation(self.message, reason=self.reason)


def eligibility(
    method: MethodType,
    *,
    prepay_only: bool,
    quote: bool,
    channel: Channel | None,
    invoice_paid_subscriptions: Collection[str],
) -> Eligibility:
    """`invoice_paid_subscriptions`: the account's subscriptions that have invoices paid by invoice."""
    if method != MethodType.INVOICE:
        return Eligibility(True)
    if prepay_only:
        return Eligibility(
            False,
            "ACCOUNT_PREPAY_ONLY",
            "this account must prepay by card or PayPal: a subscription was cancelled for an unpaid invoice",
        )
    if quote or channel == Channel.PARTNER_QUOTE:
        return Eligibility(True)
    if invoice_paid_subscriptions:
        return Eligibility(True)
    return Eligibility(
        False,
        "PAY_BY_INVOICE_NOT_ALLOWED",
        "pay by invoice is only available for purchases through a quote or for accounts that already pay "
        "a subscription by invoice; contact your partner or sales for a quote",
    )
