"""An in-memory BillingUnitOfWork: the same repositories (same methods) over dicts, so handlers run
without a server or a database. Rows are the service's own row classes, kept in memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

from services.billing.adapters.credit_ledger import CreditEntryRow
from services.billing.adapters.retries import PaymentRetryRow
from services.billing.adapters.tables import (
    AttachmentRow,
    CreditNoteRow,
    InstallmentRow,
    InvoiceLineRow,
    InvoiceRow,
    PayerRow,
    PaymentMethodRow,
    PaymentRow,
    PendingDetailsRow,
    ProfileRow,
)
from services.billing.domain.dunning import RetryStatus
from services.billing.domain.gateway import SandboxGateway
from services.billing.domain.model import InstallmentStatus, InvoiceStatus, MethodType
from services.billing.domain.numbering import format_number
from shared.auth.policy import ACCOUNT_ROLES, PAYER
from shared.clock import TestClock
from shared.errors import NotFound

START = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)


def _norm(email: str) -> str:
    return (email or "").strip().lower()


class _Store:
    """Everything the fake database holds."""

    def __init__(self) -> None:
        self.profiles: dict[str, ProfileRow] = {}
        self.methods: dict[str, PaymentMethodRow] = {}
        self.payers: dict[tuple[str, str], PayerRow] = {}
        self.invoices: dict[str, InvoiceRow] = {}
        self.lines: list[InvoiceLineRow] = []
        self.payments: list[PaymentRow] = []
        self.installments: list[InstallmentRow] = []
        self.credit_notes: list[CreditNoteRow] = []
        self.attachments: dict[str, AttachmentRow] = {}
        self.pending: dict[str, PendingDetailsRow] = {}
        self.members: set[tuple[str, str, str]] = set()
        self.counters: dict[tuple[str, int], int] = {}
        self.events: list[tuple[str, object]] = []
        self.retries: dict[str, PaymentRetryRow] = {}
        self.credit_entries: list[CreditEntryRow] = []


class _Repo:
    def __init__(self, uow: FakeBillingUnitOfWork) -> None:
        self.uow = uow
        self.s = uow.store


class Profiles(_Repo):
    def get(self, account_id: str) -> ProfileRow | None:
        return self.s.profiles.get(account_id) if account_id else None

    def require(self, account_id: str) -> ProfileRow:
        row = self.get(account_id)
        if row is None:
            raise NotFound(f"account {account_id} has no billing profile", reason="BILLING_PROFILE_NOT_FOUND")
        return row

    def save(self, row: ProfileRow) -> None:
        self.s.profiles[row.account_id] = row


class PaymentMethods(_Repo):
    def get(self, payment_method_id: str) -> PaymentMethodRow | None:
        return self.s.methods.get(payment_method_id) if payment_method_id else None

    def require(self, payment_method_id: str) -> PaymentMethodRow:
        row = self.get(payment_method_id)
        if row is None:
            raise NotFound(f"no payment method {payment_method_id!r}", reason="PAYMENT_METHOD_NOT_FOUND")
        return row

    def of_account(self, account_id: str) -> list[PaymentMethodRow]:
        rows = [m for m in self.s.methods.values() if m.account_id == account_id and not m.removed]
        return sorted(rows, key=lambda m: (m.create_time, m.payment_method_id))

    def save(self, row: PaymentMethodRow) -> None:
        self.s.methods[row.payment_method_id] = row


class Payers(_Repo):
    def lock_account(self, account_id: str) -> None:
        pass

    def of_account(self, account_id: str) -> list[PayerRow]:
        rows = [p for (a, _), p in self.s.payers.items() if a == account_id]
        return sorted(rows, key=lambda p: (p.create_time, p.email))

    def get(self, account_id: str, email: str) -> PayerRow | None:
        return self.s.payers.get((account_id, email))

    def add(self, row: PayerRow) -> None:
        self.s.payers[(row.account_id, row.email)] = row

    def remove(self, row: PayerRow) -> None:
        del self.s.payers[(row.account_id, row.email)]


class Invoices(_Repo):
    def get(self, invoice_id: str) -> InvoiceRow:
        row = self.s.invoices.get(invoice_id) if invoice_id else None
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}", reason="INVOICE_NOT_FOUND")
        return row

    lock = get

    def by_request(self, request_id: str) -> InvoiceRow | None:
        return next((i for i in self.s.invoices.values() if i.request_id == request_id), None)

    def lines(self, invoice_id: str) -> list[InvoiceLineRow]:
        return sorted((ln for ln in self.s.lines if ln.invoice_id == invoice_id), key=lambda ln: ln.position)

    def add_issued(self, row: InvoiceRow, lines: list[InvoiceLineRow]) -> None:
        self.s.lines.extend(lines)
        self.save(row)

    def save(self, row: InvoiceRow) -> None:
        self.s.invoices[row.invoice_id] = row

    def invoice_paid_subscriptions(self, account_id: str) -> set[str]:
        return {
            i.subscription_id or "(none)"
            for i in self.s.invoices.values()
            if i.account_id == account_id
            and i.payment_method_type == MethodType.INVOICE.value
            and i.status != InvoiceStatus.VOID.value
        }

    def page(
        self, account_id: str, status: str, subscription_id: str, offset: int, size: int
    ) -> tuple[list[InvoiceRow], bool]:
        rows = [
            i
            for i in self.of_account(account_id)
            if (not status or i.status == status)
            and (not subscription_id or i.subscription_id == subscription_id)
        ]
        rows.sort(key=lambda i: (i.issue_time, i.invoice_number), reverse=True)
        window = rows[offset : offset + size + 1]
        return window[:size], len(window) > size

    def of_account(self, account_id: str) -> list[InvoiceRow]:
        return [i for i in self.s.invoices.values() if i.account_id == account_id]

    def latest_currency(self, account_id: str) -> str | None:
        rows = sorted(self.of_account(account_id), key=lambda i: i.issue_time, reverse=True)
        return rows[0].currency if rows else None

    def claim_open_due(self, horizon: date, seen: set[str], limit: int) -> list[InvoiceRow]:
        rows = [
            i
            for i in self.s.invoices.values()
            if i.status == InvoiceStatus.OPEN.value
            and i.overdue_time is None
            and i.due_date <= horizon
            and i.invoice_id not in seen
        ]
        return sorted(rows, key=lambda i: (i.due_date, i.invoice_id))[:limit]

    def coming_due_dates(self, since: date, limit: int) -> list[tuple[date, str]]:
        pairs = {
            (i.due_date, i.time_zone)
            for i in self.s.invoices.values()
            if i.status == InvoiceStatus.OPEN.value and i.overdue_time is None and i.due_date >= since
        }
        return sorted(pairs)[:limit]

    def next_number(self, series: str, year: int) -> str:
        n = self.s.counters.get((series, year), 0) + 1
        self.s.counters[(series, year)] = n
        return format_number(series, year, n)


class Payments(_Repo):
    def of_invoice(self, invoice_id: str) -> list[PaymentRow]:
        rows = [p for p in self.s.payments if p.invoice_id == invoice_id]
        return sorted(rows, key=lambda p: (p.create_time, p.payment_id))

    def last(self, invoice_id: str) -> PaymentRow | None:
        rows = [p for p in self.s.payments if p.invoice_id == invoice_id]
        return max(rows, key=lambda p: (p.create_time, p.payment_id), default=None)

    def succeeded_charges(self, invoice_id: str) -> list[PaymentRow]:
        return [
            p
            for p in self.s.payments
            if p.invoice_id == invoice_id and p.status == "succeeded" and p.charge_id
        ]

    def add(self, row: PaymentRow) -> None:
        self.s.payments.append(row)


class Installments(_Repo):
    def of_subscription(self, subscription_id: str) -> list[InstallmentRow]:
        rows = [i for i in self.s.installments if i.subscription_id == subscription_id]
        return sorted(rows, key=lambda i: (i.term_start_date, i.sequence))

    def of_invoice(self, invoice_id: str) -> InstallmentRow | None:
        return next((i for i in self.s.installments if i.invoice_id == invoice_id), None)

    def add_all(self, rows: list[InstallmentRow]) -> None:
        self.s.installments.extend(rows)

    def save(self, row: InstallmentRow) -> None:
        if row not in self.s.installments:
            self.s.installments.append(row)

    def lock_scheduled(self, subscription_id: str) -> list[InstallmentRow]:
        return [
            i
            for i in self.s.installments
            if i.subscription_id == subscription_id and i.status == InstallmentStatus.SCHEDULED.value
        ]

    def coming_due_dates(self, since: date, limit: int) -> list[tuple[date, str]]:
        pairs = {
            (i.due_date, i.time_zone)
            for i in self.s.installments
            if i.status == InstallmentStatus.SCHEDULED.value and i.due_date >= since
        }
        return sorted(pairs)[:limit]

    def claim_next_due(self, horizon: date, skip: set[str]) -> InstallmentRow | None:
        rows = [
            i
            for i in self.s.installments
            if i.status == InstallmentStatus.SCHEDULED.value
            and i.due_date <= horizon
            and i.installment_id not in skip
        ]
        return min(rows, key=lambda i: (i.due_date, i.installment_id), default=None)


class CreditNotes(_Repo):
    def page(self, account_id: str, offset: int, size: int) -> tuple[list[CreditNoteRow], bool]:
        rows = sorted(
            self.of_account(account_id), key=lambda n: (n.issue_time, n.credit_note_number), reverse=True
        )
        window = rows[offset : offset + size + 1]
        return window[:size], len(window) > size

    def of_account(self, account_id: str) -> list[CreditNoteRow]:
        return [n for n in self.s.credit_notes if n.account_id == account_id]

    def of_invoice(self, invoice_id: str) -> list[CreditNoteRow]:
        return [n for n in self.s.credit_notes if n.invoice_id == invoice_id]

    def add(self, row: CreditNoteRow) -> None:
        self.s.credit_notes.append(row)


class AccountCredit(_Repo):
    """The ledger of account credit; its unique key (kind, credit note, invoice) as the table's."""

    def lock(self, account_id: str, currency: str) -> None:
        self.uow.lock_key(f"account-credit:{account_id}:{currency}")

    def entries(self, account_id: str, currency: str) -> list[CreditEntryRow]:
        return [e for e in self.s.credit_entries if (e.account_id, e.currency) == (account_id, currency)]

    def of_account(self, account_id: str) -> list[CreditEntryRow]:
        return [e for e in self.s.credit_entries if e.account_id == account_id]

    def of_invoice(self, invoice_id: str) -> list[CreditEntryRow]:
        return [e for e in self.s.credit_entries if e.invoice_id == invoice_id and e.kind != "deposit"]

    def add(self, rows: list[CreditEntryRow]) -> None:
        for r in rows:
            key = (r.kind, r.credit_note_id, r.invoice_id)
            if any((e.kind, e.credit_note_id, e.invoice_id) == key for e in self.s.credit_entries):
                raise AssertionError(f"uq_account_credit_entry violated by {key}")
            r.id = len(self.s.credit_entries) + 1
            self.s.credit_entries.append(r)


class Attachments(_Repo):
    def _sorted(self, rows: list[AttachmentRow]) -> list[AttachmentRow]:
        return sorted(rows, key=lambda a: (a.create_time, a.attachment_id))

    def of_invoice(self, invoice_id: str) -> list[AttachmentRow]:
        return self._sorted([a for a in self.s.attachments.values() if a.invoice_id == invoice_id])

    def pending(self, subscription_id: str) -> list[AttachmentRow]:
        return self._sorted(
            [
                a
                for a in self.s.attachments.values()
                if a.subscription_id == subscription_id and a.invoice_id == ""
            ]
        )

    def remove(self, row: AttachmentRow) -> None:
        del self.s.attachments[row.attachment_id]

    def put(self, row: AttachmentRow) -> None:
        self.s.attachments[row.attachment_id] = row


class PendingDetails(_Repo):
    def get(self, subscription_id: str) -> PendingDetailsRow | None:
        return self.s.pending.get(subscription_id) if subscription_id else None

    def save(self, row: PendingDetailsRow) -> None:
        self.s.pending[row.subscription_id] = row

    def remove(self, row: PendingDetailsRow) -> None:
        del self.s.pending[row.subscription_id]


class Members(_Repo):
    def roles(self, account_id: str, email: str) -> frozenset[str]:
        e = _norm(email)
        found = {r for a, m, r in self.s.members if a == account_id and m == e and r != PAYER}
        if (account_id, e) in self.s.payers:
            found.add(PAYER)
        return frozenset(found)

    def known(self, account_id: str) -> bool:
        return (
            any(a == account_id for a, _, _ in self.s.members)
            or any(a == account_id for a, _ in self.s.payers)
            or bool((p := self.s.profiles.get(account_id)) and p.buyer_email)
            or any(m.account_id == account_id for m in self.s.methods.values())
            or any(i.account_id == account_id for i in self.s.invoices.values())
        )

    def buyer(self, account_id: str) -> str:
        holders = sorted(m for a, m, r in self.s.members if a == account_id and r == "BUYER")
        return holders[0] if holders else ""

    def grant(self, account_id: str, email: str, role: str) -> None:
        if role not in ACCOUNT_ROLES:
            raise ValueError(f"not an account role: {role}")
        self.s.members.add((account_id, _norm(email), role))

    def apply_role_changed(self, change) -> None:
        from tenure.common.v1 import common_pb2

        role = common_pb2.Role.Name(change.role).removeprefix("ROLE_")
        if role not in ACCOUNT_ROLES:
            return
        key = (change.account_id, _norm(change.email), role)
        if change.granted:
            self.s.members.add(key)
        else:
            self.s.members.discard(key)

    def account_of_invoice(self, invoice_id: str) -> str | None:
        row = self.s.invoices.get(invoice_id)
        return row.account_id if row else None

    def account_of_subscription(self, subscription_id: str) -> str | None:
        for i in self.s.invoices.values():
            if i.subscription_id == subscription_id:
                return i.account_id
        return next((i.account_id for i in self.s.installments if i.subscription_id == subscription_id), None)


class Retries(_Repo):
    def get(self, invoice_id: str, *, lock: bool = False) -> PaymentRetryRow | None:
        return self.s.retries.get(invoice_id)

    def save(self, row: PaymentRetryRow) -> None:
        self.s.retries[row.invoice_id] = row

    def claim_due(self, as_of: datetime, seen: set[str], limit: int) -> list[PaymentRetryRow]:
        rows = [
            r
            for r in self.s.retries.values()
            if r.status == RetryStatus.SCHEDULED.value
            and r.next_attempt_time is not None
            and r.next_attempt_time <= as_of
            and r.invoice_id not in seen
        ]
        return sorted(rows, key=lambda r: (r.next_attempt_time, r.invoice_id))[:limit]

    def open_of_account(self, account_id: str) -> list[PaymentRetryRow]:
        rows = [
            r
            for r in self.s.retries.values()
            if r.account_id == account_id
            and r.status in (RetryStatus.SCHEDULED.value, RetryStatus.STOPPED.value)
        ]
        return sorted(rows, key=lambda r: (r.first_decline_time, r.invoice_id))

    def next_attempt_after(self, as_of: datetime) -> datetime | None:
        times = [
            r.next_attempt_time
            for r in self.s.retries.values()
            if r.status == RetryStatus.SCHEDULED.value
            and r.next_attempt_time is not None
            and r.next_attempt_time > as_of
        ]
        return min(times, default=None)


class FakeBillingUnitOfWork:
    """What handlers use of `BillingUnitOfWork`: the clock, locks, events and the repositories."""

    def __init__(self, store: _Store, clock: TestClock) -> None:
        self.store = store
        self.clock = clock
        self.published = 0
        self.profiles = Profiles(self)
        self.payment_methods = PaymentMethods(self)
        self.payers = Payers(self)
        self.invoices = Invoices(self)
        self.payments = Payments(self)
        self.installments = Installments(self)
        self.credit_notes = CreditNotes(self)
        self.attachments = Attachments(self)
        self.pending_details = PendingDetails(self)
        self.members = Members(self)
        self.retries = Retries(self)
        self.account_credit = AccountCredit(self)

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def lock_key(self, key: str) -> None:
        pass

    def publish(self, event_type: str, *, account_id: str = "", subscription_id: str = "", **payload) -> str:
        ((_, message),) = payload.items()
        self.store.events.append((event_type, message))
        self.published += 1
        return f"ev-{len(self.store.events)}"

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        yield  # the fake keeps no undo log: a test that needs a rollback uses the service tests


class FakeDatabase:
    """`db.unit_of_work()` / `db.reading()` over one in-memory store (a unit of work never rolls back)."""

    def __init__(self, clock: TestClock | None = None) -> None:
        self.clock = clock or TestClock(START)
        self.store = _Store()

    @contextmanager
    def unit_of_work(self) -> Iterator[FakeBillingUnitOfWork]:
        yield FakeBillingUnitOfWork(self.store, self.clock)

    reading = unit_of_work

    @property
    def events(self) -> list[str]:
        return [t for t, _ in self.store.events]


class CountingGateway(SandboxGateway):
    """The sandbox gateway, counting charges and refunds."""

    def __init__(self) -> None:
        super().__init__()
        self.charges: list[tuple[Decimal, str, str]] = []
        self.refunds: list[tuple[str, Decimal]] = []

    def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str):
        self.charges.append((amount, currency, idempotency_key))
        return super().charge(token, amount, currency, idempotency_key=idempotency_key)

    def refund(self, charge_id: str, amount: Decimal, currency: str, *, idempotency_key: str):
        self.refunds.append((charge_id, amount))
        return super().refund(charge_id, amount, currency, idempotency_key=idempotency_key)
