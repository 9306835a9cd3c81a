"""Use cases of the subscription service: one function per command, each inside one unit of work.

A handler loads what it needs through the repository (taking the subscription's row lock), calls the pure
domain rules, asks billing for the invoice, saves, records transitions and writes the outbox events in the
same transaction. Billing requests carry ids derived from the caller's `request_id` (or the order number),
so a retried order never charges twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from services.subscription import codec
from services.subscription.adapters.peers import Billing, Entitlement, IssuedInvoice
from services.subscription.adapters.repository import (
    Repository,
    load_catalog,
    rate_row,
    seed_catalog,
)
from services.subscription.domain import lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import (
    Catalog,
    ExchangeRate,
    Price,
    Product,
    RateAdjustment,
    adjust_rate,
    channel_group,
)
from services.subscription.domain.model import (
    Channel,
    OrderLine,
    PaymentMethodType,
    Plan,
    Stage,
    Term,
    Transition,
)
from services.subscription.domain.subscription import Option, Subscription
from services.subscription.permissions import LISTS
from shared.auth.policy import BUYER
from shared.db import Database, UnitOfWork, new_id
from shared.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from shared.money import to_proto
from tenure.events.v1 import events_pb2


@dataclass
class Peers:
    billing: Billing
    entitlement: Entitlement | None = None


@dataclass
class OrderResult:
    subscription: Subscription
    order_number: str = ""
    invoice_id: str = ""
    subtotal: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    lines: list[OrderLine] = field(default_factory=list)


@dataclass
class AlignResult:
    subscriptions: list[Subscription]
    order_number: str
    invoice_ids: list[str]
    total: Decimal
    currency: str


@dataclass
class UpgradeResult:
    old: Subscription
    new: Subscription
    order_number: str
    invoice_id: str
    credit: Decimal
    total: Decimal
    old_access_until: datetime
    serial_number_update_required: bool
    reinstall_required: bool


@dataclass
class RefundResult:
    subscription: Subscription
    credit_note_ids: list[str]
    refunded: Decimal


@dataclass
class Quote:
    lines: list[OrderLine]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    credit: Decimal
    currency: str


def new_order_number(now: datetime) -> str:
    return f"ORD-{now.astimezone(UTC):%Y%m%d}-{uuid.uuid4().hex[:10].upper()}"


def _repo(uow: UnitOfWork) -> Repository:
    return Repository(uow.session, postgres=uow.db.is_postgres)


# -- catalog ------------------------------------------------------------------------------------------


def seed(db: Database) -> bool:
    """Load the demo catalog on first start (a no-op afterwards)."""
    with db.unit_of_work() as uow:
        return seed_catalog(uow.session)


def list_products(db: Database) -> list[tuple[Product, list[str]]]:
    with db.read() as s:
        catalog = load_catalog(s)
    return [(p, catalog.upgrades_to(p.code)) for p in catalog.products.values()]


def list_prices(db: Database, product_code: str, currency: str, channel: Channel) -> list[Price]:
    with db.read() as s:
        catalog = load_catalog(s)
    if currency and currency not in catalog.currencies():
        raise NotFound(f"the price book has no prices in {currency}", reason="PRICE_NOT_FOUND")
    return catalog.prices(product_code, currency, channel)


def set_exchange_rate(uow: UnitOfWork, currency: str, channel: Channel, rate: str) -> RateAdjustment:
    group = channel_group(channel)
    row = rate_row(uow.session, currency, group, lock=uow.db.is_postgres)
    if row is None:
        if currency == "USD":
            adjust_rate(ExchangeRate("USD", group, Decimal(1)), rate, uow.now.date())  # raises
        raise NotFound(f"the price book has no prices in {currency!r}", reason="PRICE_NOT_FOUND")
    current = ExchangeRate(row.currency, row.channel_group, Decimal(row.rate), row.period)
    adj = adjust_rate(current, rate, uow.now.astimezone(UTC).date())
    row.rate = adj.applied.rate
    row.period = adj.applied.period
    row.update_time = uow.now
    uow.session.add(row)
    return adj


# -- reads --------------------------------------------------------------------------------------------


def get_subscription(db: Database, subscription_id: str) -> Subscription:
    with db.read() as s:
        return Repository(s).get(subscription_id)


def list_subscriptions(
    db: Database, account_id: str, stage: Stage | None, offset: int, limit: int, *, person: str = ""
) -> list[Subscription]:
    """One account's subscriptions; a `person` who names no account gets those of every account where
    they are the buyer or an admin."""
    if not account_id and not person:
        raise InvalidInput("account_id is required", field="account_id")
    with db.read() as s:
        repo = Repository(s)
        accounts = account_id or repo.accounts_of(person, LISTS)
        return repo.list(accounts, stage, offset, limit)


def self_service_options(db: Database, subscription_id: str) -> list[Option]:
    with db.read() as s:
        repo = Repository(s)
        sub = repo.get(subscription_id)
        catalog = load_catalog(s)
        others = repo.of_account(sub.account_id)
        invoiced = repo.account_has_invoice_subscription(sub.account_id, other_than=sub.subscription_id)
    return ops.self_service_options(
        sub, catalog, db.clock.now(), others=others, account_has_invoice_subscription=invoiced
    )


def lifecycle_history(db: Database, subscription_id: str) -> list[Transition]:
    with db.read() as s:
        repo = Repository(s)
        repo.get(subscription_id)
        return repo.transitions(subscription_id)


# -- orders -------------------------------------------------------------------------------------------


def _bill(
    peers: Peers,
    *,
    request_id: str,
    sub: Subscription,
    order_number: str,
    kind: str,
    lines: list[OrderLine],
    term_start_date: date,
) -> IssuedInvoice:
    """Issue (and charge) the order's invoice; a declined charge voids it and refuses the order."""
    key = f"{request_id or order_number}:invoice"
    invoice = peers.billing.create_invoice(
        request_id=key,
        sub=sub,
        order_number=order_number,
        kind=kind,
        lines=lines,
        term_start_date=term_start_date,
    )
    if invoice.payment_status == "DECLINED":
        peers.billing.void_invoice(
            request_id=f"{key}:void", invoice_id=invoice.invoice_id, reason="payment declined at order"
        )
        raise RuleViolation(
            f"the payment was declined ({invoice.decline_reason or 'declined'}); nothing was ordered — use "
            "another payment method",
            reason="PAYMENT_DECLINED",
            metadata={"decline_reason": invoice.decline_reason, "invoice_id": invoice.invoice_id},
        )
    return invoice


def _subtotal(lines: list[OrderLine]) -> Decimal:
    return sum((ln.amount for ln in lines), Decimal(0))


def _money(amount: Decimal, currency: str):
    return to_proto(amount, currency)


def _stage_events(uow: UnitOfWork, sub: Subscription, transitions: list[Transition]) -> None:
    for t in transitions:
        if t.from_stage is None:
            continue
        uow.publish(
            "subscription.stage_changed",
            account_id=sub.account_id,
            subscription_id=sub.subscription_id,
            stage_changed=events_pb2.StageChanged(
                subscription=codec.snapshot_pb(sub),
                from_stage=codec.stage_pb(t.from_stage),
                to_stage=codec.stage_pb(t.to_stage),
                reason=t.reason,
                transition_time=codec.ts_pb(t.at),
            ),
        )


def _changed(uow: UnitOfWork, sub: Subscription, change: str, **order) -> None:
    uow.publish(
        "subscription.changed",
        account_id=sub.account_id,
        subscription_id=sub.subscription_id,
        subscription_changed=events_pb2.SubscriptionChanged(
            subscription=codec.snapshot_pb(sub), change=change, **order
        ),
    )


def _open_account(uow: UnitOfWork, repo: Repository, req: ops.OrderRequest, person: str) -> None:
    """The order's account: its first order makes the buyer its buyer and primary admin here, in the
    order's transaction, so they can act on it at once. Under the account's lock, so two first orders
    cannot both open it: the second finds the first one's team (and a person not its buyer is refused,
    as the permission check would have)."""
    if not req.account_id:
        return
    uow.lock_key(f"account:{req.account_id}")
    if repo.open_account(req.account_id, req.buyer_email) or not person:
        return
    roles = repo.roles(req.account_id, person)
    if not roles:
        raise NotFound(f"account {req.account_id} not found", reason="NOT_FOUND")
    if BUYER not in roles:
        raise NotAllowed("only the account's buyer may order on it", reason="PERMISSION_DENIED")


def create_subscription(
    uow: UnitOfWork, peers: Peers, req: ops.OrderRequest, request_id: str, *, person: str = ""
) -> OrderResult:
    """`person`: the e-mail of the person placing the order ("" for an operator)."""
    repo = _repo(uow)
    _open_account(uow, repo, req, person)
    catalog = load_catalog(uow.session)
    now = uow.now
    out = ops.create(req, catalog, new_id("sub"), now)
    sub = out.subscription
    order_number = new_order_number(now)
    invoice_id, total = "", Decimal(0)
    if out.lines:
        invoice = _bill(
            peers,
            request_id=request_id,
            sub=sub,
            order_number=order_number,
            kind="new",
            lines=out.lines,
            term_start_date=sub.current_period_start_date,
        )
        invoice_id, total = invoice.invoice_id, invoice.total
        sub.payment_method_type = invoice.payment_method_type
    sub = repo.add(sub, now)
    repo.add_order(
        order_number=order_number,
        sub=sub,
        kind="trial" if req.trial else "new",
        invoice_id=invoice_id,
        subtotal=out.subtotal(),
        total=total,
        order_date=sub.today(now),
        period_start_date=sub.current_period_start_date,
        lines=out.lines,
        request_id=request_id,
        now=now,
    )
    repo.add_transitions(sub.subscription_id, out.transitions)
    uow.publish(
        "subscription.created",
        account_id=sub.account_id,
        subscription_id=sub.subscription_id,
        subscription_created=events_pb2.SubscriptionCreated(
            subscription=codec.snapshot_pb(sub),
            order_number=order_number,
            amount=_money(total, sub.currency),
            invoice_id=invoice_id,
            trial=req.trial,
        ),
    )
    return OrderResult(sub, order_number, invoice_id, out.subtotal(), total, out.lines)


def add_seats(
    uow: UnitOfWork, peers: Peers, subscription_id: str, seats: int, request_id: str
) -> OrderResult:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    now = uow.now
    sub = repo.get(subscription_id, lock=True)
    out = ops.add_seats(sub, seats, catalog, now)
    order_number = new_order_number(now)
    invoice = _bill(
        peers,
        request_id=request_id,
        sub=out.subscription,
        order_number=order_number,
        kind="add_seats",
        lines=out.lines,
        term_start_date=sub.current_period_start_date,
    )
    saved = repo.save(out.subscription, now)
    repo.add_order(
        order_number=order_number,
        sub=saved,
        kind="add_seats",
        invoice_id=invoice.invoice_id,
        subtotal=out.subtotal(),
        total=invoice.total,
        order_date=sub.today(now),
        period_start_date=sub.today(now),
        lines=out.lines,
        request_id=request_id,
        now=now,
    )
    uow.publish(
        "subscription.seats_added",
        account_id=saved.account_id,
        subscription_id=saved.subscription_id,
        seats_added=events_pb2.SeatsAdded(
            subscription=codec.snapshot_pb(saved),
            order_number=order_number,
            seats_added=seats,
            prorated_amount=_money(out.subtotal(), saved.currency),
            invoice_id=invoice.invoice_id,
        ),
    )
    return OrderResult(saved, order_number, invoice.invoice_id, out.subtotal(), invoice.total, out.lines)


def set_renewal_seats(uow: UnitOfWork, peers: Peers, subscription_id: str, seats: int) -> Subscription:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    sub = repo.get(subscription_id, lock=True)
    ops.check_set_renewal_seats(sub, catalog, uow.now)
    assigned = peers.entitlement.assigned_seats(subscription_id) if peers.entitlement else 0
    out = ops.set_renewal_seats(sub, seats, assigned, catalog, uow.now)
    saved = repo.save(out.subscription, uow.now)
    _changed(uow, saved, "renewal_seats")
    return saved


def change_term(uow: UnitOfWork, subscription_id: str, term: Term) -> Subscription:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    sub = repo.get(subscription_id, lock=True)
    saved = repo.save(ops.change_term(sub, term, catalog, uow.now).subscription, uow.now)
    _changed(uow, saved, "term")
    return saved


def book_renewal(
    uow: UnitOfWork,
    repo: Repository,
    saved: Subscription,
    out: ops.Outcome,
    order_number: str,
    invoice_id: str,
    total: Decimal,
    request_id: str,
    period_start_date: date,
) -> None:
    """The order and the `subscription.renewed` event of a renewal, manual or automatic."""
    repo.add_order(
        order_number=order_number,
        sub=saved,
        kind="renewal",
        invoice_id=invoice_id,
        subtotal=out.subtotal(),
        total=total,
        order_date=saved.today(uow.now),
        period_start_date=period_start_date,
        lines=out.lines,
        request_id=request_id,
        now=uow.now,
    )
    uow.publish(
        "subscription.renewed",
        account_id=saved.account_id,
        subscription_id=saved.subscription_id,
        subscription_renewed=events_pb2.SubscriptionRenewed(
            subscription=codec.snapshot_pb(saved),
            order_number=order_number,
            amount=_money(total, saved.currency),
            invoice_id=invoice_id,
        ),
    )


def _record_renewal(
    uow: UnitOfWork, peers: Peers, repo: Repository, before: Subscription, out: ops.Outcome, request_id: str
) -> OrderResult:
    now = uow.now
    new = out.subscription
    order_number = new_order_number(now)
    invoice = _bill(
        peers,
        request_id=request_id,
        sub=new,
        order_number=order_number,
        kind="renewal",
        lines=out.lines,
        term_start_date=new.current_period_start_date,
    )
    new.payment_method_type = invoice.payment_method_type or new.payment_method_type
    saved = repo.save(new, now)
    book_renewal(
        uow,
        repo,
        saved,
        out,
        order_number,
        invoice.invoice_id,
        invoice.total,
        request_id,
        saved.current_period_start_date,
    )
    repo.record_renewal(
        subscription_id=saved.subscription_id,
        period_start_date=saved.current_period_start_date,
        invoice_id=invoice.invoice_id,
        order_number=order_number,
        status="OPEN" if invoice.payment_status == "PENDING" else "PAID",
        now=now,
    )
    if before.shutoff_reason == lifecycle.PAYMENT_FAILED and before.shutoff_invoice_id:
        # the declined automatic renewal's invoice is replaced by this one
        peers.billing.void_invoice(
            request_id=f"{before.shutoff_invoice_id}:void",
            invoice_id=before.shutoff_invoice_id,
            reason=f"replaced by the renewal invoice {invoice.invoice_id}",
        )
    repo.add_transitions(saved.subscription_id, out.transitions)
    _stage_events(uow, saved, out.transitions)
    return OrderResult(saved, order_number, invoice.invoice_id, out.subtotal(), invoice.total, out.lines)


def set_auto_renew(
    uow: UnitOfWork, peers: Peers, subscription_id: str, on: bool, request_id: str
) -> OrderResult:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    sub = repo.get(subscription_id, lock=True)
    out = ops.set_auto_renew(sub, on, catalog, uow.now)
    if out.lines:  # turning it on while Expired or Suspended reinstated it
        return _record_renewal(uow, peers, repo, sub, out, request_id)
    saved = repo.save(out.subscription, uow.now)
    _changed(uow, saved, "auto_renew")
    return OrderResult(saved)


def renew(uow: UnitOfWork, peers: Peers, subscription_id: str, request_id: str) -> OrderResult:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    sub = repo.get(subscription_id, lock=True)
    out = ops.renew(sub, catalog, uow.now)
    return _record_renewal(uow, peers, repo, sub, out, request_id)


def align(
    uow: UnitOfWork, peers: Peers, account_id: str, subscription_ids: list[str], request_id: str
) -> AlignResult:
    """One order; each extended subscription gets its own invoice (so a later refund of one credits only
    its own extension)."""
    if not account_id:
        raise InvalidInput("account_id is required", field="account_id")
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    now = uow.now
    subs = [repo.get(sid, lock=True) for sid in sorted(set(subscription_ids))]
    out = ops.align(subs, account_id, catalog, now)
    order_number = new_order_number(now)
    invoice_ids: list[str] = []
    total = Decimal(0)
    saved = []
    for before, s in zip(subs, out.subscriptions, strict=True):
        if s.renewal_date == before.renewal_date:
            saved.append(before)
            continue
        lines = [ln for ln in out.lines if ln.subscription_id == s.subscription_id]
        invoice_id, sub_total = "", Decimal(0)
        if _subtotal(lines) > 0:
            invoice = _bill(
                peers,
                request_id=f"{request_id}:{s.subscription_id}" if request_id else "",
                sub=s,
                order_number=f"{order_number}/{len(invoice_ids) + 1}",
                kind="align",
                lines=lines,
                term_start_date=s.current_period_start_date,
            )
            invoice_id, sub_total = invoice.invoice_id, invoice.total
            invoice_ids.append(invoice_id)
            total += sub_total
        s = repo.save(s, now)
        repo.add_order(
            order_number=order_number,
            sub=s,
            kind="align",
            invoice_id=invoice_id,
            subtotal=_subtotal(lines),
            total=sub_total,
            order_date=s.today(now),
            period_start_date=s.current_period_start_date,
            lines=lines,
            request_id=request_id,
            now=now,
        )
        _changed(
            uow,
            s,
            "aligned",
            order_number=order_number,
            amount=_money(sub_total, s.currency),
            invoice_id=invoice_id,
        )
        saved.append(s)
    return AlignResult(saved, order_number, invoice_ids, total, subs[0].currency)


def upgrade(
    uow: UnitOfWork,
    peers: Peers,
    subscription_id: str,
    target_product_code: str,
    target_plan: Plan | None,
    request_id: str,
) -> UpgradeResult:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    now = uow.now
    sub = repo.get(subscription_id, lock=True)
    out = ops.upgrade(sub, catalog, now, new_id("sub"), target_product_code, target_plan)
    order_number = new_order_number(now)
    invoice = _bill(
        peers,
        request_id=request_id,
        sub=out.new,
        order_number=order_number,
        kind="upgrade",
        lines=out.lines,
        term_start_date=out.new.current_period_start_date,
    )
    out.new.payment_method_type = invoice.payment_method_type or out.new.payment_method_type
    if sub.installments > 1:  # installments not yet due are cancelled, not credited
        peers.billing.cancel_installments(
            request_id=f"{request_id or order_number}:installments",
            subscription_id=sub.subscription_id,
            reason="upgraded",
        )
    old = repo.save(out.old, now)
    new = repo.add(out.new, now)
    repo.add_order(
        order_number=order_number,
        sub=new,
        kind="upgrade",
        invoice_id=invoice.invoice_id,
        subtotal=out.subtotal(),
        total=invoice.total,
        order_date=new.today(now),
        period_start_date=new.current_period_start_date,
        lines=out.lines,
        request_id=request_id,
        now=now,
    )
    repo.add_transitions(new.subscription_id, out.transitions)
    uow.publish(
        "subscription.upgraded",
        account_id=new.account_id,
        subscription_id=old.subscription_id,
        subscription_upgraded=events_pb2.SubscriptionUpgraded(
            old_subscription=codec.snapshot_pb(old),
            new_subscription=codec.snapshot_pb(new),
            order_number=order_number,
            credit=_money(out.credit, new.currency),
            old_access_until_time=codec.ts_pb(out.old_access_until),
            amount=_money(invoice.total, new.currency),
            invoice_id=invoice.invoice_id,
        ),
    )
    return UpgradeResult(
        old,
        new,
        order_number,
        invoice.invoice_id,
        out.credit,
        invoice.total,
        out.old_access_until,
        out.serial_number_update_required,
        out.reinstall_required,
    )


def schedule_product_switch(uow: UnitOfWork, subscription_id: str, product_code: str) -> Subscription:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    sub = repo.get(subscription_id, lock=True)
    saved = repo.save(ops.schedule_product_switch(sub, product_code, catalog, uow.now).subscription, uow.now)
    _changed(uow, saved, "product_switch")
    return saved


def convert_trial(
    uow: UnitOfWork,
    peers: Peers,
    subscription_id: str,
    term: Term,
    seats: int,
    payment_method_id: str,
    request_id: str,
) -> OrderResult:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    now = uow.now
    sub = repo.get(subscription_id, lock=True)
    out = ops.convert_trial(sub, term, seats, payment_method_id, None, catalog, now)
    order_number = new_order_number(now)
    invoice = _bill(
        peers,
        request_id=request_id,
        sub=out.subscription,
        order_number=order_number,
        kind="trial_converted",
        lines=out.lines,
        term_start_date=out.subscription.current_period_start_date,
    )
    out.subscription.payment_method_type = invoice.payment_method_type
    saved = repo.save(out.subscription, now)
    repo.add_order(
        order_number=order_number,
        sub=saved,
        kind="trial_converted",
        invoice_id=invoice.invoice_id,
        subtotal=out.subtotal(),
        total=invoice.total,
        order_date=saved.today(now),
        period_start_date=saved.current_period_start_date,
        lines=out.lines,
        request_id=request_id,
        now=now,
    )
    repo.add_transitions(saved.subscription_id, out.transitions)
    _changed(
        uow,
        saved,
        "trial_converted",
        order_number=order_number,
        amount=_money(invoice.total, saved.currency),
        invoice_id=invoice.invoice_id,
    )
    _stage_events(uow, saved, out.transitions)
    return OrderResult(saved, order_number, invoice.invoice_id, out.subtotal(), invoice.total, out.lines)


def change_payment_method(
    uow: UnitOfWork, peers: Peers, subscription_id: str, payment_method_id: str
) -> Subscription:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    sub = repo.get(subscription_id, lock=True)
    ops.check_change_payment_method(sub, catalog, uow.now)
    if not payment_method_id:
        raise InvalidInput("payment_method_id is required", field="payment_method_id")
    pm_type = peers.billing.payment_method_type(sub.account_id, payment_method_id)
    invoiced = repo.account_has_invoice_subscription(sub.account_id, other_than=sub.subscription_id)
    out = ops.change_payment_method(sub, payment_method_id, pm_type, invoiced, catalog, uow.now)
    if pm_type is PaymentMethodType.INVOICE:
        peers.billing.check_payment_method(sub, payment_method_id)  # e.g. a prepay-only account
    saved = repo.save(out.subscription, uow.now)
    _changed(uow, saved, "payment_method")
    return saved


def request_refund(
    uow: UnitOfWork, peers: Peers, subscription_id: str, reason: str, request_id: str
) -> RefundResult:
    repo = _repo(uow)
    catalog = load_catalog(uow.session)
    now = uow.now
    sub = repo.get(subscription_id, lock=True)
    out = ops.refund(sub, catalog, now)
    key = request_id or new_id("refund")
    credit_ids: list[str] = []
    refunded = Decimal(0)
    why = reason or "refund requested by the buyer"
    for invoice_id in repo.invoices_of_current_term(sub):
        credit = peers.billing.refund_invoice(
            request_id=f"{key}:credit:{invoice_id}", invoice_id=invoice_id, reason=why
        )
        if credit is not None:
            credit_ids.append(credit.credit_note_id)
            refunded += credit.amount
    peers.billing.cancel_installments(
        request_id=f"{key}:installments", subscription_id=sub.subscription_id, reason="refunded"
    )
    saved = repo.save(out.subscription, now)
    repo.add_transitions(saved.subscription_id, out.transitions)
    uow.publish(
        "subscription.refunded",
        account_id=saved.account_id,
        subscription_id=saved.subscription_id,
        subscription_refunded=events_pb2.SubscriptionRefunded(
            subscription=codec.snapshot_pb(saved),
            credit_note_id=credit_ids[0] if credit_ids else "",
            refunded_amount=_money(refunded, saved.currency),
        ),
    )
    _stage_events(uow, saved, out.transitions)
    return RefundResult(saved, credit_ids, refunded)


# -- quotes -------------------------------------------------------------------------------------------


def _quote(peers: Peers, sub: Subscription, lines: list[OrderLine], credit: Decimal = Decimal(0)) -> Quote:
    subtotal = _subtotal(lines)
    if lines:
        tax = peers.billing.preview_tax(sub, lines)
        return Quote(lines, tax.subtotal, tax.tax, tax.total, credit, sub.currency)
    return Quote(lines, subtotal, Decimal(0), subtotal, credit, sub.currency)


def quote_create(db: Database, peers: Peers, req: ops.OrderRequest) -> Quote:
    with db.read() as s:
        catalog = load_catalog(s)
    if not req.trial and not req.payment_method_id:
        req = replace(req, payment_method_id="quote")  # a quote charges nothing
    out = ops.create(req, catalog, "quote", db.clock.now())
    return _quote(peers, out.subscription, out.lines)


def _load(db: Database, subscription_id: str) -> tuple[Subscription, Catalog]:
    with db.read() as s:
        return Repository(s).get(subscription_id), load_catalog(s)


def quote_add_seats(db: Database, peers: Peers, subscription_id: str, seats: int) -> Quote:
    sub, catalog = _load(db, subscription_id)
    out = ops.add_seats(sub, seats, catalog, db.clock.now())
    return _quote(peers, sub, out.lines)


def quote_renew(db: Database, peers: Peers, subscription_id: str) -> Quote:
    sub, catalog = _load(db, subscription_id)
    out = ops.renew(sub, catalog, db.clock.now())
    return _quote(peers, sub, out.lines)


def quote_align(db: Database, peers: Peers, account_id: str, subscription_ids: list[str]) -> Quote:
    with db.read() as s:
        repo = Repository(s)
        subs = [repo.get(sid) for sid in sorted(set(subscription_ids))]
        catalog = load_catalog(s)
    out = ops.align(subs, account_id, catalog, db.clock.now())
    return _quote(peers, subs[0], out.lines)


def quote_upgrade(
    db: Database, peers: Peers, subscription_id: str, target_product_code: str, target_plan: Plan | None
) -> Quote:
    sub, catalog = _load(db, subscription_id)
    out = ops.upgrade(sub, catalog, db.clock.now(), "quote", target_product_code, target_plan)
    return _quote(peers, out.new, out.lines, out.credit)


def quote_convert_trial(db: Database, peers: Peers, subscription_id: str, term: Term, seats: int) -> Quote:
    sub, catalog = _load(db, subscription_id)
    out = ops.convert_trial(sub, term, seats, "quote", None, catalog, db.clock.now())
    return _quote(peers, sub, out.lines)
