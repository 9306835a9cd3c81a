"""An account's balance per currency: open and overdue amounts, payments, credit notes, cash balance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.billing.domain.model import InvoiceStatus, Settlement


@dataclass(frozen=True, slots=True)
class InvoiceFigures:
    currency: str
    status: InvoiceStatus
    total: Decimal
    paid: Decimal
    overdue: bool = False


@dataclass(frozen=True, slots=True)
class CreditFigures:
    currency: str
    amount: Decimal
    settlement: Settlement


@dataclass(frozen=True, slots=True)
class BalanceFigures:
    currency: str
    open_amount: Decimal = Decimal(0)
    overdue_amount: Decimal = Decimal(0)
    paid_amount: Decimal = Decimal(0)
    credited_amount: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
    cash_balance: Decimal = Decimal(0)
    open_invoices: int = 0


def balances(
    invoices: Iterable[InvoiceFigures], credit_notes: Iterable[CreditFigures]
) -> dict[str, BalanceFigures]:
    acc: dict[str, dict[str, Any]] = {}

    def row(currency: str) -> dict[str, Any]:
        return acc.setdefault(
            currency,
            {
                "open_amount": Decimal(0),
                "overdue_amount": Decimal(0),
                "paid_amount": Decimal(0),
                "credited_amount": Decimal(0),
                "refunded_amount": Decimal(0),
                "cash_balance": Decimal(0),
                "open_invoices": 0,
            },
        )

    for inv in invoices:
        r = row(inv.currency)
        r["paid_amount"] += inv.paid
        if inv.status == InvoiceStatus.OPEN:
            due = inv.total - inv.paid
            r["open_amount"] += due
            r["open_invoices"] += 1
            if inv.overdue:
                r["overdue_amount"] += due
    for cn in credit_notes:
        r = row(cn.currency)
        r["credited_amount"] += cn.amount
        if cn.settlement == Settlement.REFUND:
            r["refunded_amount"] += cn.amount
        else:
            r["cash_balance"] += cn.amount
    return {cur: BalanceFigures(cur, **vals) for cur, vals in sorted(acc.items())}
