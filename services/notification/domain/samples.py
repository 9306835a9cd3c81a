"""Sample facts for previews (RenderTemplate) and the fields a caller may override by name."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from decimal import Decimal
from typing import Any, get_type_hints

from services.notification.domain.model import Kind, MailFacts
from shared.errors import InvalidInput
from shared.money import round_money, to_decimal

# Figures from rules §1–§3: AutoCAD LT, annual term 10.06.2024 → 10.06.2025, 3 seats added on
# 01.12.2024 for 737.84 before tax.
_BASE = MailFacts(
    recipient_name="Kari Nordmann",
    recipient_email="kari@example.com",
    account_id="acct-1001",
    subscription_id="sub-2001",
    product_code="ACDLT",
    product_name="AutoCAD LT",
    plan="STANDARD",
    term="ANNUAL",
    seats=5,
    order_number="ORD-2024-000123",
    amount=Decimal("2350.00"),
    currency_code="USD",
    renewal_date=date(2025, 6, 10),
    expiry_date=date(2025, 6, 9),
    auto_renew=True,
)

SAMPLES: dict[Kind, MailFacts] = {
    Kind.ORDER_CONFIRMATION: _BASE,
    Kind.RENEWAL_CONFIRMATION: replace(
        _BASE,
        order_number="ORD-2025-000456",
        amount=Decimal("2100.00"),
        renewal_date=date(2026, 6, 10),
        expiry_date=date(2026, 6, 9),
    ),
    Kind.RENEWAL_REMINDER: replace(_BASE, amount=Decimal("2100.00"), days_before=30, order_number=""),
    Kind.SUBSCRIPTION_EXPIRED: replace(
        _BASE, auto_renew=False, order_number="", amount=None, next_stage_date=date(2025, 6, 25)
    ),
    Kind.SUBSCRIPTION_SUSPENDED: replace(
        _BASE, auto_renew=False, order_number="", amount=None, next_stage_date=date(2025, 7, 25)
    ),
    Kind.SUBSCRIPTION_CANCELLED: replace(_BASE, auto_renew=False, order_number="", amount=None),
    Kind.SEATS_ADDED: replace(
        _BASE, order_number="ORD-2024-000789", seats=8, seats_added=3, amount=Decimal("737.84")
    ),
    Kind.UPGRADE_CONFIRMATION: replace(
        _BASE,
        product_code="ACD",
        product_name="AutoCAD",
        order_number="ORD-2024-000901",
        amount=Decimal("6120.00"),
        old_product_name="AutoCAD LT",
        old_access_until_date=date(2024, 12, 31),
    ),
    Kind.REFUND_CONFIRMATION: replace(_BASE, order_number="", amount=Decimal("2350.00")),
    Kind.INVOICE_ISSUED: replace(
        _BASE,
        invoice_number="INV-2025-000042",
        amount=Decimal("2625.00"),
        amount_due=Decimal("2625.00"),
        issue_date=date(2025, 6, 10),
        due_date=date(2025, 7, 10),
        payment_method="INVOICE",
    ),
    Kind.INVOICE_OVERDUE: replace(
        _BASE,
        invoice_number="INV-2025-000042",
        amount=Decimal("2625.00"),
        issue_date=date(2025, 6, 10),
        due_date=date(2025, 7, 10),
    ),
    Kind.PAYMENT_FAILED: replace(
        _BASE,
        invoice_number="INV-2025-000042",
        amount=Decimal("2625.00"),
        decline_reason="insufficient_funds",
        retry_attempt=1,
        next_retry_date=date(2025, 6, 11),
    ),
    Kind.PRODUCT_ACCESS: replace(_BASE, order_number="", amount=None),
    Kind.ROLE_CHANGED: replace(
        _BASE,
        order_number="",
        amount=None,
        role="SECONDARY_ADMIN",
        granted=True,
        member_name="Ola Hansen",
        member_email="ola@example.com",
        actor_email="kari@example.com",
    ),
    Kind.SEAT_ASSIGNED: replace(_BASE, order_number="", amount=None),
    Kind.INVOICE_REMINDER: replace(
        _BASE,
        invoice_number="INV-2025-000042",
        amount=Decimal("2625.00"),
        amount_due=Decimal("2625.00"),
        issue_date=date(2025, 6, 10),
        due_date=date(2025, 7, 10),
        days_before=7,
        payment_method="INVOICE",
    ),
    Kind.USER_ASSIGNED: replace(
        _BASE, order_number="", amount=None, member_name="Ola Hansen", member_email="ola@example.com"
    ),
    Kind.QUOTE_ISSUED: replace(
        _BASE,
        order_number="",
        quote_number="Q-20241001-3F9A1C2B",
        quote_version=2,
        partner_name="ACME Reseller AS",
        amount=Decimal("1637.50"),
        subtotal=Decimal("1310.00"),
        tax=Decimal("327.50"),
        issue_date=date(2024, 10, 1),
        valid_until_date=date(2024, 10, 31),
    ),
    Kind.QUOTE_ACCEPTED: replace(
        _BASE,
        recipient_name="ACME Reseller AS",
        recipient_email="sally@acme.example",
        order_number="ORD-2024-000321",
        quote_number="Q-20241001-3F9A1C2B",
        quote_version=2,
        partner_name="ACME Reseller AS",
        customer_name="Kari Nordmann",
        customer_email="kari@example.com",
        term="THREE_YEAR",
        amount=Decimal("545.84"),
    ),
    Kind.QUOTE_EXPIRED: replace(
        _BASE,
        recipient_name="ACME Reseller AS",
        recipient_email="sally@acme.example",
        order_number="",
        quote_number="Q-20241001-3F9A1C2B",
        quote_version=1,
        partner_name="ACME Reseller AS",
        customer_name="Kari Nordmann",
        customer_email="kari@example.com",
        amount=Decimal("1637.50"),
        valid_until_date=date(2024, 10, 31),
    ),
    Kind.RENEWAL_OPPORTUNITY: replace(
        _BASE,
        recipient_name="ACME Reseller AS",
        recipient_email="sally@acme.example",
        order_number="",
        amount=None,
        partner_name="ACME Reseller AS",
        customer_name="Kari Nordmann",
        customer_email="kari@example.com",
        days_before=90,
    ),
}

# Facts each kind's e-mail must state (checked by the template tests and shown in previews).
KEY_FACTS: dict[Kind, tuple[str, ...]] = {
    Kind.ORDER_CONFIRMATION: ("order_number", "amount", "product_name"),
    Kind.RENEWAL_CONFIRMATION: ("order_number", "amount", "renewal_date"),
    Kind.RENEWAL_REMINDER: ("product_name", "days_before", "renewal_date"),
    Kind.SUBSCRIPTION_EXPIRED: ("product_name", "expiry_date"),
    Kind.SUBSCRIPTION_SUSPENDED: ("product_name",),
    Kind.SUBSCRIPTION_CANCELLED: ("product_name",),
    Kind.SEATS_ADDED: ("order_number", "amount", "seats_added"),
    Kind.UPGRADE_CONFIRMATION: ("order_number", "amount", "product_name", "old_access_until_date"),
    Kind.REFUND_CONFIRMATION: ("amount", "product_name"),
    Kind.INVOICE_ISSUED: ("invoice_number", "amount", "due_date"),
    Kind.INVOICE_OVERDUE: ("invoice_number", "amount", "due_date"),
    Kind.PAYMENT_FAILED: ("invoice_number", "amount"),
    Kind.PRODUCT_ACCESS: ("product_name",),
    Kind.ROLE_CHANGED: ("member_name",),
    Kind.SEAT_ASSIGNED: ("product_name",),
    Kind.INVOICE_REMINDER: ("invoice_number", "amount_due", "due_date", "days_before"),
    Kind.USER_ASSIGNED: ("member_name", "product_name"),
    Kind.QUOTE_ISSUED: ("quote_number", "partner_name", "amount", "valid_until_date"),
    Kind.QUOTE_ACCEPTED: ("quote_number", "customer_name", "order_number", "amount"),
    Kind.QUOTE_EXPIRED: ("quote_number", "customer_name", "valid_until_date"),
    Kind.RENEWAL_OPPORTUNITY: ("product_name", "customer_name", "renewal_date", "days_before"),
}


def sample_facts(kind: Kind) -> MailFacts:
    return SAMPLES[kind]


_HINTS = get_type_hints(MailFacts)
OVERRIDABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(MailFacts))


def _parse(name: str, raw: str, hint: object) -> object:
    text = raw.strip()
    if hint in (str,):
        return raw
    if text == "" and hint in (int | None, Decimal | None, date | None):
        return None
    if hint in (int, int | None):
        try:
            return int(text)
        except ValueError:
            raise InvalidInput(
                f"{name} must be a whole number, not {raw!r}", field=f"fields[{name}]", reason="INVALID_FIELD"
            ) from None
    if hint in (bool,):
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise InvalidInput(
            f"{name} must be true or false, not {raw!r}", field=f"fields[{name}]", reason="INVALID_FIELD"
        )
    if hint in (Decimal | None,):
        try:
            return to_decimal(text)
        except InvalidInput:
            raise InvalidInput(
                f"{name} must be a decimal amount such as 737.84, not {raw!r}",
                field=f"fields[{name}]",
                reason="INVALID_FIELD",
            ) from None
    if hint in (date | None,):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{name} must be a date YYYY-MM-DD, not {raw!r}",
                field=f"fields[{name}]",
                reason="INVALID_FIELD",
            ) from None
    raise InvalidInput(f"{name} cannot be set", field=f"fields[{name}]", reason="INVALID_FIELD")


def apply_fields(facts: MailFacts, overrides: dict[str, str]) -> MailFacts:
    """Replace facts by name from strings (RenderTemplate's `fields`); bad input raises InvalidInput."""
    changes: dict[str, Any] = {}
    for name, raw in sorted(overrides.items()):
        if name not in _HINTS:
            raise InvalidInput(
                f"unknown field {name!r}; known fields: {', '.join(OVERRIDABLE_FIELDS)}",
                field=f"fields[{name}]",
                reason="INVALID_FIELD",
            )
        changes[name] = _parse(name, raw, _HINTS[name])
    result = replace(facts, **changes)
    if result.amount is not None:
        if not result.currency_code:
            raise InvalidInput(
                "an amount needs a currency_code", field="fields[currency_code]", reason="INVALID_FIELD"
            )
        try:
            result = replace(result, amount=round_money(result.amount, result.currency_code))
        except InvalidInput as e:
            raise InvalidInput(e.message, field="fields[currency_code]", reason="INVALID_FIELD") from None
    return result
