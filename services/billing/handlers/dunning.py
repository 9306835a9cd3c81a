"""Payment retries (dunning, rules §5): what happens after a renewal or installment charge is declined.

`on_decline` starts or advances an invoice's retry plan; the sweep's `retry_due` makes the attempts that
came due; adding a payment method tries the account's unpaid invoices again at once with it. A paid
invoice publishes `billing.invoice_paid`, which returns its subscription to Active with the same
anniversary (subscription's consumer); every declined attempt publishes `billing.payment_failed` with
the attempt, the next retry (if any) and whether only a new payment method can pay.
"""

from __future__ import annotations

from datetime import datetime

from services.billing import events
from services.billing.adapters.retries import PaymentRetryRow
from services.billing.adapters.tables import InvoiceRow, PaymentMethodRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain import dunning
from services.billing.domain.gateway import PaymentGateway
from services.billing.domain.model import InvoiceKind, InvoiceStatus, MethodType, PaymentStatus
from services.billing.domain.payment import Collection, payment_outcome
from services.billing.handlers.common import state
from services.billing.handlers.payments import collect, mark_paid, payment_row
from shared.db import Database

RETRY_BATCH = 100


def on_decline(
    uow: BillingUnitOfWork, row: InvoiceRow, reason: str, when: datetime
) -> dunning.RetryPlan | None:
    """A charge of `row` was declined at `when` (its first charge, or a retry): the plan that follows, or
    None when the invoice's charges are not retried (an order paid at checkout, pay by invoice)."""
    method = MethodType(row.payment_method_type) if row.payment_method_type else None
    if not dunning.enters_dunning(InvoiceKind(row.kind), method):
        return None
    r = uow.retries.get(row.invoice_id, lock=True)
    if r is None:
        r = PaymentRetryRow(
            invoice_id=row.invoice_id,
            account_id=row.account_id,
            status=dunning.RetryStatus.SCHEDULED.value,
            attempts=0,
            first_decline_time=when,
        )
    return _declined(uow, r, reason, when)


def _declined(uow: BillingUnitOfWork, r: PaymentRetryRow, reason: str, when: datetime) -> dunning.RetryPlan:
    """One more declined attempt on `r`: the plan that follows, stored."""
    plan = dunning.after_decline(r.first_decline_time, r.attempts + 1, reason)
    r.attempts, r.status, r.next_attempt_time = plan.attempts, plan.status.value, plan.next_attempt_time
    r.last_reason, r.update_time = reason, when
    uow.retries.save(r)
    return plan


def retry_due(db: Database, gateway: PaymentGateway, as_of: datetime) -> tuple[int, int]:
    """Make every retry attempt due by `as_of`, each in its own transaction; returns (attempts, paid)."""
    attempts = paid = 0
    seen: set[str] = set()
    while True:
        with db.unit_of_work() as uow:
            due = uow.retries.claim_due(as_of, seen, RETRY_BATCH)
            if not due:
                break
            for r in due:
                seen.add(r.invoice_id)
                outcome = _attempt(uow, gateway, r, None, as_of)
                if outcome is not None:
                    attempts += 1
                    paid += outcome == PaymentStatus.SUCCEEDED
    return attempts, paid


def retry_with_new_method(
    uow: BillingUnitOfWork, gateway: PaymentGateway, method: PaymentMethodRow, when: datetime
) -> int:
    """A card or PayPal account was added: try the account's invoices in dunning with it at once.
    Returns how many were paid; a paid invoice keeps the new method."""
    if MethodType(method.type) not in (MethodType.CARD, MethodType.PAYPAL):
        return 0
    paid = 0
    for r in uow.retries.open_of_account(method.account_id):
        paid += _attempt(uow, gateway, r, method, when) == PaymentStatus.SUCCEEDED
    return paid


def next_attempt_after(db: Database, as_of: datetime) -> datetime | None:
    with db.reading() as uow:
        return uow.retries.next_attempt_after(as_of)


def _attempt(
    uow: BillingUnitOfWork,
    gateway: PaymentGateway,
    r: PaymentRetryRow,
    method: PaymentMethodRow | None,
    when: datetime,
) -> PaymentStatus | None:
    """One attempt at `r`'s invoice (with `method`, or the invoice's own). None: nothing was owed."""
    row = uow.invoices.lock(r.invoice_id)
    owed = state(row).amount_due if row.status == InvoiceStatus.OPEN.value else 0
    if owed <= 0:
        paid = row.status == InvoiceStatus.PAID.value
        r.status = (dunning.RetryStatus.PAID if paid else dunning.RetryStatus.CANCELLED).value
        r.next_attempt_time, r.update_time = None, when
        uow.retries.save(r)
        return None
    if method is None and row.payment_method_id:
        method = uow.payment_methods.get(row.payment_method_id)
    usable = method is not None and not method.removed
    how = Collection.CHARGE if usable else Collection.UNAVAILABLE
    key = f"retry:{row.invoice_id}:{r.attempts}" + (f":{method.payment_method_id}" if method else "")
    outcome = collect(gateway, how, method, owed, row.currency, key) if usable else payment_outcome(how)
    uow.payments.add(payment_row(row.invoice_id, outcome, owed, row.currency, method, when))
    if outcome.settles:
        if method is not None and method.payment_method_id != row.payment_method_id:
            row.payment_method_id, row.payment_method_type = method.payment_method_id, method.type
        mark_paid(uow, row, owed, when)  # also ends the retries
        return PaymentStatus.SUCCEEDED
    plan = _declined(uow, r, outcome.decline_reason, when)
    row.decline_reason = outcome.decline_reason
    uow.invoices.save(row)
    events.payment_failed(uow, row, outcome.decline_reason, plan)
    return PaymentStatus.DECLINED
