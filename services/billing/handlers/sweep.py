"""The billing sweep (installment invoices that came due, overdue marks) and installment commands."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.billing import events
from services.billing.adapters.tables import InstallmentRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain import installments as inst
from services.billing.domain.gateway import PaymentGateway
from services.billing.domain.invoice import local_date, local_midnight, next_local_midnight, price_lines
from services.billing.domain.model import InstallmentStatus, InvoiceKind, InvoiceStatus, PaymentStatus
from services.billing.domain.payment import installment_status_after
from services.billing.domain.tax import decide_tax
from services.billing.handlers import dunning
from services.billing.handlers.common import Policy, require, state, tax_status
from services.billing.handlers.invoices import issue
from shared.db import Database
from shared.errors import InvalidInput, RuleViolation
from shared.telemetry.metrics import record_sweep

log = logging.getLogger("tenure.billing")


@dataclass
class SweepResult:
    issued: int = 0
    overdue: int = 0
    paid: int = 0
    payment_failed: int = 0
    retried: int = 0  # payment retries attempted (dunning)
    retries_paid: int = 0  # of which paid the invoice
    next_due: datetime | None = None  # the next instant at which there is something to do


SWEEP_BATCH = 100
NEXT_DUE_LOOKAHEAD = 200  # (date, zone) pairs: the few days around `as_of` in every zone in use


def sweep(db: Database, gateway: PaymentGateway, policy: Policy, as_of: datetime) -> SweepResult:
    """Issue the installment invoices that have come due, make the payment retries that are due, and mark
    open invoices overdue at their due date.

    Installments are claimed one at a time with FOR UPDATE SKIP LOCKED (PostgreSQL), so replicas share
    the work; the unique installment key on invoices means a raced or repeated sweep never issues one
    twice. Each installment is its own transaction, so one failure does not hold back the others.
    """
    result, started = SweepResult(), time.perf_counter()
    # A date bound wide enough for every zone; the exact local midnight is checked per row.
    horizon = (as_of + timedelta(days=2)).date()
    skip: set[str] = set()
    while True:
        with db.unit_of_work() as uow:
            ins = uow.installments.claim_next_due(horizon, skip)
            if ins is None:
                break
            if local_midnight(ins.due_date, ins.time_zone) > as_of:
                skip.add(ins.installment_id)
                continue
            try:
                with uow.savepoint():
                    outcome = issue_installment(uow, gateway, policy, ins, as_of)
            except Exception:
                log.exception(
                    "installment %s could not be invoiced; the next sweep retries", ins.installment_id
                )
                skip.add(ins.installment_id)
                continue
            result.issued += 1
            if outcome == PaymentStatus.SUCCEEDED:
                result.paid += 1
            elif outcome == PaymentStatus.DECLINED:
                result.payment_failed += 1
    result.retried, result.retries_paid = dunning.retry_due(db, gateway, as_of)
    done: set[str] = set()
    while True:
        with db.unit_of_work() as uow:
            rows = uow.invoices.claim_open_due(horizon, done, SWEEP_BATCH)
            if not rows:
                break
            for row in rows:
                done.add(row.invoice_id)
                if state(row).is_overdue_at(as_of, row.due_date, row.time_zone):
                    row.overdue_time = as_of
                    uow.invoices.save(row)
                    events.invoice_overdue(uow, row)
                    result.overdue += 1
    result.next_due = next_due(db, as_of)
    record_sweep(db, "billing", time.perf_counter() - started, vars(result))
    return result


def next_due(db: Database, as_of: datetime) -> datetime | None:
    """The next instant after `as_of` at which an installment comes due, an invoice becomes overdue or a
    payment retry is due."""
    since = (as_of - timedelta(days=2)).date()  # every zone's local midnights after `as_of` are on later days
    with db.reading() as uow:
        days = [
            *uow.installments.coming_due_dates(since, NEXT_DUE_LOOKAHEAD),
            *uow.invoices.coming_due_dates(since, NEXT_DUE_LOOKAHEAD),
        ]
        retry = uow.retries.next_attempt_after(as_of)
    midnight = next_local_midnight(days, as_of)
    return min((t for t in (midnight, retry) if t is not None), default=None)


def issue_installment(
    uow: BillingUnitOfWork, gateway: PaymentGateway, policy: Policy, ins: InstallmentRow, as_of: datetime
) -> PaymentStatus:
    """Issue (and charge) the invoice of one installment that came due."""
    key = inst.installment_key(ins.subscription_id, ins.term_start_date, ins.sequence)
    prof = uow.profiles.get(ins.account_id)
    if prof is None:
        raise RuleViolation(
            f"account {ins.account_id} has no billing profile", reason="BILLING_PROFILE_NOT_FOUND"
        )
    method = uow.payment_methods.get(ins.payment_method_id) if ins.payment_method_id else None
    issue_day = local_date(as_of, ins.time_zone)
    decision = decide_tax(tax_status(prof), issue_day)
    stored = [inst.share_from_json(d) for d in json.loads(ins.lines_json)]
    lines = price_lines(inst.installment_inputs(stored, ins.sequence, ins.count), ins.currency, decision)
    row, payment = issue(
        uow,
        gateway,
        policy,
        request_id=None,
        installment_key=key,
        account_id=ins.account_id,
        subscription_id=ins.subscription_id,
        order_number=ins.order_number,
        kind=InvoiceKind.INSTALLMENT,
        currency=ins.currency,
        lines=lines,
        decision=decision,
        prof=prof,
        method=method,
        tz=ins.time_zone,
        installment_sequence=ins.sequence,
        idempotency_key=f"installment:{key}",
        issue_time=as_of,
    )
    ins.invoice_id = row.invoice_id
    ins.status = installment_status_after(row.status == InvoiceStatus.PAID.value).value
    uow.installments.save(ins)
    return PaymentStatus(payment.status)


def list_installments(db: Database, subscription_id: str) -> Sequence[InstallmentRow]:
    if not subscription_id:
        raise InvalidInput("subscription_id is required", field="subscription_id")
    with db.reading() as uow:
        return uow.installments.of_subscription(subscription_id)


def cancel_installments(uow: BillingUnitOfWork, subscription_id: str) -> int:
    rows = uow.installments.lock_scheduled(require(subscription_id, "subscription_id"))
    for r in rows:
        r.status = InstallmentStatus.CANCELLED.value
        uow.installments.save(r)
    return len(rows)
