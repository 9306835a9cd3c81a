"""Credit notes, account credit and the balance (rules §5 Credit notes and balance).

`issue_credit_note` credits an open invoice (it owes less) or a paid one (refunded, or kept as account
credit); `apply_account_credit` is what issuing an invoice calls before it charges; `release_credit`
gives a voided invoice's credit back; `get_balance` adds up what an account owes and holds. Each runs
in the caller's transaction, so a request retried or cut short never moves credit twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.billing import events
from services.billing.adapters.credit_ledger import APPLIED, DEPOSIT, RELEASED, CreditEntryRow
from services.billing.adapters.tables import CreditNoteRow, InvoiceRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain import credits as rules
from services.billing.domain.balance import BalanceFigures, CreditFigures, InvoiceFigures, balances
from services.billing.domain.gateway import PaymentGateway
from services.billing.domain.invoice import AmountInput, amount_in, local_date, overdue_at
from services.billing.domain.model import InvoiceStatus, MethodType, Settlement
from services.billing.domain.numbering import CREDIT_NOTE_SERIES
from services.billing.handlers.common import require
from services.billing.handlers.payments import mark_paid
from shared.db import Database, new_id
from shared.errors import RuleViolation
from shared.money import minor_unit
from shared.paging import next_offset_token, offset_page

# --- account credit -----------------------------------------------------------------------------


def _ledger(rows: list[CreditEntryRow]) -> list[rules.LedgerEntry]:
    return [rules.LedgerEntry(r.credit_note_id, r.credit_note_number, r.amount) for r in rows]


def has_credit(uow: BillingUnitOfWork, account_id: str, currency: str) -> bool:
    return rules.balance(_ledger(list(uow.account_credit.entries(account_id, currency)))) > 0


def apply_account_credit(
    uow: BillingUnitOfWork, account_id: str, currency: str, invoice_id: str, due: Decimal
) -> Decimal:
    """Apply the account's credit in `currency` to a new invoice owing `due` (before any charge): as much
    as there is, oldest credit note first. Returns the amount applied."""
    if due <= 0 or not has_credit(uow, account_id, currency):  # most accounts hold none: no lock
        return Decimal(0)
    uow.account_credit.lock(account_id, currency)
    entries = _ledger(list(uow.account_credit.entries(account_id, currency)))  # again, under the lock
    parts = rules.apply_credit(entries, due)
    now = uow.now
    uow.account_credit.add(
        [
            CreditEntryRow(
                account_id=account_id,
                currency=currency,
                kind=APPLIED,
                amount=-p.amount,
                credit_note_id=p.credit_note_id,
                credit_note_number=p.credit_note_number,
                invoice_id=invoice_id,
                balance_before=p.balance_before,
                balance_after=p.balance_after,
                create_time=now,
            )
            for p in parts
        ]
    )
    return sum((p.amount for p in parts), Decimal(0))


def release_credit(uow: BillingUnitOfWork, row: InvoiceRow) -> Decimal:
    """A voided invoice gives the account credit it used back to the account (to the same credit notes).
    Returns the amount given back."""
    applied = [e for e in uow.account_credit.of_invoice(row.invoice_id) if e.kind == APPLIED]
    if not applied:
        return Decimal(0)
    uow.account_credit.lock(row.account_id, row.currency)
    released = {e.credit_note_id for e in uow.account_credit.of_invoice(row.invoice_id) if e.kind == RELEASED}
    balance = rules.balance(_ledger(list(uow.account_credit.entries(row.account_id, row.currency))))
    back: list[CreditEntryRow] = []
    for e in applied:
        if e.credit_note_id in released:
            continue
        back.append(
            CreditEntryRow(
                account_id=row.account_id,
                currency=row.currency,
                kind=RELEASED,
                amount=-e.amount,
                credit_note_id=e.credit_note_id,
                credit_note_number=e.credit_note_number,
                invoice_id=row.invoice_id,
                balance_before=balance,
                balance_after=balance - e.amount,
                create_time=uow.now,
            )
        )
        balance -= e.amount
    uow.account_credit.add(back)
    return sum((r.amount for r in back), Decimal(0))


# --- credit notes -------------------------------------------------------------------------------


def _refundable(uow: BillingUnitOfWork, row: InvoiceRow) -> tuple[Decimal, str]:
    """What the gateway can still refund on the invoice (charged minus refunded), and the charge."""
    charges = uow.payments.succeeded_charges(row.invoice_id)
    charged = sum((c.amount for c in charges), Decimal(0))
    refunded = sum((n.refunded_amount for n in uow.credit_notes.of_invoice(row.invoice_id)), Decimal(0))
    return charged - refunded, charges[-1].charge_id if charges else ""


def issue_credit_note(
    uow: BillingUnitOfWork,
    gateway: PaymentGateway,
    request_id: str,
    invoice_id: str,
    amount: AmountInput | None,
    reason: str,
    settlement: Settlement | None = None,
) -> CreditNoteRow:
    """A credit note of `amount` on an invoice (None: all that was paid and not credited yet).

    On an open invoice it reduces the amount due (an invoice credited to zero is settled). On a paid
    one it is refunded through the gateway (card and PayPal) or kept as account credit (bank transfers,
    account credit the invoice used, or `settlement` CASH_BALANCE), which later invoices use."""
    request_id = require(request_id, "request_id")
    row = uow.invoices.lock(require(invoice_id, "invoice_id"))
    requested = amount_in(amount, row.currency, "amount") if amount is not None else None
    method = MethodType(row.payment_method_type) if row.payment_method_type else None
    refundable, charge_id = _refundable(uow, row)
    split = rules.split_credit(
        rules.CreditedInvoice(
            invoice_number=row.invoice_number,
            currency=row.currency,
            status=InvoiceStatus(row.status),
            total=row.total,
            paid=row.amount_paid,
            credit_applied=row.credit_applied,
            due_credited=row.amount_due_credited,
            credited=row.amount_credited,
        ),
        requested,
        asked=settlement,
        refundable=refundable if charge_id else Decimal(0),
        refunds_by_default=rules.refunds_by_default(method),
    )
    refund_id = ""
    if split.refunded > 0:
        result = gateway.refund(
            charge_id, split.refunded, row.currency, idempotency_key=f"{request_id}:refund"
        )
        if not result.succeeded:
            raise RuleViolation(
                f"the gateway refused the refund ({result.failure_reason}); nothing was credited",
                reason="REFUND_FAILED",
            )
        refund_id = result.refund_id
    now = uow.now
    note = CreditNoteRow(
        credit_note_id=new_id("cn"),
        credit_note_number=uow.invoices.next_number(CREDIT_NOTE_SERIES, local_date(now, row.time_zone).year),
        account_id=row.account_id,
        invoice_id=row.invoice_id,
        invoice_number=row.invoice_number,
        subscription_id=row.subscription_id,
        amount=split.amount,
        currency=row.currency,
        reason=reason.strip(),
        settlement=split.settlement.value,
        refund_id=refund_id,
        issue_time=now,
        amount_due_reduced=split.due_reduced,
        refunded_amount=split.refunded,
        account_credit_amount=split.account_credit,
        creditable_before=split.creditable_before,
        invoice_amount_due_after=split.amount_due_after,
    )
    row.amount_credited += split.amount
    row.amount_due_credited += split.due_reduced
    uow.credit_notes.add(note)
    if split.account_credit > 0:
        uow.account_credit.lock(row.account_id, row.currency)
        before = rules.balance(_ledger(list(uow.account_credit.entries(row.account_id, row.currency))))
        uow.account_credit.add(
            [
                CreditEntryRow(
                    account_id=row.account_id,
                    currency=row.currency,
                    kind=DEPOSIT,
                    amount=split.account_credit,
                    credit_note_id=note.credit_note_id,
                    credit_note_number=note.credit_note_number,
                    invoice_id="",
                    balance_before=before,
                    balance_after=before + split.account_credit,
                    create_time=now,
                )
            ]
        )
    if split.due_reduced > 0 and split.amount_due_after == 0:
        mark_paid(uow, row, Decimal(0), now)  # credited to zero: nothing is owed (saves the invoice)
    else:
        uow.invoices.save(row)
    events.credit_note_issued(uow, note, row)
    return note


@dataclass(frozen=True)
class CreditNotePage:
    credit_notes: list[CreditNoteRow]
    next_page_token: str


def list_credit_notes(db: Database, account_id: str, page_size: int, page_token: str) -> CreditNotePage:
    offset, size = offset_page(page_size, page_token)
    with db.reading() as uow:
        rows, more = uow.credit_notes.page(account_id, offset, size)
    return CreditNotePage(list(rows), next_offset_token(offset, size, more))


# --- the balance --------------------------------------------------------------------------------


def get_balance(db: Database, account_id: str, currency: str) -> tuple[BalanceFigures, list[BalanceFigures]]:
    """The account's balance in `currency` (default: its latest invoice's) and in every currency."""
    account_id = require(account_id, "account_id")
    now = db.clock.now()
    with db.reading() as uow:
        invoices = uow.invoices.of_account(account_id)
        notes = uow.credit_notes.of_account(account_id)
        latest = None if currency else uow.invoices.latest_currency(account_id)
    figures = balances(
        (
            InvoiceFigures(
                i.currency,
                InvoiceStatus(i.status),
                i.total,
                i.amount_paid,
                overdue=i.status == InvoiceStatus.OPEN.value and now >= overdue_at(i.due_date, i.time_zone),
                credit_applied=i.credit_applied,
                due_credited=i.amount_due_credited,
            )
            for i in invoices
        ),
        (
            CreditFigures(
                n.currency,
                n.amount,
                Settlement(n.settlement),
                n.amount_due_reduced,
                n.refunded_amount,
                n.account_credit_amount,
            )
            for n in notes
        ),
    )
    wanted = currency.strip().upper() if currency else (latest or "USD")
    minor_unit(wanted)
    return figures.get(wanted, BalanceFigures(wanted)), list(figures.values())
