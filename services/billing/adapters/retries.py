"""The payment-retry table and its repository (rules §5: dunning).

One row per invoice whose renewal or installment charge was declined: how many attempts were declined,
when the next one is due, and why the last one failed. The sweep claims due rows with SKIP LOCKED
(PostgreSQL) so replicas share them; each attempt's charge carries the key `retry:<invoice>:<attempt>`,
so a repeated attempt is the same charge at the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, select

from services.billing.adapters.tables import BillingModel, _time
from services.billing.domain.dunning import RetryStatus
from shared.db import UnitOfWork


class PaymentRetryRow(BillingModel, table=True):
    __tablename__ = "payment_retries"
    __table_args__ = (Index("ix_payment_retries_status_next", "status", "next_attempt_time"),)

    invoice_id: str = Field(primary_key=True, max_length=80)
    account_id: str = Field(index=True, max_length=80)
    status: str
    attempts: int = 1  # declined attempts so far, the first charge included
    first_decline_time: datetime = _time()
    next_attempt_time: datetime | None = _time(nullable=True)
    last_reason: str = ""
    update_time: datetime = _time()


class PaymentRetries:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    def get(self, invoice_id: str, *, lock: bool = False) -> PaymentRetryRow | None:
        stmt = select(PaymentRetryRow).where(PaymentRetryRow.invoice_id == invoice_id)
        if lock:
            stmt = self.uow.for_update(stmt, skip_locked=False)
        return self.session.scalars(stmt).first()

    def save(self, row: PaymentRetryRow) -> None:
        self.session.add(row)
        self.session.flush()

    def claim_due(self, as_of: datetime, seen: set[str], limit: int) -> Sequence[PaymentRetryRow]:
        """Scheduled retries due by `as_of`, not in `seen`, earliest first (SKIP LOCKED on PostgreSQL)."""
        stmt = (
            select(PaymentRetryRow)
            .where(
                PaymentRetryRow.status == RetryStatus.SCHEDULED.value,
                PaymentRetryRow.next_attempt_time <= as_of,  # type: ignore[operator]
                PaymentRetryRow.invoice_id.not_in(seen) if seen else True,  # type: ignore[attr-defined]
            )
            .order_by(PaymentRetryRow.next_attempt_time, PaymentRetryRow.invoice_id)
            .limit(limit)
        )
        return self.session.scalars(self.uow.for_update(stmt)).all()

    def open_of_account(self, account_id: str) -> Sequence[PaymentRetryRow]:
        """The account's invoices still in dunning (scheduled or stopped), locked for a retry."""
        stmt = (
            select(PaymentRetryRow)
            .where(
                PaymentRetryRow.account_id == account_id,
                PaymentRetryRow.status.in_(  # type: ignore[attr-defined]
                    [RetryStatus.SCHEDULED.value, RetryStatus.STOPPED.value]
                ),
            )
            .order_by(PaymentRetryRow.first_decline_time, PaymentRetryRow.invoice_id)
        )
        return self.session.scalars(self.uow.for_update(stmt, skip_locked=False)).all()

    def next_attempt_after(self, as_of: datetime) -> datetime | None:
        stmt = select(PaymentRetryRow.next_attempt_time).where(
            PaymentRetryRow.status == RetryStatus.SCHEDULED.value,
            PaymentRetryRow.next_attempt_time > as_of,  # type: ignore[operator]
        )
        stmt = stmt.order_by(PaymentRetryRow.next_attempt_time).limit(1)
        return self.session.scalars(stmt).first()
