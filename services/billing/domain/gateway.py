"""Payment gateway interface and the sandbox gateway.

Sandbox test card numbers follow the common sandbox convention:

| number             | result                              |
| ------------------ | ----------------------------------- |
| 4242424242424242   | always succeeds                     |
| 4000000000000002   | always declined: `card_declined`    |
| 4000000000009995   | declined: `insufficient_funds`      |
| 4000000000000069   | declined: `expired_card` (hard)     |
| 4000000000000119   | `processing_error` on its first     |
|                    | charge; a retry succeeds            |
| 4000000000000341   | attaches, then every charge is      |
|                    | declined: `card_declined`           |
| other Luhn-valid   | succeeds                            |
| not Luhn-valid     | refused as bad input                |

PayPal accounts always succeed in the sandbox. Card numbers are never kept: the gateway returns a token
and the last four digits; charges and refunds name the token and carry an idempotency key, so a retried
charge is the same charge.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from shared.errors import InvalidInput

SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
EXPIRED = "4000000000000069"
PROCESSING_ERROR_ONCE = "4000000000000119"
DECLINES_AFTER_ATTACH = "4000000000000341"

CARD_DECLINED = "card_declined"
INSUFFICIENT = "insufficient_funds"
EXPIRED_CARD = "expired_card"
PROCESSING_ERROR = "processing_error"

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class CardToken:
    token: str
    last4: str
    brand: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    succeeded: bool
    charge_id: str = ""
    decline_reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundResult:
    succeeded: bool
    refund_id: str = ""
    failure_reason: str = ""


class PaymentGateway(Protocol):
    """What billing needs from a payment gateway; a real one plugs in behind the same methods."""

    name: str

    def tokenize_card(self, number: str) -> CardToken: ...

    def tokenize_paypal(self, email: str) -> str: ...

    def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str) -> ChargeResult: ...

    def refund(
        self, charge_id: str, amount: Decimal, currency: str, *, idempotency_key: str
    ) -> RefundResult: ...


def normalize_card_number(number: str) -> str:
    digits = re.sub(r"[\s-]", "", number or "")
    if not digits:
        raise InvalidInput("a card needs a card number", field="card_number", reason="CARD_NUMBER_INVALID")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        raise InvalidInput("not a valid card number", field="card_number", reason="CARD_NUMBER_INVALID")
    return digits


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    if digits.startswith("6011") or digits.startswith("65"):
        return "discover"
    return "card"


def normalize_email(email: str, field: str = "email") -> str:
    value = (email or "").strip().lower()
    if not EMAIL_RE.match(value) or len(value) > 254:
        raise InvalidInput(f"not an e-mail address: {email!r}", field=field)
    return value


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class SandboxGateway:
    """Deterministic test gateway: the outcome of a card is fixed when it is tokenized."""

    name = "sandbox"

    _OUTCOMES = {
        DECLINED: CARD_DECLINED,
        INSUFFICIENT_FUNDS: INSUFFICIENT,
        EXPIRED: EXPIRED_CARD,
        PROCESSING_ERROR_ONCE: PROCESSING_ERROR,
        DECLINES_AFTER_ATTACH: CARD_DECLINED,
    }

    def __init__(self) -> None:
        # card token -> the idempotency key of its one failed charge (processing error)
        self._errored: dict[str, str] = {}

    def tokenize_card(self, number: str) -> CardToken:
        digits = normalize_card_number(number)
        outcome = self._OUTCOMES.get(digits, "ok")
        return CardToken(f"tok_sbx_card.{outcome}.{uuid.uuid4().hex}", digits[-4:], card_brand(digits))

    def tokenize_paypal(self, email: str) -> str:
        normalize_email(email, "paypal_email")
        return f"tok_sbx_paypal.ok.{uuid.uuid4().hex}"

    def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str) -> ChargeResult:
        if amount <= 0:
            raise InvalidInput("a charge must be positive", field="amount")
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].startswith("tok_sbx_"):
            return ChargeResult(False, decline_reason="invalid_token")
        outcome = parts[1]
        if outcome == PROCESSING_ERROR:
            # the first charge of the card fails (and so does a repeat of it, same key); the next succeeds
            first = self._errored.setdefault(token, idempotency_key)
            outcome = PROCESSING_ERROR if first == idempotency_key else "ok"
        if outcome != "ok":
            return ChargeResult(False, decline_reason=outcome)
        return ChargeResult(
            True, charge_id="ch_sbx_" + _digest(token, idempotency_key, str(amount), currency)
        )

    def refund(self, charge_id: str, amount: Decimal, currency: str, *, idempotency_key: str) -> RefundResult:
        if not charge_id.startswith("ch_sbx_"):
            return RefundResult(False, failure_reason="unknown_charge")
        if amount <= 0:
            raise InvalidInput("a refund must be positive", field="amount")
        return RefundResult(
            True, refund_id="re_sbx_" + _digest(charge_id, idempotency_key, str(amount), currency)
        )
