"""A fake unit of work for the subscription handlers: in-memory repositories with the methods of
`adapters/unit_of_work.SubscriptionUnitOfWork`, a fake database that hands it out, and a fake billing.

Handlers run against these without a server or a database: `FakeDatabase.unit_of_work()` commits what the
block wrote only when it ends without an exception (so a refused order leaves nothing behind), and every
event published is kept in `db.events` as (event_type, subscription_id, payload message)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.subscription.adapters.peers import IssuedCredit, IssuedInvoice, ScheduledInstallment, Tax
from services.subscription.adapters.repository import PaidOrder, Renewal
from services.subscription.booking import Peers
from services.subscription.domain import lifecycle
from services.subscription.domain.catalog import Catalog, ExchangeRate, demo_catalog
from services.subscription.domain.model import OrderLine, PaymentMethodType, Stage, Transition
from services.subscription.domain.subscription import Subscription, lifecycle_state
from shared.auth.policy import BUYER, PRIMARY_ADMIN
from shared.clock import TestClock
from shared.errors import InvalidInput, NotFound
from shared.money import round_money


@dataclass
class OrderRecord:
    order_number: str
    subscription_id: str
    account_id: str
    kind: str
    invoice_id: str
    currency: str
    subtotal: Decimal
    total: Decimal
    order_date: date
    period_start_date: date
    lines: list[OrderLine]
    request_id: str
    price_book_version: int = 0


@dataclass
class Store:
    """What the fake database holds."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    plans: dict[str, tuple[datetime | None, int]] = field(default_factory=dict)
    orders: list[OrderRecord] = field(default_factory=list)
    transitions: list[tuple[str, Transition, str | None]] = field(default_factory=list)
    renewals: dict[tuple[str, date], Renewal] = field(default_factory=dict)
    reminders: list[tuple[str, date, int]] = field(default_factory=list)
    members: set[tuple[str, str, str]] = field(default_factory=set)
    catalog: Catalog = field(default_factory=demo_catalog)
    events: list[tuple[str, str, Any]] = field(default_factory=list)
    quotes: dict[tuple[str, int], Any] = field(default_factory=dict)  # (number, version) -> Quote


class FakeQuotes:
    """The partner quotes the lifecycle sweep reads and expires."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _issued(self) -> list[Any]:
        issued = [q for q in self.store.quotes.values() if q.status.value == "ISSUED"]
        return sorted(issued, key=lambda q: (q.valid_until, q.quote_number, q.version))

    def issued_until(self, last_valid_day: date, limit: int = 500) -> list[Any]:
        return [q for q in self._issued() if q.valid_until <= last_valid_day][:limit]

    def issued_from(self, first_valid_day: date, limit: int = 50) -> list[Any]:
        return [q for q in self._issued() if q.valid_until >= first_valid_day][:limit]

    def get(self, quote_number: str, version: int = 0, *, lock: bool = False) -> Any:
        found = [q for (n, v), q in self.store.quotes.items() if n == quote_number and version in (0, v)]
        if not found:
            raise NotFound(f"quote {quote_number} not found", reason="QUOTE_NOT_FOUND")
        return max(found, key=lambda q: q.version)

    def save(self, q: Any, now: datetime) -> Any:
        self.store.quotes[(q.quote_number, q.version)] = q
        return q

    add = save


class FakeSubscriptions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, subscription_id: str, *, lock: bool = False) -> Subscription:
        if not subscription_id:
            raise InvalidInput("subscription_id is required", field="subscription_id")
        sub = self.store.subscriptions.get(subscription_id)
        if sub is None:
            raise NotFound(
                f"subscription {subscription_id!r} does not exist", reason="SUBSCRIPTION_NOT_FOUND"
            )
        return copy.deepcopy(sub)

    def add(self, sub: Subscription, now: datetime) -> Subscription:
        saved = replace(sub, create_time=sub.create_time or now, version=1)
        self.store.subscriptions[sub.subscription_id] = saved
        self.store.plans[sub.subscription_id] = lifecycle.plan(lifecycle_state(saved))
        return copy.deepcopy(saved)

    def save(
        self, sub: Subscription, now: datetime, *, plan: tuple[datetime | None, int] | None = None
    ) -> Subscription:
        if sub.subscription_id not in self.store.subscriptions:
            raise KeyError(f"subscription {sub.subscription_id} was not loaded in this unit of work")
        saved = replace(sub, version=self.store.subscriptions[sub.subscription_id].version + 1)
        self.store.subscriptions[sub.subscription_id] = saved
        self.store.plans[sub.subscription_id] = plan or lifecycle.plan(lifecycle_state(saved))
        return copy.deepcopy(saved)

    def list(
        self,
        account_id: str | list[str] | None,
        stage: Stage | None,
        offset: int,
        limit: int,
        *,
        email: str = "",
        email_accounts: Sequence[str] = (),
        order_number: str = "",
    ) -> list[Subscription]:
        accounts = [account_id] if isinstance(account_id, str) else account_id
        made = {o.subscription_id for o in self.store.orders if o.order_number == order_number}
        subs = sorted(
            (
                s
                for s in self.store.subscriptions.values()
                if (accounts is None or s.account_id in accounts)
                and (stage is None or s.stage is stage)
                and (not email or s.buyer_email.lower() == email.lower() or s.account_id in email_accounts)
                and (not order_number or s.subscription_id in made)
            ),
            key=lambda s: (s.create_time, s.subscription_id),
        )
        return [copy.deepcopy(s) for s in subs[offset : offset + limit]]

    def of_account(self, account_id: str) -> list[Subscription]:
        return self.list(account_id, None, 0, 10_000)

    def account_has_invoice_subscription(self, account_id: str, *, other_than: str) -> bool:
        return any(
            s.account_id == account_id
            and s.subscription_id != other_than
            and s.payment_method_type is PaymentMethodType.INVOICE
            and s.stage is not Stage.CANCELLED
            for s in self.store.subscriptions.values()
        )

    def add_order(
        self,
        *,
        order_number: str,
        sub: Subscription,
        kind: str,
        invoice_id: str,
        subtotal: Decimal,
        total: Decimal,
        order_date: date,
        period_start_date: date,
        lines: list[OrderLine],
        request_id: str,
        now: datetime,
        price_book_version: int = 0,
    ) -> None:
        self.store.orders.append(
            OrderRecord(
                order_number,
                sub.subscription_id,
                sub.account_id,
                kind,
                invoice_id,
                sub.currency,
                subtotal,
                total,
                order_date,
                period_start_date,
                list(lines),
                request_id,
                price_book_version,
            )
        )

    def alignment_orders(self, sub: Subscription) -> list[PaidOrder]:
        return [
            PaidOrder(o.order_number, o.invoice_id, o.total, list(o.lines))
            for o in self.store.orders
            if o.subscription_id == sub.subscription_id
            and o.kind == "align"
            and o.period_start_date >= sub.current_period_start_date
        ]

    def invoices_of_current_term(self, sub: Subscription) -> list[str]:
        return [
            o.invoice_id
            for o in self.store.orders
            if o.subscription_id == sub.subscription_id
            and o.period_start_date >= sub.current_period_start_date
            and o.invoice_id
        ]

    def add_transitions(
        self, subscription_id: str, transitions: list[Transition], *, period_key: str | None = None
    ) -> None:
        for t in transitions:
            self.store.transitions.append(
                (subscription_id, t, period_key if t.to_stage is not Stage.ACTIVE else None)
            )

    def transitions(self, subscription_id: str) -> list[Transition]:
        return [t for sid, t, _ in self.store.transitions if sid == subscription_id]

    def renewal(self, subscription_id: str, period_start_date: date) -> Renewal | None:
        return self.store.renewals.get((subscription_id, period_start_date))

    def renewal_by_invoice(self, invoice_id: str) -> Renewal | None:
        return next((r for r in self.store.renewals.values() if r.invoice_id == invoice_id), None)

    def set_renewal_status(self, renewal: Renewal, status: str, now: datetime) -> Renewal:
        key = (renewal.subscription_id, renewal.period_start_date)
        self.store.renewals[key] = replace(self.store.renewals[key], status=status)
        return self.store.renewals[key]

    def record_renewal(
        self,
        *,
        subscription_id: str,
        period_start_date: date,
        invoice_id: str,
        order_number: str,
        status: str,
        now: datetime,
    ) -> Renewal:
        key = (subscription_id, period_start_date)
        done = self.store.renewals.get(key)
        if done is not None and done.status != "DECLINED":
            raise AssertionError(f"the term from {period_start_date} of {subscription_id} was renewed twice")
        self.store.renewals[key] = Renewal(
            subscription_id, period_start_date, invoice_id, order_number, status
        )
        return self.store.renewals[key]

    def due(self, due_kind: int, as_of: datetime, limit: int) -> list[str]:
        due = sorted(
            (t, sid)
            for sid, (t, kind) in self.store.plans.items()
            if kind == due_kind and t is not None and t <= as_of
        )
        return [sid for _, sid in due[:limit]]

    def claim_due(self, due_kind: int, as_of: datetime, skip: set[str]) -> str | None:
        return next((sid for sid in self.due(due_kind, as_of, 10_000) if sid not in skip), None)

    def next_action_after(self, after: datetime) -> datetime | None:
        return min((t for t, _ in self.store.plans.values() if t is not None and t > after), default=None)

    def add_reminder(self, subscription_id: str, renewal_date: date, days_before: int, now: datetime) -> None:
        self.store.reminders.append((subscription_id, renewal_date, days_before))


class FakeCatalog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def seed(self) -> bool:
        return False

    def load(self) -> Catalog:
        return self.store.catalog

    def version(self) -> int:
        return self.store.catalog.version

    def rate(self, currency: str, group: str, *, lock: bool = False) -> ExchangeRate | None:
        return self.store.catalog.rates.get((currency, group))

    def save_rate(self, rate: ExchangeRate, now: datetime) -> None:
        self.store.catalog.rates[(rate.currency, rate.group)] = rate


class FakeMembers:
    def __init__(self, store: Store) -> None:
        self.store = store

    def open_account(self, account_id: str, buyer_email: str) -> bool:
        if any(a == account_id for a, _, _ in self.store.members):
            return False
        for role in (BUYER, PRIMARY_ADMIN):
            self.store.members.add((account_id, buyer_email.strip().lower(), role))
        return True

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        e = email.strip().lower()
        return frozenset(r for a, m, r in self.store.members if a == account_id and m == e)

    def accounts_of(self, email: str, roles: frozenset[str]) -> list[str]:
        e = email.strip().lower()
        return sorted({a for a, m, r in self.store.members if m == e and r in roles})


class FakeUnitOfWork:
    """The repositories of `SubscriptionUnitOfWork` over a copy of the store, kept on commit."""

    def __init__(self, db: FakeDatabase, store: Store) -> None:
        self.db = db
        self.store = store
        self.subscriptions = FakeSubscriptions(store)
        self.catalog = FakeCatalog(store)
        self.members = FakeMembers(store)
        self.quotes = FakeQuotes(store)
        self.published = 0

    @property
    def now(self) -> datetime:
        return self.db.clock.now()

    def publish(
        self, event_type: str, *, account_id: str = "", subscription_id: str = "", **payload: Any
    ) -> str:
        ((_, message),) = payload.items()
        self.store.events.append((event_type, subscription_id, message))
        self.published += 1
        return f"ev-{len(self.store.events)}"

    def lock_key(self, key: str) -> None:
        pass


class FakeDatabase:
    def __init__(self, now: datetime) -> None:
        self.clock = TestClock(now)
        self.store = Store()
        self.is_postgres = False

    @contextmanager
    def unit_of_work(self) -> Iterator[FakeUnitOfWork]:
        work = copy.deepcopy(self.store)
        yield FakeUnitOfWork(self, work)
        self.store = work  # committed: only when the block raised nothing

    @contextmanager
    def reading(self) -> Iterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self, copy.deepcopy(self.store))

    # what tests look at
    @property
    def events(self) -> list[tuple[str, str, Any]]:
        return self.store.events

    @property
    def orders(self) -> list[OrderRecord]:
        return self.store.orders


@dataclass
class FakeBilling:
    """Billing as the subscription service calls it: invoices are paid at once unless `decline` names
    the payment method ids that are declined; tax is 25 % of the lines. With a `clock`, an order of a
    3-year term is split into installments by billing's own rule (`services.billing.domain.installments`):
    its invoice charges the first, and the others are scheduled (`installments`)."""

    decline: set[str] = field(default_factory=set)
    pm_type: PaymentMethodType = PaymentMethodType.CARD
    invoices: dict[str, tuple[str, list[OrderLine], Decimal]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    clock: Any = None
    scheduled: dict[str, list[ScheduledInstallment]] = field(default_factory=dict)

    def _first_installment(self, kw: dict[str, Any]) -> list[OrderLine] | None:
        """The first installment's share lines when billing splits this order, else None."""
        from services.billing.domain import installments as inst
        from services.billing.domain.model import InstallmentPlan, InvoiceKind
        from services.billing.domain.model import Term as BillingTerm

        sub: Subscription = kw["sub"]
        lines: list[OrderLine] = kw["lines"]
        if self.clock is None or sum((ln.amount for ln in lines), Decimal(0)) <= 0:
            return None
        kind = {"trial_converted": "new"}.get(kw["kind"], kw["kind"])
        issue_day = sub.today(self.clock.now())
        term = BillingTerm(sub.term.value.lower())
        if not inst.uses_installments(InstallmentPlan.AUTO, term, InvoiceKind(kind), issue_day):
            return None
        schedule = inst.schedule([ln.amount for ln in lines], kw["term_start_date"], sub.currency)
        self.scheduled[sub.subscription_id] = [
            ScheduledInstallment(
                s.sequence,
                len(schedule),
                s.due_date,
                s.amount,
                "INVOICED" if s.sequence == 1 else "SCHEDULED",
                "",
            )
            for s in schedule
        ]
        return [replace(ln, amount=a) for ln, a in zip(lines, schedule[0].line_amounts, strict=True)]

    def installments(self, subscription_id: str) -> list[ScheduledInstallment]:
        return list(self.scheduled.get(subscription_id, []))

    def _total(self, lines: list[OrderLine], currency: str) -> Decimal:
        subtotal = sum((ln.amount for ln in lines), Decimal(0))
        return round_money(subtotal * Decimal("1.25"), currency)

    def preview_tax(self, sub: Subscription, lines: list[OrderLine]) -> Tax:
        subtotal = sum((ln.amount for ln in lines), Decimal(0))
        total = self._total(lines, sub.currency)
        return Tax(subtotal, total - subtotal, total)

    def create_invoice(self, **kw: Any) -> IssuedInvoice:
        self.calls.append(("create_invoice", kw))
        sub: Subscription = kw["sub"]
        invoice_id = f"inv-{kw['request_id']}"
        first = self._first_installment(kw)
        total = self._total(first if first is not None else kw["lines"], sub.currency)
        self.invoices[invoice_id] = (sub.subscription_id, kw["lines"], total)
        declined = sub.payment_method_id in self.decline
        return IssuedInvoice(
            invoice_id,
            total,
            "DECLINED" if declined else "SUCCEEDED",
            "card_declined" if declined else "",
            self.pm_type,
        )

    def void_invoice(self, **kw: Any) -> None:
        self.calls.append(("void_invoice", kw))

    def refund_invoice(self, **kw: Any) -> IssuedCredit | None:
        self.calls.append(("refund_invoice", kw))
        _, _, total = self.invoices[kw["invoice_id"]]
        return IssuedCredit(f"cn-{kw['invoice_id']}", total)

    def credit_invoice(self, **kw: Any) -> IssuedCredit | None:
        """Like billing: one credit note per request id, never more than the invoice's total."""
        self.calls.append(("credit_invoice", kw))
        _, _, total = self.invoices[kw["invoice_id"]]
        if kw["amount"] > total:
            raise AssertionError(f"credit of {kw['amount']} exceeds the invoice's {total}")
        return IssuedCredit(f"cn-{kw['request_id']}", kw["amount"])

    def cancel_installments(self, **kw: Any) -> None:
        self.calls.append(("cancel_installments", kw))

    def payment_method_type(self, account_id: str, payment_method_id: str) -> PaymentMethodType:
        return self.pm_type

    def check_payment_method(self, sub: Subscription, payment_method_id: str) -> None:
        self.calls.append(("check_payment_method", {"payment_method_id": payment_method_id}))

    def called(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]


def peers(billing: FakeBilling | None = None) -> Peers:
    return Peers(billing or FakeBilling())  # type: ignore[arg-type]
