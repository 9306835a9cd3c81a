"""Loads and saves subscriptions, orders, transitions and the catalog. No business rules here."""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.subscription.adapters.tables import (
    MEMBERS,
    ExchangeRateRow,
    OrderRow,
    PriceBookVersionRow,
    PriceChangeRow,
    ProductRow,
    ReminderRow,
    RenewalRow,
    SubscriptionRow,
    TransitionRow,
    UsdPriceRow,
)
from services.subscription.codec import event_profile
from services.subscription.domain import lifecycle
from services.subscription.domain.catalog import (
    Catalog,
    CatalogData,
    ExchangeRate,
    Product,
    UsdPrice,
    demo_data,
)
from services.subscription.domain.model import (
    Channel,
    OrderLine,
    PaymentMethodType,
    Plan,
    ProductKind,
    ShutoffPolicy,
    Stage,
    Term,
    Transition,
)
from services.subscription.domain.subscription import Subscription, lifecycle_state
from shared.auth.membership import Members
from shared.auth.policy import BUYER, PRIMARY_ADMIN
from shared.errors import NotFound
from shared.money import round_money

# -- catalog ------------------------------------------------------------------------------------------


def _product_row(p: Product, position: int) -> ProductRow:
    return ProductRow(
        product_code=p.code,
        name=p.name,
        kind=p.kind.value,
        shutoff_policy=p.shutoff_policy.value,
        release_year=p.release_year,
        supported=p.supported,
        full_product=p.full_product,
        contains=",".join(p.contains),
        upgrade_paths=",".join(p.upgrade_paths),
        position=position,
    )


def _price_rows(data: CatalogData, codes: set[str]) -> list[UsdPriceRow]:
    return [
        UsdPriceRow(
            product_code=code,
            plan=plan.value,
            term=term.value,
            list_price=price.list_price,
            renewal_price=price.renewal_price,
        )
        for (code, plan, term), price in data.usd_prices.items()
        if code in codes
    ]


def price_book_version(session: Session) -> int:
    """The newest price-book version (0 before anything was loaded)."""
    return int(session.execute(select(func.max(PriceBookVersionRow.version))).scalar_one() or 0)


def new_version(session: Session, change: str, now: datetime) -> int:
    """Number the change one above the newest version (callers hold the catalog lock, `lock_key`)."""
    version = price_book_version(session) + 1
    session.add(PriceBookVersionRow(version=version, change=change[:400], create_time=now))
    session.flush()
    return version


def seed_catalog(session: Session, now: datetime | None = None, data: CatalogData | None = None) -> bool:
    """Load the demo catalog file (rules §10): all of it when the catalog is empty (first start); later, the
    products it lists that the catalog lacks, with their prices (products already there are the operators'
    and stay as they are). True when it added anything; each load is a new price-book version."""
    data = data or demo_data()
    now = now or datetime.now(UTC)
    have = set(session.execute(select(ProductRow.product_code)).scalars())
    missing = [p for p in data.products if p.code not in have]
    if not missing:
        return False
    start = int(session.execute(select(func.max(ProductRow.position))).scalar_one() or 0) + 1 if have else 0
    for i, p in enumerate(missing):
        session.add(_product_row(p, start + i))
    session.add_all(_price_rows(data, {p.code for p in missing}))
    if not have:
        for r in data.rates:
            session.add(
                ExchangeRateRow(currency=r.currency, channel_group=r.group, rate=r.rate, period=r.period)
            )
    change = (
        "demo catalog loaded" if not have else "demo catalog: added " + ", ".join(p.code for p in missing)
    )
    new_version(session, change, now)
    return True


def load_catalog(session: Session) -> Catalog:
    products = {}
    for row in session.execute(select(ProductRow).order_by(ProductRow.position)).scalars():
        products[row.product_code] = Product(
            code=row.product_code,
            name=row.name,
            kind=ProductKind(row.kind),
            shutoff_policy=ShutoffPolicy(row.shutoff_policy),
            release_year=row.release_year,
            supported=row.supported,
            full_product=row.full_product,
            contains=tuple(c for c in row.contains.split(",") if c),
            upgrade_paths=tuple(c for c in row.upgrade_paths.split(",") if c),
        )
    prices = {
        (row.product_code, Plan(row.plan), Term(row.term)): UsdPrice(
            round_money(row.list_price, "USD"), round_money(row.renewal_price, "USD")
        )
        for row in session.execute(select(UsdPriceRow)).scalars()
    }
    changes: dict[tuple[str, Plan, Term], list[UsdPrice]] = {}
    stmt = select(PriceChangeRow).order_by(PriceChangeRow.effective_date)
    for ch in session.execute(stmt).scalars():
        changes.setdefault((ch.product_code, Plan(ch.plan), Term(ch.term)), []).append(
            UsdPrice(
                round_money(ch.list_price, "USD"), round_money(ch.renewal_price, "USD"), ch.effective_date
            )
        )
    rates = {
        (row.currency, row.channel_group): ExchangeRate(
            row.currency, row.channel_group, Decimal(row.rate).quantize(Decimal("0.000001")), row.period
        )
        for row in session.execute(select(ExchangeRateRow)).scalars()
    }
    return Catalog(
        products,
        prices,
        rates,
        price_changes={k: tuple(v) for k, v in changes.items()},
        version=price_book_version(session),
    )


def rate_row(session: Session, currency: str, group: str, *, lock: bool) -> ExchangeRateRow | None:
    stmt = select(ExchangeRateRow).where(
        ExchangeRateRow.currency == currency, ExchangeRateRow.channel_group == group
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalars().first()


#: The last committed catalog each database's units of work loaded, with its price-book version. Every
#: change of products, prices or exchange rates raises the version in its own transaction, so a unit of
#: work that reads the newest version it can see and finds it here may use the cached catalog (one
#: statement instead of four queries and a few hundred objects per order). Catalogs are only read.
_LOADED: weakref.WeakKeyDictionary[Engine, Catalog] = weakref.WeakKeyDictionary()


class CatalogRepository:
    """The price book of one unit of work: products, USD prices (and their changes from a date), exchange
    rates and the price-book version."""

    def __init__(self, session: Session, *, postgres: bool = False) -> None:
        self.session = session
        self.postgres = postgres
        self.loaded_version: int | None = None  # the version of the catalog this unit of work loaded
        self.changed = False  # this unit of work wrote to the catalog (its view is not yet committed)

    def seed(self, now: datetime | None = None) -> bool:
        """Load the demo catalog file: all of it on first start, later the products it adds."""
        added = seed_catalog(self.session, now)
        self.changed = self.changed or added
        return added

    def load(self) -> Catalog:
        engine = self.session.get_bind()
        assert isinstance(engine, Engine)
        cached = None if self.changed else _LOADED.get(engine)
        if cached is not None and cached.version == price_book_version(self.session):
            catalog = cached
        else:
            catalog = load_catalog(self.session)
            if not self.changed:  # what this unit of work sees is committed: later ones may share it
                _LOADED[engine] = catalog
        if self.loaded_version is None:
            self.loaded_version = catalog.version
        return catalog

    def version(self) -> int:
        """The price-book version the orders of this unit of work were priced from: that of the catalog it
        loaded first, else the newest."""
        return self.loaded_version if self.loaded_version is not None else price_book_version(self.session)

    def add_product(self, p: Product, change: str, now: datetime) -> int:
        self.changed = True
        position = int(self.session.execute(select(func.max(ProductRow.position))).scalar_one() or 0) + 1
        self.session.add(_product_row(p, position))
        return new_version(self.session, change, now)

    def save_product(self, p: Product, change: str, now: datetime) -> int:
        self.changed = True
        row = self.session.get(ProductRow, p.code)
        if row is None:
            raise NotFound(f"product {p.code!r} is not in the catalog", reason="PRODUCT_NOT_FOUND")
        fresh = _product_row(p, row.position)
        for name in ProductRow.model_fields:
            setattr(row, name, getattr(fresh, name))
        self.session.add(row)
        return new_version(self.session, change, now)

    def add_price(self, key: tuple[str, Plan, Term], price: UsdPrice, change: str, now: datetime) -> int:
        assert price.effective_date is not None, "a price change has an effective date"
        self.changed = True
        version = new_version(self.session, change, now)
        code, plan, term = key
        self.session.add(
            PriceChangeRow(
                product_code=code,
                plan=plan.value,
                term=term.value,
                effective_date=price.effective_date,
                list_price=price.list_price,
                renewal_price=price.renewal_price,
                price_book_version=version,
                create_time=now,
            )
        )
        self.session.flush()
        return version

    def rate(self, currency: str, group: str, *, lock: bool = False) -> ExchangeRate | None:
        """One exchange rate; `lock` holds its row until the unit of work ends (PostgreSQL)."""
        row = rate_row(self.session, currency, group, lock=lock and self.postgres)
        return (
            None
            if row is None
            else ExchangeRate(row.currency, row.channel_group, Decimal(row.rate), row.period)
        )

    def save_rate(self, rate: ExchangeRate, now: datetime) -> int:
        """Store a new exchange rate: orders priced with it are priced from a new price-book version."""
        row = rate_row(self.session, rate.currency, rate.group, lock=False)
        if row is None:
            raise KeyError(f"no exchange rate {rate.currency}/{rate.group}")
        self.changed = True
        row.rate = rate.rate
        row.period = rate.period
        row.update_time = now
        self.session.add(row)
        return new_version(self.session, f"exchange rate {rate.currency}/{rate.group}: {rate.rate}", now)


# -- subscriptions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidOrder:
    """An order as recorded: its invoice, its total (tax included) and its lines."""

    order_number: str
    invoice_id: str
    total: Decimal
    lines: list[OrderLine]


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _day(s: str | None) -> date | None:
    return date.fromisoformat(s) if s else None


def _lines_of(row: OrderRow) -> list[OrderLine]:
    """The lines of a recorded order (rows written before lines carried their proration have none)."""
    return [
        OrderLine(
            description=d["description"],
            quantity=int(d["quantity"]),
            unit_price=Decimal(d["unit_price"]),
            currency=row.currency,
            amount=Decimal(d["amount"]),
            period_start_date=date.fromisoformat(d["period_start_date"]),
            period_end_date=date.fromisoformat(d["period_end_date"]),
            subscription_id=row.subscription_id,
            prorated_days=int(d.get("prorated_days", 0)),
            term_days=int(d.get("term_days", 0)),
            term_start_date=_day(d.get("term_start_date")),
            term_end_date=_day(d.get("term_end_date")),
        )
        for d in json.loads(row.lines_json or "[]")
    ]


_DIRECT = {f.name for f in fields(Subscription)} - {
    "plan",
    "term",
    "channel",
    "stage",
    "payment_method_type",
    "shutoff_policy",
    "pending_term",
    "unit_price",
    "access_until",
    "version",
    "included_product_codes",
}


def to_domain(row: SubscriptionRow) -> Subscription:
    kw = {name: getattr(row, name) for name in _DIRECT}
    return Subscription(
        **kw,
        plan=Plan(row.plan),
        term=Term(row.term),
        channel=Channel(row.channel),
        stage=Stage(row.stage),
        payment_method_type=PaymentMethodType(row.payment_method_type) if row.payment_method_type else None,
        shutoff_policy=ShutoffPolicy(row.shutoff_policy),
        pending_term=Term(row.pending_term) if row.pending_term else None,
        unit_price=round_money(row.unit_price, row.currency),
        access_until=row.access_until_time,
        version=row.version,
        included_product_codes=tuple(row.included_products.split()),
    )


def _apply(
    row: SubscriptionRow, sub: Subscription, now: datetime, plan: tuple[datetime | None, int] | None = None
) -> None:
    for name in _DIRECT - {"subscription_id", "create_time"}:
        setattr(row, name, getattr(sub, name))
    row.plan = sub.plan.value
    row.term = sub.term.value
    row.channel = sub.channel.value
    row.stage = sub.stage.value
    row.payment_method_type = sub.payment_method_type.value if sub.payment_method_type else ""
    row.shutoff_policy = sub.shutoff_policy.value
    row.pending_term = sub.pending_term.value if sub.pending_term else ""
    row.unit_price = sub.unit_price
    row.access_until_time = sub.access_until
    row.included_products = " ".join(sub.included_product_codes)
    row.renewal_time = sub.renewal_time
    row.next_action_time, row.due_kind = plan or lifecycle.plan(lifecycle_state(sub))
    row.event_profile = event_profile(sub)
    row.update_time = now


@dataclass(frozen=True)
class Renewal:
    """The renewal of one term: the invoice that pays it and whether it was paid (OPEN, PAID, DECLINED)."""

    subscription_id: str
    period_start_date: date
    invoice_id: str
    order_number: str
    status: str


def _renewal(row: RenewalRow) -> Renewal:
    return Renewal(row.subscription_id, row.period_start_date, row.invoice_id, row.order_number, row.status)


class Repository:
    """Subscriptions of one unit of work. `get(..., lock=True)` takes the row lock on PostgreSQL (SQLite's
    BEGIN IMMEDIATE already serializes writers); the version column catches anything else."""

    def __init__(self, session: Session, *, postgres: bool = False) -> None:
        self.session = session
        self.postgres = postgres
        self._rows: dict[str, SubscriptionRow] = {}

    def get(self, subscription_id: str, *, lock: bool = False) -> Subscription:
        if not subscription_id:
            from shared.errors import InvalidInput

            raise InvalidInput("subscription_id is required", field="subscription_id")
        stmt = select(SubscriptionRow).where(SubscriptionRow.subscription_id == subscription_id)
        if lock and self.postgres:
            stmt = stmt.with_for_update()
        row = self.session.execute(stmt.execution_options(populate_existing=True)).scalars().first()
        if row is None:
            raise NotFound(
                f"subscription {subscription_id!r} does not exist", reason="SUBSCRIPTION_NOT_FOUND"
            )
        self._rows[subscription_id] = row
        return to_domain(row)

    def add(self, sub: Subscription, now: datetime) -> Subscription:
        row = SubscriptionRow(subscription_id=sub.subscription_id, create_time=sub.create_time or now)
        _apply(row, sub, now)
        self.session.add(row)
        self.session.flush()
        self._rows[sub.subscription_id] = row
        return to_domain(row)

    def save(
        self, sub: Subscription, now: datetime, *, plan: tuple[datetime | None, int] | None = None
    ) -> Subscription:
        """Write `sub` back; `plan` (next action time, due kind) overrides the one `lifecycle.plan` gives,
        for the sweep's retry of work that stayed due."""
        row = self._rows.get(sub.subscription_id)
        if row is None:
            raise KeyError(f"subscription {sub.subscription_id} was not loaded in this unit of work")
        _apply(row, sub, now, plan)
        self.session.flush()  # UPDATE … WHERE version = n: a concurrent change raises StaleDataError
        return to_domain(row)

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
        """The subscriptions of one account (or of several; None: of every account), oldest first.
        `email`: only those it bought or of `email_accounts` (where it is on the team); `order_number`:
        only those that order made or changed."""
        stmt = select(SubscriptionRow)
        if account_id is not None:
            accounts = [account_id] if isinstance(account_id, str) else account_id
            if not accounts:
                return []
            stmt = stmt.where(SubscriptionRow.account_id.in_(accounts))
        if stage is not None:
            stmt = stmt.where(SubscriptionRow.stage == stage.value)
        if email:
            stmt = stmt.where(
                or_(
                    func.lower(SubscriptionRow.buyer_email) == email.lower(),
                    SubscriptionRow.account_id.in_(list(email_accounts)),
                )
            )
        if order_number:
            made = select(OrderRow.subscription_id).where(OrderRow.order_number == order_number)
            stmt = stmt.where(SubscriptionRow.subscription_id.in_(made))
        stmt = (
            stmt.order_by(SubscriptionRow.create_time, SubscriptionRow.subscription_id)
            .offset(offset)
            .limit(limit)
        )
        return [to_domain(r) for r in self.session.execute(stmt).scalars()]

    def accounts_of(self, subscription_ids: list[str]) -> dict[str, str]:
        """subscription id → its account, for those of `subscription_ids` that exist (permission checks)."""
        rows = self.session.execute(
            select(SubscriptionRow.subscription_id, SubscriptionRow.account_id).where(
                SubscriptionRow.subscription_id.in_(subscription_ids)
            )
        )
        return {sid: account for sid, account in rows.all()}

    def of_account(self, account_id: str) -> list[Subscription]:
        return self.list(account_id, None, 0, 10_000)

    def account_has_invoice_subscription(self, account_id: str, *, other_than: str) -> bool:
        stmt = (
            select(func.count())
            .select_from(SubscriptionRow)
            .where(
                SubscriptionRow.account_id == account_id,
                SubscriptionRow.subscription_id != other_than,
                SubscriptionRow.payment_method_type == PaymentMethodType.INVOICE.value,
                SubscriptionRow.stage != Stage.CANCELLED.value,
            )
        )
        return bool(self.session.execute(stmt).scalar_one())

    # -- what the sweep finds due ---------------------------------------------------------------------
    def due(self, due_kind: int, as_of: datetime, limit: int) -> list[str]:
        """Ids of subscriptions with work of `due_kind` due by `as_of`, the earliest first (no lock)."""
        t = SubscriptionRow.__table__
        stmt = (
            select(t.c.subscription_id)
            .where(t.c.due_kind == due_kind, t.c.next_action_time <= as_of)
            .order_by(t.c.next_action_time)
            .limit(limit)
        )
        return list(self.session.execute(stmt).scalars().all())

    def claim_due(self, due_kind: int, as_of: datetime, skip: set[str]) -> str | None:
        """The id of the earliest subscription with work of `due_kind` due by `as_of`, other than `skip`,
        locked for this unit of work (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas split them)."""
        stmt = (
            select(SubscriptionRow.subscription_id)
            .where(
                SubscriptionRow.due_kind == due_kind,
                SubscriptionRow.next_action_time <= as_of,
                SubscriptionRow.subscription_id.not_in(skip) if skip else True,
            )
            .order_by(SubscriptionRow.next_action_time)
            .limit(1)
        )
        if self.postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return self.session.execute(stmt).scalar()

    def next_action_after(self, after: datetime) -> datetime | None:
        """The earliest instant after `after` at which a subscription has work due."""
        t = SubscriptionRow.__table__
        return self.session.execute(
            select(func.min(t.c.next_action_time)).where(t.c.next_action_time > after)
        ).scalar()

    def add_reminder(self, subscription_id: str, renewal_date: date, days_before: int, now: datetime) -> None:
        self.session.add(
            ReminderRow(
                subscription_id=subscription_id,
                renewal_date=renewal_date,
                days_before=days_before,
                sent_time=now,
            )
        )

    # -- orders and transitions -----------------------------------------------------------------------
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
        self.session.add(
            OrderRow(
                order_number=order_number,
                subscription_id=sub.subscription_id,
                account_id=sub.account_id,
                kind=kind,
                invoice_id=invoice_id,
                currency=sub.currency,
                subtotal=subtotal,
                total=total,
                order_date=order_date,
                period_start_date=period_start_date,
                request_id=request_id,
                lines_json=json.dumps(
                    [
                        {
                            "description": ln.description,
                            "quantity": ln.quantity,
                            "unit_price": str(ln.unit_price),
                            "amount": str(ln.amount),
                            "period_start_date": ln.period_start_date.isoformat(),
                            "period_end_date": ln.period_end_date.isoformat(),
                            "prorated_days": ln.prorated_days,
                            "term_days": ln.term_days,
                            "term_start_date": _iso(ln.term_start_date),
                            "term_end_date": _iso(ln.term_end_date),
                        }
                        for ln in lines
                    ]
                ),
                price_book_version=price_book_version,
                create_time=now,
            )
        )

    def alignment_orders(self, sub: Subscription) -> list[PaidOrder]:
        """The alignment orders of the current term (what extended it past the term as bought), oldest
        first, with their invoices and lines."""
        stmt = (
            select(OrderRow)
            .where(
                OrderRow.subscription_id == sub.subscription_id,
                OrderRow.kind == "align",
                OrderRow.period_start_date >= sub.current_period_start_date,
            )
            .order_by(OrderRow.create_time, OrderRow.order_number)
        )
        return [
            PaidOrder(
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                total=round_money(r.total, r.currency),
                lines=_lines_of(r),
            )
            for r in self.session.execute(stmt).scalars()
        ]

    def invoices_of_current_term(self, sub: Subscription) -> list[str]:
        """Invoices of the orders that paid for the current term (purchase or renewal, seats, alignment)."""
        stmt = (
            select(OrderRow.invoice_id)
            .where(
                OrderRow.subscription_id == sub.subscription_id,
                OrderRow.period_start_date >= sub.current_period_start_date,
                OrderRow.invoice_id != "",
            )
            .order_by(OrderRow.create_time, OrderRow.order_number)
        )
        return [r[0] for r in self.session.execute(stmt).all()]

    def add_transitions(
        self, subscription_id: str, transitions: list[Transition], *, period_key: str | None = None
    ) -> None:
        """Record stage changes. `period_key` (the shutoff's start date) makes a move of the shutoff unique
        per (subscription, stage, shutoff); moves outside a shutoff leave it empty."""
        for t in transitions:
            self.session.add(
                TransitionRow(
                    subscription_id=subscription_id,
                    from_stage=t.from_stage.value if t.from_stage else "",
                    to_stage=t.to_stage.value,
                    transition_time=t.at,
                    reason=t.reason,
                    period_key=period_key if t.to_stage is not Stage.ACTIVE else None,
                )
            )

    # -- renewals -------------------------------------------------------------------------------------
    def renewal(self, subscription_id: str, period_start_date: date) -> Renewal | None:
        row = self.session.get(RenewalRow, (subscription_id, period_start_date))
        return None if row is None else _renewal(row)

    def renewal_by_invoice(self, invoice_id: str) -> Renewal | None:
        stmt = select(RenewalRow).where(RenewalRow.invoice_id == invoice_id)
        row = self.session.execute(stmt).scalars().first()
        return None if row is None else _renewal(row)

    def set_renewal_status(self, renewal: Renewal, status: str, now: datetime) -> Renewal:
        row = self.session.get(RenewalRow, (renewal.subscription_id, renewal.period_start_date))
        if row is None:
            raise KeyError(f"no renewal of {renewal.subscription_id} from {renewal.period_start_date}")
        row.status, row.update_time = status, now
        return _renewal(row)

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
        """One renewal per (subscription, term start). A period whose automatic renewal was declined may be
        renewed again (manually, or by paying); a second successful renewal of one period is refused by the
        primary key."""
        row = self.session.get(RenewalRow, (subscription_id, period_start_date))
        if row is not None and row.status == "DECLINED":
            row.invoice_id, row.order_number, row.status, row.update_time = (
                invoice_id,
                order_number,
                status,
                now,
            )
        else:
            row = RenewalRow(
                subscription_id=subscription_id,
                period_start_date=period_start_date,
                invoice_id=invoice_id,
                order_number=order_number,
                status=status,
                create_time=now,
                update_time=now,
            )
            self.session.add(row)
        self.session.flush()
        return _renewal(row)

    def transitions(self, subscription_id: str) -> list[Transition]:
        stmt = (
            select(TransitionRow)
            .where(TransitionRow.subscription_id == subscription_id)
            .order_by(TransitionRow.id)
        )
        return [
            Transition(
                Stage(r.from_stage) if r.from_stage else None, Stage(r.to_stage), r.transition_time, r.reason
            )
            for r in self.session.execute(stmt).scalars()
        ]


class MemberRepository:
    """The account teams as this service sees them (its projection of entitlement's)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._members = Members(MEMBERS)

    def open_account(self, account_id: str, buyer_email: str) -> bool:
        """Make `buyer_email` the buyer and primary admin of an account this service knows no team of
        (its first order); True when it did. The caller holds the account's lock."""
        if self._members.known(self.session, account_id):
            return False
        for role in (BUYER, PRIMARY_ADMIN):
            self._members.grant(self.session, account_id, buyer_email, role)
        return True

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        return self._members.roles(self.session, account_id, email)

    def accounts_of(self, email: str, roles: frozenset[str]) -> list[str]:
        return self._members.accounts_of(self.session, email, roles)
