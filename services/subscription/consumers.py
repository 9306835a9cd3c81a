"""Billing's events that start or end a shutoff (rules §4), consumed through the event sink: each runs in
the transaction of the inbox row, so a redelivered event changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from services.subscription import codec
from services.subscription.adapters.peers import IssuedInvoice
from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork
from services.subscription.booking import Order, book_order, record_moves, renewed
from services.subscription.domain import lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.model import Stage, Transition
from services.subscription.domain.subscription import Subscription, lifecycle_state, with_state
from shared.errors import NotFound
from shared.money import from_proto
from tenure.events.v1 import events_pb2


def _event_subscription(
    uow: SubscriptionUnitOfWork, subscription_id: str, concerns: Callable[[Subscription], bool]
) -> Subscription | None:
    """The subscription an event is about, locked, when `concerns(sub)` says the event changes it. The
    check runs on an unlocked read first, so events that change nothing (most invoice_paid events) never
    hold the row lock a sweep would have to skip."""
    repo = uow.subscriptions
    if not subscription_id:
        return None
    try:
        if not concerns(repo.get(subscription_id)):
            return None
        sub = repo.get(subscription_id, lock=True)
    except NotFound:
        return None
    return sub if concerns(sub) else None


def on_invoice_overdue(uow: SubscriptionUnitOfWork, ev: events_pb2.Event) -> None:
    """An unpaid invoice reached its due date: the shutoff starts at the earlier of that date and the end of
    an unrenewed term. A pay-by-invoice renewal whose invoice is unpaid goes Expired on the due date even
    though its term had renewed."""
    inv = ev.invoice_overdue.invoice
    # already shut off, a trial, cancelled, or the old side of an upgrade that ends anyway: nothing to do
    sub = _event_subscription(
        uow, inv.subscription_id, lambda s: s.stage is Stage.ACTIVE and not s.upgraded_to
    )
    if sub is None:
        return
    now = uow.now
    due = codec.date_of(inv.due_date, "invoice.due_date") or sub.today(now)
    unrenewed = sub.renewal_date if (not sub.auto_renew and now >= sub.renewal_time) else None
    start = lifecycle.shutoff_start_date(unrenewed, due)
    reason = lifecycle.INVOICE_OVERDUE if start == due else lifecycle.TERM_ENDED
    state, first = lifecycle.start_shutoff(lifecycle_state(sub), start, reason)
    adv = lifecycle.advance(state, now)
    shut = replace(with_state(sub, adv.state), shutoff_invoice_id=inv.invoice_id if start == due else "")
    saved = uow.subscriptions.save(shut, now)
    record_moves(uow, sub, saved, [first, *adv.transitions], adv.reminders)


def on_invoice_paid(uow: SubscriptionUnitOfWork, ev: events_pb2.Event) -> None:
    """Paying the invoice that shut a subscription off returns it to Active with its original anniversary:
    a declined renewal's invoice starts the term it was for; an overdue invoice's term had renewed already."""
    inv = ev.invoice_paid.invoice
    repo = uow.subscriptions
    sub = _event_subscription(
        uow,
        inv.subscription_id,
        lambda s: s.stage in (Stage.EXPIRED, Stage.SUSPENDED) and s.shutoff_invoice_id == inv.invoice_id,
    )
    renewal = repo.renewal_by_invoice(inv.invoice_id) if inv.invoice_id else None
    now = uow.now
    if renewal is not None and renewal.status == "OPEN":
        renewal = repo.set_renewal_status(renewal, "PAID", now)
    if sub is None:
        return
    if (
        sub.shutoff_reason == lifecycle.PAYMENT_FAILED
        and renewal is not None
        and renewal.status == "DECLINED"
    ):
        out = ops.renew_term(sub, uow.catalog.load(), now, reason=lifecycle.PAID)
        total = from_proto(inv.total).amount if inv.HasField("total") else out.subtotal()
        order = Order(
            "renewal",
            out.subscription,
            out.lines,
            f"paid:{inv.invoice_id}",
            renewal.order_number,
            period_start_date=sub.renewal_date,
        )
        paid = IssuedInvoice(inv.invoice_id, total, "SUCCEEDED", "", None)
        saved = book_order(uow, None, order, renewed(uow), issued=paid).sub
        repo.set_renewal_status(renewal, "PAID", now)
        record_moves(uow, sub, saved, out.transitions)
        return
    t = Transition(sub.stage, Stage.ACTIVE, now, lifecycle.PAID)
    saved = repo.save(replace(sub, stage=Stage.ACTIVE, **ops.NO_SHUTOFF), now)
    record_moves(uow, sub, saved, [t])
