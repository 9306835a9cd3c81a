"""An account's balance per currency, added up from its invoices and credit notes.

The figures add up (a property test checks it against the lists): per currency,

    invoiced = paid + credit applied + credited while due + open
    credited = credited while due + refunded + kept as account credit
    cash balance (account credit not used yet) = kept as account credit − credit applied
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.billing.domain.model import InvoiceStatus, Settlement

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class InvoiceFigures:
    currency: str
    status: InvoiceStatus
    total: Decimal
    paid: Decimal
    overdue: bool = False
    credit_applied: Decimal = ZERO
    due_credited: Decimal = ZERO

    @property
    def amount_due(self) -> Decimal:
        if self.status != InvoiceStatus.OPEN:
            return ZERO
        return self.total - self.paid - self.credit_applied - self.due_credited


@dataclass(frozen=True, slots=True)
class CreditFigures:
    """A credit note's amount and its parts; without parts, all of it goes where `settlement` says."""

    currency: str
    amount: Decimal
    settlement: Settlement
    due_reduced: Decimal | None = None
    refunded: Decimal | None = None
    account_credit: Decimal | None = None

    def parts(self) -> tuple[Decimal, Decimal, Decimal]:
        """(reduced an open invoice, refunded, kept as account credit)."""
        if self.due_reduced is None and self.refunded is None and self.account_credit is None:
            return (
                self.amount if self.settlement == Settlement.AMOUNT_DUE else ZERO,
                self.amount if self.settlement == Settlement.REFUND else ZERO,
                self.amount if self.settlement == Settlement.CASH_BALANCE else ZERO,
            )
        return (self.due_reduced or ZERO, self.refunded or ZERO, self.account_credit or ZERO)


@dataclass(frozen=True, slots=True)
class BalanceFigures:
    currency: str
    open_amount: Decimal = ZERO
    overdue_amount: Decimal = ZERO
    paid_amount: Decimal = ZERO
    credited_amount: Decimal = ZERO
    refunded_amount: Decimal = ZERO
    cash_balance: Decimal = ZERO
    open_invoices: int = 0
    invoiced_amount: Decimal = ZERO
    credit_applied_amount: Decimal = ZERO
    due_credited_amount: Decimal = ZERO
    account_credit_amount: Decimal = ZERO


_SUMS = (
    "open_amount",
    "overdue_amount",
    "paid_amount",
    "credited_amount",
    "refunded_amount",
    "invoiced_amount",
    "credit_applied_amount",
    "due_credited_amount",
    "account_credit_amount",
)


def balances(
    invoices: Iterable[InvoiceFigures], credit_notes: Iterable[CreditFigures]
) -> dict[str, BalanceFigures]:
    acc: dict[str, dict[str, Any]] = {}

    def row(currency: str) -> dict[str, Any]:
        return acc.setdefault(currency, {**{k: ZERO for k in _SUMS}, "open_invoices": 0})

    for inv in invoices:
        r = row(inv.currency)
        r["paid_amount"] += inv.paid
        if inv.status == InvoiceStatus.VOID:
            continue
        r["invoiced_amount"] += inv.total
        r["credit_applied_amount"] += inv.credit_applied
        if inv.status == InvoiceStatus.OPEN:
            due = inv.amount_due
            r["open_amount"] += due
            r["open_invoices"] += 1
            if inv.overdue:
                r["overdue_amount"] += due
    for cn in credit_notes:
        r = row(cn.currency)
        due_reduced, refunded, kept = cn.parts()
        r["credited_amount"] += cn.amount
        r["due_credited_amount"] += due_reduced
        r["refunded_amount"] += refunded
        r["account_credit_amount"] += kept
    return {
        cur: BalanceFigures(cur, cash_balance=v["account_credit_amount"] - v["credit_applied_amount"], **v)
        for cur, v in sorted(acc.items())
    }
