"""Credit notes and account credit (rules §5 Credit notes and balance).

A credit note on an **open** invoice reduces what it still owes (never below zero). On a **paid**
invoice it gives back at most what was paid (by charge, bank transfer or account credit) minus earlier
credit notes: refunded to the card or PayPal account that was charged, or kept as **account credit**
(bank transfers, account credit the invoice used, or when the buyer asks).

Account credit is a ledger per account and currency: a credit note kept as credit adds to it; issuing
an invoice in that currency applies it before any charge, oldest credit note first; voiding that
invoice gives the credit back. Every part names the credit note it came from and the balance before
and after, so an invoice's "credit applied" lines explain themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.billing.domain.model import InvoiceStatus, MethodType, Settlement
from shared.errors import InvalidInput, RuleViolation
from shared.money import round_money, to_decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CreditedInvoice:
    """The figures of an invoice a credit note is computed from."""

    invoice_number: str
    currency: str
    status: InvoiceStatus
    total: Decimal
    paid: Decimal = ZERO  # charges and transfers
    credit_applied: Decimal = ZERO  # account credit it used
    due_credited: Decimal = ZERO  # credit notes that reduced it while open
    credited: Decimal = ZERO  # all its credit notes

    @property
    def amount_due(self) -> Decimal:
        if self.status != InvoiceStatus.OPEN:
            return ZERO
        return self.total - self.paid - self.credit_applied - self.due_credited

    @property
    def creditable(self) -> Decimal:
        """What a credit note may still take: the amount due while open; once paid, what was paid (by
        charge, transfer or account credit) minus what earlier credit notes gave back."""
        if self.status == InvoiceStatus.OPEN:
            return max(self.amount_due, ZERO)
        if self.status == InvoiceStatus.PAID:
            given_back = self.credited - self.due_credited
            return max(self.paid + self.credit_applied - given_back, ZERO)
        return ZERO


@dataclass(frozen=True, slots=True)
class CreditSplit:
    """A credit note's amount and where it goes: the parts add up to `amount`."""

    amount: Decimal
    due_reduced: Decimal
    refunded: Decimal
    account_credit: Decimal
    settlement: Settlement
    creditable_before: Decimal
    amount_due_after: Decimal


def _amount(requested: Decimal, currency: str) -> Decimal:
    amount = to_decimal(requested)
    if amount != round_money(amount, currency):
        raise InvalidInput(f"the amount has more decimals than {currency} allows", field="amount")
    if amount <= 0:
        raise InvalidInput("a credit note amount must be positive", field="amount")
    return amount


def _too_much(inv: CreditedInvoice, amount: Decimal, left: Decimal) -> RuleViolation:
    cur = inv.currency
    if inv.status == InvoiceStatus.OPEN:
        why = f"invoice {inv.invoice_number} still owes {left} {cur}"
    else:
        given_back = inv.credited - inv.due_credited
        why = (
            f"paid {inv.paid + inv.credit_applied} {cur} on invoice {inv.invoice_number} "
            f"minus {given_back} {cur} already credited"
        )
    return RuleViolation(
        f"a credit note can be at most {left} {cur} ({why}); {amount} {cur} was asked",
        reason="CREDIT_EXCEEDS_PAID",
        metadata={"creditable": str(left)},
    )


def split_credit(
    inv: CreditedInvoice,
    requested: Decimal | None,
    *,
    asked: Settlement | None,
    refundable: Decimal,
    refunds_by_default: bool,
) -> CreditSplit:
    """The credit note of `requested` (None: all that was paid and not credited yet) on `inv`.

    `asked` is the settlement the caller chose (None: the default). `refundable` is what the gateway
    can still give back to the card or PayPal (charged minus refunded); `refunds_by_default` is True for
    invoices paid by card or PayPal (a bank transfer is kept as account credit).
    """
    left = inv.creditable
    cur = inv.currency
    if inv.status == InvoiceStatus.VOID:
        raise RuleViolation(
            f"invoice {inv.invoice_number} is void; there is nothing to credit", reason="CREDIT_EXCEEDS_PAID"
        )
    if inv.status == InvoiceStatus.OPEN:
        if asked in (Settlement.REFUND, Settlement.CASH_BALANCE) or requested is None:
            raise RuleViolation(
                f"nothing was paid on open invoice {inv.invoice_number}; its credit note reduces what it "
                f"owes: give an amount of at most {left} {cur}, or void it",
                reason="CREDIT_EXCEEDS_PAID",
                metadata={"creditable": str(left)},
            )
        amount = _amount(requested, cur)
        if amount > left:
            raise _too_much(inv, amount, left)
        return CreditSplit(amount, amount, ZERO, ZERO, Settlement.AMOUNT_DUE, left, inv.amount_due - amount)
    if asked == Settlement.AMOUNT_DUE:
        raise RuleViolation(
            f"invoice {inv.invoice_number} is paid; its credit note is refunded or kept as account credit",
            reason="INVOICE_NOT_OPEN",
        )
    if requested is None:
        if left <= 0:
            raise RuleViolation(
                f"nothing paid on invoice {inv.invoice_number} is left to credit",
                reason="CREDIT_EXCEEDS_PAID",
            )
        amount = left
    else:
        amount = _amount(requested, cur)
        if amount > left:
            raise _too_much(inv, amount, left)
    room = max(refundable, ZERO)
    if asked == Settlement.CASH_BALANCE or (asked is None and not refunds_by_default):
        refunded = ZERO
    elif asked == Settlement.REFUND:
        if amount > room:
            raise RuleViolation(
                f"only {room} {cur} charged to the card or PayPal on invoice {inv.invoice_number} is left "
                f"to refund; keep the rest as account credit",
                reason="CREDIT_EXCEEDS_PAID",
                metadata={"refundable": str(room)},
            )
        refunded = amount
    else:  # card or PayPal by default: refund what was charged, the rest (account credit used) goes back
        refunded = min(amount, room)
    settlement = Settlement.REFUND if refunded > 0 else Settlement.CASH_BALANCE
    return CreditSplit(amount, ZERO, refunded, amount - refunded, settlement, left, ZERO)


# --- the account-credit ledger ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of an account's credit in one currency: + from a credit note (or given back by a
    voided invoice), − applied to an invoice. Entries are given oldest first."""

    credit_note_id: str
    credit_note_number: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Application:
    """A part of an invoice's credit applied, from one credit note."""

    credit_note_id: str
    credit_note_number: str
    amount: Decimal
    balance_before: Decimal
    balance_after: Decimal


def balance(entries: Iterable[LedgerEntry]) -> Decimal:
    return sum((e.amount for e in entries), ZERO)


def remaining_by_note(entries: Iterable[LedgerEntry]) -> list[tuple[str, str, Decimal]]:
    """What is left of each credit note's credit, in the order the notes first appear (oldest first)."""
    left: dict[str, Decimal] = {}
    numbers: dict[str, str] = {}
    for e in entries:
        left[e.credit_note_id] = left.get(e.credit_note_id, ZERO) + e.amount
        numbers.setdefault(e.credit_note_id, e.credit_note_number)
    return [(cid, numbers[cid], amt) for cid, amt in left.items() if amt > 0]


def apply_credit(entries: list[LedgerEntry], due: Decimal) -> list[Application]:
    """The account credit an invoice owing `due` uses: as much as there is, up to `due`, oldest credit
    note first (one part per note)."""
    before = balance(entries)
    if due <= 0 or before <= 0:
        return []
    parts: list[Application] = []
    want = min(due, before)
    for cid, number, left in remaining_by_note(entries):
        if want <= 0:
            break
        take = min(left, want)
        parts.append(Application(cid, number, take, before, before - take))
        before -= take
        want -= take
    return parts


def application_text(credit_note_number: str) -> str:
    """What the invoice's "credit applied" line says."""
    return f"Credit applied from credit note {credit_note_number}"


def refunds_by_default(method: MethodType | None) -> bool:
    """Card and PayPal charges are refunded through the gateway; bank transfers become account credit."""
    return method in (MethodType.CARD, MethodType.PAYPAL)
