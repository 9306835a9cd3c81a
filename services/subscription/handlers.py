"""Use cases of the subscription service: one function per command, each inside one unit of work, and the
reads, each on a read-only one.

A command loads what it needs through the repositories of the unit of work (`uow.subscriptions` takes the
subscription's row lock), calls the pure domain rules and books the order (`booking.book_order`: billing's
invoice, the saved subscription, the order, the history and the events, in one transaction). Billing
requests carry ids derived from the caller's `request_id` (or the order number), so a retried order never
charges twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from services.subscription import codec
from services.subscription.adapters.peers import IssuedInvoice
from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork, reading, writing
from services.subscription.booking import (
    Booked,
    Order,
    Peers,
    book_order,
    changed,
    changed_by_order,
    created,
    money,
    new_order_number,
    renewed,
    seats_added,
    stage_events,
    subtotal,
)
from services.subscription.catalog_admin import CATALOG_LOCK
from services.subscription.domain import lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import (
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
from shared.auth.policy import ACCOUNT_ROLES, BUYER
from shared.db import Database, new_id
from shared.errors import InvalidInput, NotAllowed, NotFound
from tenure.events.v1 import events_pb2


@dataclass
class OrderResult:
    subscription: Subscription
    order_number: str = ""
    invoice_id: str = ""
    subtotal: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    lines: list[OrderLine] = field(default_factory=list)
    credit_note_ids: list[str] = field(default_factory=list)  # an alignment refund's
    refunded: Decimal = Decimal(0)


def _result(b: Booked) -> OrderResult:
    return OrderResult(b.sub, b.number, b.invoice_id, b.subtotal, b.total, b.lines)


@dataclass
class AlignResult:
    subscriptions: list[Subscription]
    order_number: str
    invoice_ids: list[str]
    total: Decimal
    currency: str
    lines: list[OrderLine] = field(default_factory=list)


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
    lines: list[OrderLine] = field(default_factory=list)


@dataclass
class RefundResult:
    subscription: Subscription
    credit_note_ids: list[str]
    refunded: Decimal
    lines: list[OrderLine] = field(default_factory=list)


def seed(db: Database) -> bool:
    """Load the demo catalog on first start (a no-op afterwards)."""
    with writing(db) as uow:
        return uow.catalog.seed(uow.now)


def list_products(db: Database) -> list[tuple[Product, list[str]]]:
    with reading(db) as uow:
        catalog = uow.catalog.load()
    return [(p, catalog.upgrades_to(p.code)) for p in catalog.products.values()]


def list_prices(
    db: Database, product_code: str, currency: str, channel: Channel, on: date | None = None
) -> tuple[list[Price], int]:
    """The price book on the day `on` (default today, UTC; rules §10) and its version."""
    with reading(db) as uow:
        catalog = uow.catalog.load()
    if currency and currency not in catalog.currencies():
        raise NotFound(f"the price book has no prices in {currency}", reason="PRICE_NOT_FOUND")
    day = on or db.clock.now().astimezone(UTC).date()
    return catalog.prices(product_code, currency, channel, day), catalog.version


def set_exchange_rate(
    uow: SubscriptionUnitOfWork, currency: str, channel: Channel, rate: str
) -> RateAdjustment:
    group = channel_group(channel)
    uow.lock_key(CATALOG_LOCK)  # the new rate is a new price-book version, numbered under the catalog's lock
    current = uow.catalog.rate(currency, group, lock=True)
    if current is None:
        if currency == "USD":
            adjust_rate(ExchangeRate("USD", group, Decimal(1)), rate, uow.now.date())  # raises
        raise NotFound(f"the price book has no prices in {currency!r}", reason="PRICE_NOT_FOUND")
    adj = adjust_rate(current, rate, uow.now.astimezone(UTC).date())
    uow.catalog.save_rate(adj.applied, uow.now)
    return adj


# -- reads --------------------------------------------------------------------------------------------


def get_subscription(db: Database, subscription_id: str) -> Subscription:
    with reading(db) as uow:
        return uow.subscriptions.get(subscription_id)


def list_subscriptions(
    db: Database,
    account_id: str,
    stage: Stage | None,
    offset: int,
    limit: int,
    *,
    person: str = "",
    email: str = "",
    order_number: str = "",
) -> list[Subscription]:
    """One account's subscriptions; a `person` who names no account gets those of every account where
    they are the buyer or an admin; an operator or a service who names none, those of every account.
    `email` and `order_number` narrow any of these (an operator's lookups by buyer, member or order)."""
    email, order_number = email.strip().lower(), order_number.strip()
    with reading(db) as uow:
        accounts: str | list[str] | None = account_id or (
            uow.members.accounts_of(person, LISTS) if person else None
        )
        on_team = uow.members.accounts_of(email, ACCOUNT_ROLES) if email else []
        return uow.subscriptions.list(
            accounts, stage, offset, limit, email=email, email_accounts=on_team, order_number=order_number
        )


def self_service_options(db: Database, subscription_id: str) -> list[Option]:
    with reading(db) as uow:
        repo = uow.subscriptions
        sub = repo.get(subscription_id)
        catalog = uow.catalog.load()
        others = repo.of_account(sub.account_id)
        invoiced = repo.account_has_invoice_subscription(sub.account_id, other_than=sub.subscription_id)
    return ops.self_service_options(
        sub, catalog, db.clock.now(), others=others, account_has_invoice_subscription=invoiced
    )


def lifecycle_history(db: Database, subscription_id: str) -> list[Transition]:
    with reading(db) as uow:
        uow.subscriptions.get(subscription_id)
        return uow.subscriptions.transitions(subscription_id)


# -- orders -------------------------------------------------------------------------------------------


def _open_account(uow: SubscriptionUnitOfWork, req: ops.OrderRequest, person: str) -> None:
    """The order's account: its first order makes the buyer its buyer and primary admin here, in the
    order's transaction, so they can act on it at once. Under the account's lock, so two first orders
    cannot both open it: the second finds the first one's team (and a person not its buyer is refused,
    as the permission check would have)."""
    if not req.account_id:
        return
    uow.lock_key(f"account:{req.account_id}")
    if uow.members.open_account(req.account_id, req.buyer_email) or not person:
        return
    roles = uow.members.roles(req.account_id, person)
    if not roles:
        raise NotFound(f"account {req.account_id} not found", reason="NOT_FOUND")
    if BUYER not in roles:
        raise NotAllowed("only the account's buyer may order on it", reason="PERMISSION_DENIED")


def create_subscription(
    uow: SubscriptionUnitOfWork, peers: Peers, req: ops.OrderRequest, request_id: str, *, person: str = ""
) -> OrderResult:
    """`person`: the e-mail of the person placing the order ("" for an operator)."""
    _open_account(uow, req, person)
    now = uow.now
    out = ops.create(req, uow.catalog.load(), new_id("sub"), now)
    order = Order(
        "new",
        out.subscription,
        out.lines,
        request_id,
        new_order_number(now),
        order_kind="trial" if req.trial else "new",
        new=True,
        transitions=out.transitions,
        bill=bool(out.lines),
    )

    return _result(book_order(uow, peers, order, created(uow, trial=req.trial)))


def add_seats(
    uow: SubscriptionUnitOfWork, peers: Peers, subscription_id: str, seats: int, request_id: str
) -> OrderResult:
    now = uow.now
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.add_seats(sub, seats, uow.catalog.load(), now)
    order = Order(
        "add_seats",
        out.subscription,
        out.lines,
        request_id,
        new_order_number(now),
        period_start_date=sub.today(now),
        take_payment_method=False,
    )

    return _result(book_order(uow, peers, order, seats_added(uow, seats)))


def set_renewal_seats(
    uow: SubscriptionUnitOfWork, peers: Peers, subscription_id: str, seats: int
) -> Subscription:
    catalog = uow.catalog.load()
    sub = uow.subscriptions.get(subscription_id, lock=True)
    ops.check_set_renewal_seats(sub, catalog, uow.now)
    assigned = peers.entitlement.assigned_seats(subscription_id) if peers.entitlement else 0
    out = ops.set_renewal_seats(sub, seats, assigned, catalog, uow.now)
    saved = uow.subscriptions.save(out.subscription, uow.now)
    changed(uow, saved, "renewal_seats")
    return saved


def change_term(uow: SubscriptionUnitOfWork, subscription_id: str, term: Term) -> Subscription:
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.change_term(sub, term, uow.catalog.load(), uow.now)
    saved = uow.subscriptions.save(out.subscription, uow.now)
    changed(uow, saved, "term")
    return saved


def _renew(
    uow: SubscriptionUnitOfWork, peers: Peers, before: Subscription, out: ops.Outcome, request_id: str
) -> OrderResult:
    """A renewal ordered by a person (manual, or turning automatic renewal on while shut off)."""
    order = Order(
        "renewal",
        out.subscription,
        out.lines,
        request_id,
        new_order_number(uow.now),
        transitions=out.transitions,
    )
    b = book_order(uow, peers, order, renewed(uow))
    assert b.invoice is not None
    uow.subscriptions.record_renewal(
        subscription_id=b.sub.subscription_id,
        period_start_date=b.sub.current_period_start_date,
        invoice_id=b.invoice_id,
        order_number=b.number,
        status="OPEN" if b.invoice.payment_status == "PENDING" else "PAID",
        now=uow.now,
    )
    if before.shutoff_reason == lifecycle.PAYMENT_FAILED and before.shutoff_invoice_id:
        # the declined automatic renewal's invoice is replaced by this one
        peers.billing.void_invoice(
            request_id=f"{before.shutoff_invoice_id}:void",
            invoice_id=before.shutoff_invoice_id,
            reason=f"replaced by the renewal invoice {b.invoice_id}",
        )
    return _result(b)


def set_auto_renew(
    uow: SubscriptionUnitOfWork, peers: Peers, subscription_id: str, on: bool, request_id: str
) -> OrderResult:
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.set_auto_renew(sub, on, uow.catalog.load(), uow.now)
    if out.lines:  # turning it on while Expired or Suspended reinstated it
        return _renew(uow, peers, sub, out, request_id)
    if not on and ops.alignment_refundable(out.subscription, uow.now):
        r = _refund_alignment(uow, peers, out.subscription, "automatic renewal turned off")
        return OrderResult(
            r.subscription, lines=r.lines, credit_note_ids=r.credit_note_ids, refunded=r.refunded
        )
    saved = uow.subscriptions.save(out.subscription, uow.now)
    changed(uow, saved, "auto_renew")
    return OrderResult(saved)


def _refund_alignment(
    uow: SubscriptionUnitOfWork, peers: Peers, sub: Subscription, reason: str
) -> RefundResult:
    """Cancelling a term extended by an alignment before its next renewal (rules §3): the alignment is
    undone and each alignment invoice of the term credited by what it charged (tax included). The credit
    notes' request ids derive from the alignment invoices, so a retry, or a refund request after turning
    automatic renewal off, never credits twice."""
    now = uow.now
    orders = uow.subscriptions.alignment_orders(sub)
    out = ops.refund_alignment(sub, [ln for o in orders for ln in o.lines], now)
    credit_ids: list[str] = []
    refunded = Decimal(0)
    for o in orders:
        if not o.invoice_id or o.total <= 0:
            continue
        credit = peers.billing.credit_invoice(
            request_id=f"{o.invoice_id}:alignment-refund",
            invoice_id=o.invoice_id,
            amount=o.total,
            currency=sub.currency,
            reason=f"alignment refunded: {reason}",
        )
        if credit is not None:
            credit_ids.append(credit.credit_note_id)
            refunded += credit.amount
    saved = uow.subscriptions.save(out.subscription, now)
    changed(
        uow,
        saved,
        "alignment_refunded",
        amount=money(refunded, saved.currency),
        invoice_id=orders[0].invoice_id if orders else "",
    )
    return RefundResult(saved, credit_ids, refunded, out.lines)


def renew(uow: SubscriptionUnitOfWork, peers: Peers, subscription_id: str, request_id: str) -> OrderResult:
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.renew(sub, uow.catalog.load(), uow.now)
    return _renew(uow, peers, sub, out, request_id)


def align(
    uow: SubscriptionUnitOfWork, peers: Peers, account_id: str, subscription_ids: list[str], request_id: str
) -> AlignResult:
    """One order; each extended subscription gets its own invoice (so a later refund of one credits only
    its own extension)."""
    if not account_id:
        raise InvalidInput("account_id is required", field="account_id")
    now = uow.now
    subs = [uow.subscriptions.get(sid, lock=True) for sid in sorted(set(subscription_ids))]
    out = ops.align(subs, account_id, uow.catalog.load(), now)
    order_number = new_order_number(now)
    invoice_ids: list[str] = []
    total = Decimal(0)
    saved = []
    for before, s in zip(subs, out.subscriptions, strict=True):
        if s.renewal_date == before.renewal_date:
            saved.append(before)
            continue
        lines = [ln for ln in out.lines if ln.subscription_id == s.subscription_id]
        order = Order(
            "align",
            s,
            lines,
            request_id,
            order_number,
            bill=subtotal(lines) > 0,
            bill_key=f"{request_id}:{s.subscription_id}" if request_id else "",
            invoice_number=f"{order_number}/{len(invoice_ids) + 1}",
            take_payment_method=False,
        )
        b = book_order(uow, peers, order, changed_by_order(uow, "aligned"))
        if b.invoice is not None:
            invoice_ids.append(b.invoice_id)
            total += b.total
        saved.append(b.sub)
    return AlignResult(saved, order_number, invoice_ids, total, subs[0].currency, out.lines)


def upgrade(
    uow: SubscriptionUnitOfWork,
    peers: Peers,
    subscription_id: str,
    target_product_code: str,
    target_plan: Plan | None,
    request_id: str,
) -> UpgradeResult:
    now = uow.now
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.upgrade(sub, uow.catalog.load(), now, new_id("sub"), target_product_code, target_plan)
    order = Order(
        "upgrade",
        out.new,
        out.lines,
        request_id,
        new_order_number(now),
        new=True,
        transitions=out.transitions,
    )
    olds: list[Subscription] = []

    def end_the_old(_invoice: IssuedInvoice | None) -> None:
        if sub.installments > 1:  # installments not yet due are cancelled, not credited
            peers.billing.cancel_installments(
                request_id=f"{request_id or order.number}:installments",
                subscription_id=sub.subscription_id,
                reason="upgraded",
            )
        olds.append(uow.subscriptions.save(out.old, now))

    def announce(b: Booked) -> None:
        uow.publish(
            "subscription.upgraded",
            account_id=b.sub.account_id,
            subscription_id=olds[0].subscription_id,
            subscription_upgraded=events_pb2.SubscriptionUpgraded(
                old_subscription=codec.snapshot_pb(olds[0]),
                new_subscription=codec.snapshot_pb(b.sub),
                order_number=b.number,
                credit=money(out.credit, b.sub.currency),
                old_access_until_time=codec.ts_pb(out.old_access_until),
                amount=money(b.total, b.sub.currency),
                invoice_id=b.invoice_id,
            ),
        )

    b = book_order(uow, peers, order, announce, before_save=end_the_old)
    return UpgradeResult(
        olds[0],
        b.sub,
        b.number,
        b.invoice_id,
        out.credit,
        b.total,
        out.old_access_until,
        out.serial_number_update_required,
        out.reinstall_required,
        out.lines,
    )


def schedule_product_switch(
    uow: SubscriptionUnitOfWork, subscription_id: str, product_code: str
) -> Subscription:
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.schedule_product_switch(sub, product_code, uow.catalog.load(), uow.now)
    saved = uow.subscriptions.save(out.subscription, uow.now)
    changed(uow, saved, "product_switch")
    return saved


def convert_trial(
    uow: SubscriptionUnitOfWork,
    peers: Peers,
    subscription_id: str,
    term: Term,
    seats: int,
    payment_method_id: str,
    request_id: str,
) -> OrderResult:
    now = uow.now
    sub = uow.subscriptions.get(subscription_id, lock=True)
    out = ops.convert_trial(sub, term, seats, payment_method_id, None, uow.catalog.load(), now)
    order = Order(
        "trial_converted",
        out.subscription,
        out.lines,
        request_id,
        new_order_number(now),
        transitions=out.transitions,
    )
    return _result(book_order(uow, peers, order, changed_by_order(uow, "trial_converted")))


def change_payment_method(
    uow: SubscriptionUnitOfWork, peers: Peers, subscription_id: str, payment_method_id: str
) -> Subscription:
    catalog = uow.catalog.load()
    repo = uow.subscriptions
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
    changed(uow, saved, "payment_method")
    return saved


def request_refund(
    uow: SubscriptionUnitOfWork, peers: Peers, subscription_id: str, reason: str, request_id: str
) -> RefundResult:
    repo = uow.subscriptions
    now = uow.now
    sub = repo.get(subscription_id, lock=True)
    catalog = uow.catalog.load()
    if ops.refund_kind(sub, catalog, now) == "alignment":
        return _refund_alignment(uow, peers, sub, reason or "refund requested by the buyer")
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
            refunded_amount=money(refunded, saved.currency),
        ),
    )
    stage_events(uow, saved, out.transitions)
    return RefundResult(saved, credit_ids, refunded)
