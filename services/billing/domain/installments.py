"""Installments: a 3-year term bought or renewed on or after 2024-09-16 is billed in three annual parts.

The first is due at the purchase or renewal, the second on the first anniversary, the third on the
second. The subtotal is split equally to the minor unit and the first carries the remainder; each
installment invoice repeats the order's lines with their share of that installment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from services.billing.domain.invoice import LineInput
from services.billing.domain.model import InstallmentPlan, InvoiceKind, Term
from shared.errors import InvalidInput
from shared.money import installment_shares, round_money, split_evenly

INSTALLMENTS_FROM = date(2024, 9, 16)
INSTALLMENT_COUNT = 3
INSTALLMENT_KINDS = frozenset({InvoiceKind.NEW, InvoiceKind.RENEWAL, InvoiceKind.UPGRADE})


@dataclass(frozen=True, slots=True)
class ScheduledInstallment:
    sequence: int
    due_date: date
    amount: Decimal
    line_amounts: tuple[Decimal, ...]


def uses_installments(
    plan: InstallmentPlan, term: Term | None, kind: InvoiceKind, transaction_date: date
) -> bool:
    """Whether an order is billed in installments.

    AUTO applies the rule: a 3-year term bought, renewed or upgraded to on or after 2024-09-16.
    """
    if plan == InstallmentPlan.UP_FRONT:
        return False
    if plan == InstallmentPlan.ANNUAL:
        if term != Term.THREE_YEAR:
            raise InvalidInput(
                "only a 3-year term can be billed in annual installments", field="installment_plan"
            )
        return True
    return term == Term.THREE_YEAR and kind in INSTALLMENT_KINDS and transaction_date >= INSTALLMENTS_FROM


def due_dates(term_start: date, count: int = INSTALLMENT_COUNT) -> list[date]:
    """The term start and its anniversaries, each from the anchor (29 Feb falls on 28 Feb, no drift)."""
    return [add_years(term_start, k) for k in range(count)]


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a year without it."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def split_amount(total: Decimal, currency: str, count: int = INSTALLMENT_COUNT) -> list[Decimal]:
    """Equal parts to the minor unit, the first carrying the remainder: 1310.00 -> 436.68, 436.66, 436.66."""
    if round_money(total, currency) != total:
        raise InvalidInput(f"{total} has more decimals than {currency} allows")
    if total <= 0:
        raise InvalidInput("only a positive subtotal can be split into installments")
    return split_evenly(total, count, currency)


def schedule(
    line_amounts: list[Decimal], term_start: date, currency: str, count: int = INSTALLMENT_COUNT
) -> list[ScheduledInstallment]:
    """The installments of an order with these line amounts (before tax), due on the term start and its
    anniversaries.

    The installments split the subtotal equally (the first carries the remainder). The later
    installments share their amount among the lines in proportion; the first takes what is left of each
    line, so every line is billed exactly once in total.
    """
    subtotal = sum(line_amounts, Decimal(0))
    amounts = split_amount(subtotal, currency, count)
    dates = due_dates(term_start, count)
    per_installment = installment_shares(line_amounts, amounts, currency)
    return [
        ScheduledInstallment(k + 1, dates[k], amounts[k], tuple(per_installment[k])) for k in range(count)
    ]


def installment_key(subscription_id: str, term_start: date, sequence: int) -> str:
    """The unique key of one installment's invoice (a raced or repeated sweep never issues it twice)."""
    return f"{subscription_id}:{term_start.isoformat()}:{sequence}"


def shares(inputs: list[LineInput], item: ScheduledInstallment) -> list[LineInput]:
    """The order's lines with their share of one installment as their amount."""
    return [
        LineInput(
            description=li.description.strip(),
            quantity=li.quantity,
            unit_price=li.unit_price,
            period_start=li.period_start,
            period_end=li.period_end,
            amount=share,
            product_code=li.product_code,
        )
        for li, share in zip(inputs, item.line_amounts, strict=True)
    ]


def installment_inputs(share_lines: list[LineInput], sequence: int, count: int) -> list[LineInput]:
    """The lines of an installment invoice: each share, named as installment `sequence` of `count`."""
    return [
        replace(li, description=f"{li.description.strip()} (installment {sequence} of {count})")
        for li in share_lines
    ]


def share_to_json(li: LineInput) -> dict[str, object]:
    """A stored share line (kept with the installment until its invoice is issued)."""
    return {
        "description": li.description.strip(),
        "quantity": li.quantity,
        "unit_price": str(li.unit_price),
        "period_start": li.period_start.isoformat() if li.period_start else None,
        "period_end": li.period_end.isoformat() if li.period_end else None,
        "product_code": li.product_code,
        "amount": str(li.amount),
    }


def share_from_json(d: dict[str, Any]) -> LineInput:
    return LineInput(
        description=str(d["description"]),
        quantity=int(d["quantity"]),
        unit_price=Decimal(d["unit_price"]),
        period_start=date.fromisoformat(d["period_start"]) if d.get("period_start") else None,
        period_end=date.fromisoformat(d["period_end"]) if d.get("period_end") else None,
        amount=Decimal(d["amount"]),
        product_code=str(d.get("product_code", "")),
    )
