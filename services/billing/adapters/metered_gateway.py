"""The payment gateway, counted: every charge asked of it by result (`tenure_payment_attempts_total`)."""

from __future__ import annotations

from decimal import Decimal

from services.billing.domain.gateway import CardToken, ChargeResult, PaymentGateway, RefundResult
from shared.telemetry.metrics import ServiceMetrics, record_payment


class MeteredGateway:
    """Wraps a `PaymentGateway`: a charge counts as `succeeded`, `declined`, or `error` when the gateway
    raised instead of answering. The other methods pass through."""

    def __init__(self, inner: PaymentGateway, metrics: ServiceMetrics | None) -> None:
        self.inner = inner
        self.metrics = metrics
        self.name = inner.name

    def tokenize_card(self, number: str) -> CardToken:
        return self.inner.tokenize_card(number)

    def tokenize_paypal(self, email: str) -> str:
        return self.inner.tokenize_paypal(email)

    def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str) -> ChargeResult:
        try:
            result = self.inner.charge(token, amount, currency, idempotency_key=idempotency_key)
        except Exception:
            record_payment(self.metrics, "error")
            raise
        record_payment(self.metrics, "succeeded" if result.succeeded else "declined")
        return result

    def refund(self, charge_id: str, amount: Decimal, currency: str, *, idempotency_key: str) -> RefundResult:
        return self.inner.refund(charge_id, amount, currency, idempotency_key=idempotency_key)
