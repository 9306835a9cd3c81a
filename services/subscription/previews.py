"""Previews of orders (QuoteOrder: the lines, tax and total an order will charge, through the same domain
functions and tax call as the order) and an account's upcoming payments (ListUpcomingPayments)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.subscription.adapters.peers import Tax
from services.subscription.adapters.unit_of_work import reading
from services.subscription.booking import (
    Peers,
)
from services.subscription.domain import previews as rules
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import (
    Catalog,
)
from services.subscription.domain.model import (
    OrderLine,
    Plan,
    Stage,
    Term,
)
from services.subscription.domain.subscription import Subscription
from shared.db import Database
from shared.errors import InvalidInput, RuleViolation

# -- quotes -------------------------------------------------------------------------------------------
#
# A quote prices an order with the domain function the order itself calls (on the same subscription, catalog
# and clock), asks billing for tax on the subscription the order would invoice, and splits it into the
# installments billing will schedule: the order then charges exactly `due_now` (rules §3, §5).


#: the id of a subscription a quote prices before it exists (its lines name no subscription)
NOT_YET_ORDERED = ""


@dataclass
class Quote:
    """A priced order: its lines, subtotal, tax and total; the installments billing will split it into;
    when it is charged (`due_date`: today, or the renewal date for a pending change) and what that charge
    is (`due_now`: the total, or the first installment's)."""

    lines: list[OrderLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    credit: Decimal
    currency: str
    installments: list[QuotePart] = field(default_factory=list)
    due_date: date | None = None
    due_now: Decimal = Decimal(0)
    applied: tuple[str, ...] = ()  # the pending changes a renewal applies: term, product, seats


# -- catalog ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotePart:
    """One installment of a quoted order."""

    sequence: int
    count: int
    due_date: date
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def _price(
    peers: Peers, sub: Subscription, kind: str, lines: list[OrderLine], issue_day: date
) -> tuple[Tax, list[QuotePart]]:
    """Tax of the lines as billing will invoice them for `sub`, and their installments when billing splits
    the order (`rules.uses_installments`); each installment's tax is billing's on its share lines."""
    tax = peers.billing.preview_tax(sub, lines)
    parts: list[QuotePart] = []
    if rules.uses_installments(kind, sub.term, issue_day, lines):
        for p in rules.split(lines, sub.current_period_start_date, sub.currency):
            t = peers.billing.preview_tax(sub, p.lines)
            parts.append(QuotePart(p.sequence, p.count, p.due_date, t.subtotal, t.tax, t.total))
    return tax, parts


def _quote(
    peers: Peers,
    sub: Subscription,
    kind: str,
    lines: list[OrderLine],
    issue_day: date,
    credit: Decimal = Decimal(0),
    *,
    applied: tuple[str, ...] = (),
) -> Quote:
    """`sub`: the subscription as the order leaves it (the one its invoice names); `issue_day`: the local
    date billing issues the invoice."""
    if not lines:
        return Quote([], Decimal(0), Decimal(0), Decimal(0), credit, sub.currency, due_date=issue_day)
    tax, parts = _price(peers, sub, kind, lines, issue_day)
    due_now = parts[0].total if parts else tax.total
    return Quote(
        lines, tax.subtotal, tax.tax, tax.total, credit, sub.currency, parts, issue_day, due_now, applied
    )


@dataclass(frozen=True)
class QuoteCreate:
    order: ops.OrderRequest


@dataclass(frozen=True)
class QuoteAddSeats:
    subscription_id: str
    seats: int


@dataclass(frozen=True)
class QuoteRenew:
    subscription_id: str


@dataclass(frozen=True)
class QuoteAlign:
    account_id: str
    subscription_ids: list[str]


@dataclass(frozen=True)
class QuoteUpgrade:
    subscription_id: str
    target_product_code: str
    target_plan: Plan | None


@dataclass(frozen=True)
class QuoteConvertTrial:
    subscription_id: str
    term: Term
    seats: int


@dataclass(frozen=True)
class QuoteChangeTerm:
    """The renewal a term change will cause: the new term at its renewal price, at the renewal date."""

    subscription_id: str
    term: Term


@dataclass(frozen=True)
class QuoteProductSwitch:
    """The renewal a scheduled product switch will cause, at the renewal date."""

    subscription_id: str
    product_code: str


@dataclass(frozen=True)
class QuoteReinstate:
    """Turning automatic renewal on while Expired or Suspended: the renewal that reinstates it."""

    subscription_id: str


QuoteRequest = (
    QuoteCreate
    | QuoteAddSeats
    | QuoteRenew
    | QuoteAlign
    | QuoteUpgrade
    | QuoteConvertTrial
    | QuoteChangeTerm
    | QuoteProductSwitch
    | QuoteReinstate
)


def quote_order(db: Database, peers: Peers, q: QuoteRequest) -> Quote:
    """What an order would cost now, tax included; nothing is ordered."""
    match q:
        case QuoteCreate(order):
            return quote_create(db, peers, order)
        case QuoteAddSeats(subscription_id, seats):
            return quote_add_seats(db, peers, subscription_id, seats)
        case QuoteRenew(subscription_id):
            return quote_renew(db, peers, subscription_id)
        case QuoteAlign(account_id, subscription_ids):
            return quote_align(db, peers, account_id, subscription_ids)
        case QuoteUpgrade(subscription_id, product_code, plan):
            return quote_upgrade(db, peers, subscription_id, product_code, plan)
        case QuoteConvertTrial(subscription_id, term, seats):
            return quote_convert_trial(db, peers, subscription_id, term, seats)
        case QuoteChangeTerm(subscription_id, term):
            return quote_change_term(db, peers, subscription_id, term)
        case QuoteProductSwitch(subscription_id, product_code):
            return quote_product_switch(db, peers, subscription_id, product_code)
        case QuoteReinstate(subscription_id):
            return quote_reinstate(db, peers, subscription_id)
    raise AssertionError(f"unknown quote {q!r}")


def quote_create(db: Database, peers: Peers, req: ops.OrderRequest) -> Quote:
    with reading(db) as uow:
        catalog = uow.catalog.load()
    if not req.trial and not req.payment_method_id:
        req = replace(req, payment_method_id="quote")  # a quote charges nothing
    now = db.clock.now()
    out = ops.create(req, catalog, NOT_YET_ORDERED, now)
    return _quote(peers, out.subscription, "new", out.lines, out.subscription.today(now))


def _load(db: Database, subscription_id: str) -> tuple[Subscription, Catalog]:
    with reading(db) as uow:
        return uow.subscriptions.get(subscription_id), uow.catalog.load()


def quote_add_seats(db: Database, peers: Peers, subscription_id: str, seats: int) -> Quote:
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    out = ops.add_seats(sub, seats, catalog, now)
    return _quote(peers, out.subscription, "add_seats", out.lines, sub.today(now))


def quote_renew(db: Database, peers: Peers, subscription_id: str) -> Quote:
    """A manual renewal (or a reinstatement while Expired or Suspended): pending changes applied."""
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    r = rules.Renewal(sub, ops.renew(sub, catalog, now), rules.pending_changes(sub))
    return _quote(peers, r.subscription, "renewal", r.lines, sub.today(now), applied=r.applied)


def quote_reinstate(db: Database, peers: Peers, subscription_id: str) -> Quote:
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    if sub.stage not in (Stage.EXPIRED, Stage.SUSPENDED):
        raise RuleViolation(
            "only an Expired or Suspended subscription is reinstated; turning automatic renewal on now "
            "orders nothing",
            reason="STAGE_NOT_ALLOWED",
        )
    out = ops.set_auto_renew(sub, True, catalog, now)
    applied = rules.pending_changes(sub)
    return _quote(peers, out.subscription, "renewal", out.lines, sub.today(now), applied=applied)


def _quote_next_renewal(peers: Peers, changed_sub: Subscription, catalog: Catalog, now: datetime) -> Quote:
    """The automatic renewal at the renewal date, as the sweep will order it, for a subscription with a
    pending change."""
    r = rules.upcoming_renewal(changed_sub, catalog, now)
    return _quote(peers, r.subscription, "renewal", r.lines, changed_sub.renewal_date, applied=r.applied)


def quote_change_term(db: Database, peers: Peers, subscription_id: str, term: Term) -> Quote:
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    out = ops.change_term(sub, term, catalog, now)
    return _quote_next_renewal(peers, out.subscription, catalog, now)


def quote_product_switch(db: Database, peers: Peers, subscription_id: str, product_code: str) -> Quote:
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    out = ops.schedule_product_switch(sub, product_code, catalog, now)
    return _quote_next_renewal(peers, out.subscription, catalog, now)


def quote_align(db: Database, peers: Peers, account_id: str, subscription_ids: list[str]) -> Quote:
    with reading(db) as uow:
        subs = [uow.subscriptions.get(sid) for sid in sorted(set(subscription_ids))]
        catalog = uow.catalog.load()
    now = db.clock.now()
    out = ops.align(subs, account_id, catalog, now)
    return _quote(peers, subs[0], "align", out.lines, subs[0].today(now))


def quote_upgrade(
    db: Database, peers: Peers, subscription_id: str, target_product_code: str, target_plan: Plan | None
) -> Quote:
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    out = ops.upgrade(sub, catalog, now, NOT_YET_ORDERED, target_product_code, target_plan)
    return _quote(peers, out.new, "upgrade", out.lines, sub.today(now), out.credit)


def quote_convert_trial(db: Database, peers: Peers, subscription_id: str, term: Term, seats: int) -> Quote:
    sub, catalog = _load(db, subscription_id)
    now = db.clock.now()
    out = ops.convert_trial(sub, term, seats, "quote", None, catalog, now)
    return _quote(peers, out.subscription, "trial_converted", out.lines, sub.today(now))


# -- upcoming payments --------------------------------------------------------------------------------

RENEWAL = "RENEWAL"
INSTALLMENT = "INSTALLMENT"
#: how far ahead ListUpcomingPayments looks when the request names no horizon
DEFAULT_HORIZON_DAYS = 365
MAX_HORIZON_DAYS = 3 * 366


@dataclass(frozen=True)
class UpcomingPayment:
    subscription_id: str
    product_code: str
    product_name: str
    kind: str  # RENEWAL or INSTALLMENT
    due_date: date
    seats: int
    unit_price: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    currency: str
    sequence: int = 0  # installment n of `count`; 0 when not split
    count: int = 0
    applied: tuple[str, ...] = ()  # the pending changes a renewal applies: term, product, seats
    term: Term | None = None


def list_upcoming_payments(
    db: Database, peers: Peers, account_id: str, horizon_days: int = 0
) -> list[UpcomingPayment]:
    """An account's coming payments up to `horizon_days` from today (local to each subscription), by due
    date: the automatic renewals (renewal seats x renewal price of the pending term and product, as the
    sweep will order them; a 3-year renewal as its installments) and the installments billing has
    scheduled for terms already bought."""
    if not account_id:
        raise InvalidInput("account_id is required", field="account_id")
    if horizon_days < 0 or horizon_days > MAX_HORIZON_DAYS:
        raise InvalidInput(
            f"horizon_days is between 1 and {MAX_HORIZON_DAYS} (0: {DEFAULT_HORIZON_DAYS})",
            field="horizon_days",
        )
    horizon = horizon_days or DEFAULT_HORIZON_DAYS
    with reading(db) as uow:
        subs = uow.subscriptions.of_account(account_id)
        catalog = uow.catalog.load()
    now = db.clock.now()
    out: list[UpcomingPayment] = []
    for sub in subs:
        until = sub.today(now) + timedelta(days=horizon)
        if sub.installments > 1 and sub.stage in (Stage.ACTIVE, Stage.EXPIRED, Stage.SUSPENDED):
            out += _scheduled_installments(peers, sub, until)
        if sub.auto_renew and sub.stage is Stage.ACTIVE and sub.access_until is None:
            if sub.renewal_date <= until:
                out += _renewal_payments(peers, sub, catalog, now, until)
    return sorted(out, key=lambda p: (p.due_date, p.subscription_id, p.kind, p.sequence))


def _renewal_payments(
    peers: Peers, sub: Subscription, catalog: Catalog, now: datetime, until: date
) -> list[UpcomingPayment]:
    r = rules.upcoming_renewal(sub, catalog, now)
    new = r.subscription
    tax, parts = _price(peers, new, "renewal", r.lines, sub.renewal_date)
    (line,) = r.lines

    def entry(due: date, subtotal: Decimal, tax: Decimal, total: Decimal, n: int = 0, count: int = 0):
        return UpcomingPayment(
            sub.subscription_id,
            new.product_code,
            new.product_name,
            RENEWAL,
            due,
            line.quantity,
            line.unit_price,
            subtotal,
            tax,
            total,
            new.currency,
            n,
            count,
            r.applied,
            new.term,
        )

    if not parts:
        return [entry(sub.renewal_date, tax.subtotal, tax.tax, tax.total)]
    return [
        entry(p.due_date, p.subtotal, p.tax, p.total, p.sequence, p.count)
        for p in parts
        if p.due_date <= until
    ]


def _scheduled_installments(peers: Peers, sub: Subscription, until: date) -> list[UpcomingPayment]:
    out = []
    for ins in peers.billing.installments(sub.subscription_id):
        if ins.status != "SCHEDULED" or ins.due_date > until:
            continue
        line = OrderLine(
            description=f"{sub.product_name} (installment {ins.sequence} of {ins.count})",
            quantity=sub.seats,
            unit_price=sub.unit_price,
            currency=sub.currency,
            amount=ins.amount,
            period_start_date=sub.current_period_start_date,
            period_end_date=sub.renewal_date,
            subscription_id=sub.subscription_id,
        )
        tax = peers.billing.preview_tax(sub, [line])
        out.append(
            UpcomingPayment(
                sub.subscription_id,
                sub.product_code,
                sub.product_name,
                INSTALLMENT,
                ins.due_date,
                sub.seats,
                sub.unit_price,
                tax.subtotal,
                tax.tax,
                tax.total,
                sub.currency,
                ins.sequence,
                ins.count,
                (),
                sub.term,
            )
        )
    return out
