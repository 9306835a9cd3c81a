"""Billing events written to the outbox in the same transaction as the change."""

from __future__ import annotations

from services.billing import codec
from services.billing.adapters.tables import CreditNoteRow, InvoiceRow, PayerRow
from services.billing.domain.dunning import RetryPlan
from shared.db import UnitOfWork
from tenure.events.v1 import events_pb2


def invoice_issued(uow: UnitOfWork, row: InvoiceRow) -> None:
    uow.publish(
        "billing.invoice_issued",
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        invoice_issued=events_pb2.InvoiceIssued(invoice=codec.invoice_summary(row)),
    )


def invoice_paid(uow: UnitOfWork, row: InvoiceRow) -> None:
    uow.publish(
        "billing.invoice_paid",
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        invoice_paid=events_pb2.InvoicePaid(
            invoice=codec.invoice_summary(row), paid_time=codec.ts(row.paid_time)
        ),
    )


def invoice_overdue(uow: UnitOfWork, row: InvoiceRow) -> None:
    uow.publish(
        "billing.invoice_overdue",
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        invoice_overdue=events_pb2.InvoiceOverdue(invoice=codec.invoice_summary(row)),
    )


def payment_failed(
    uow: UnitOfWork, row: InvoiceRow, decline_reason: str, plan: RetryPlan | None = None
) -> None:
    """A charge was declined; `plan` is where the invoice's retries stand (None: not retried)."""
    uow.publish(
        "billing.payment_failed",
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        payment_failed=events_pb2.PaymentFailed(
            invoice=codec.invoice_summary(row),
            decline_reason=decline_reason,
            attempt=plan.attempts if plan else 0,
            next_retry_time=codec.ts(plan.next_attempt_time) if plan else None,
            update_payment_method=plan is not None and not plan.retrying,
        ),
    )


def credit_note_issued(uow: UnitOfWork, note: CreditNoteRow, row: InvoiceRow) -> None:
    uow.publish(
        "billing.credit_note_issued",
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        credit_note_issued=events_pb2.CreditNoteIssued(
            credit_note_id=note.credit_note_id,
            credit_note_number=note.credit_note_number,
            invoice=codec.invoice_summary(row),
            amount=codec.money(note.amount, note.currency),
            reason=note.reason,
        ),
    )


def account_opened(
    uow: UnitOfWork, account_id: str, buyer_email: str, buyer_name: str, language: str
) -> None:
    """An account came into being in billing (its first billing profile or payment method): entitlement
    builds its team with this buyer as buyer and primary admin."""
    uow.publish(
        "billing.account_opened",
        account_id=account_id,
        account_opened=events_pb2.AccountOpened(
            account_id=account_id, buyer_email=buyer_email, buyer_name=buyer_name, buyer_language=language
        ),
    )


def payer_changed(uow: UnitOfWork, row: PayerRow, *, granted: bool, actor_email: str) -> None:
    """The buyer named or removed a payer: entitlement keeps the account's team."""
    uow.publish(
        "billing.payer_changed",
        account_id=row.account_id,
        payer_changed=events_pb2.PayerChanged(
            account_id=row.account_id,
            email=row.email,
            name=row.name,
            language=row.language,
            granted=granted,
            actor_email=actor_email,
        ),
    )
