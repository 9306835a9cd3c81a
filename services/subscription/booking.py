"""Booking an order, and the events of the service's changes.

The one path every order of the service takes (new, trial, seats, renewal, alignment,
upgrade, trial conversion; the sweep's automatic renewals and the renewals paid later).

`book_order` issues (and charges) the order's invoice through billing, saves the subscription (or adds
it, for a new one), writes the order row and the stage history, and publishes the order's event and the
stage changes, in that order, inside the caller's unit of work. A declined charge voids the invoice and
refuses the order, so nothing is saved. Billing requests carry ids derived from the caller's `request_id`
(or the order number), so a retried order never charges twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.subscription import codec
from services.subscription.adapters.peers import Billing, Entitlement, IssuedInvoice
from services.subscription.domain import lifecycle
from services.subscription.domain.model import OrderLine, Transition
from services.subscription.domain.subscription import Subscription, lifecycle_state
from shared.errors import RuleViolation
from shared.money import to_proto
from tenure.events.v1 import events_pb2

if TYPE_CHECKING:
    from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork


@dataclass
class Peers:
    billing: Billing
    entitlement: Entitlement | None = None


def new_order_number(now: datetime) -> str:
    return f"ORD-{now.astimezone(UTC):%Y%m%d}-{uuid.uuid4().hex[:10].upper()}"


def subtotal(lines: Sequence[OrderLine]) -> Decimal:
    return sum((ln.amount for ln in lines), Decimal(0))


def money(amount: Decimal, currency: str) -> Any:
    return to_proto(amount, currency)


@dataclass
class Order:
    """One order to book: the subscription as the order leaves it and what it pays for."""

    kind: str  # the invoice's kind, and the order's unless `order_kind` says otherwise
    sub: Subscription
    lines: list[OrderLine]
    request_id: str
    number: str
    order_kind: str = ""  # a trial is ordered as "trial" and not invoiced
    new: bool = False  # add the subscription instead of saving it
    period_start_date: date | None = None  # the order's period; the subscription's current term by default
    transitions: Sequence[Transition] = ()
    bill: bool = True  # False when the order costs nothing (a trial, an alignment of zero)
    bill_key: str | None = None  # the invoice's request id when not derived from `request_id`
    invoice_number: str = ""  # the order number on the invoice when not `number` (one order, many invoices)
    take_payment_method: bool = True  # the invoice's payment method type becomes the subscription's


@dataclass
class Booked:
    sub: Subscription  # as saved
    number: str
    invoice: IssuedInvoice | None
    lines: list[OrderLine] = field(default_factory=list)

    @property
    def invoice_id(self) -> str:
        return self.invoice.invoice_id if self.invoice else ""

    @property
    def total(self) -> Decimal:
        return self.invoice.total if self.invoice else Decimal(0)

    @property
    def subtotal(self) -> Decimal:
        return subtotal(self.lines)


def bill(
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


def book_order(
    uow: SubscriptionUnitOfWork,
    peers: Peers | None,
    order: Order,
    announce: Callable[[Booked], None],
    *,
    issued: IssuedInvoice | None = None,
    before_save: Callable[[IssuedInvoice | None], None] | None = None,
) -> Booked:
    """Bill, save, write the order and the history, announce. `issued`: the order's invoice when billing
    issued it already (the sweep's renewals); `before_save` runs after billing, before anything is
    written (an upgrade's changes to the old subscription)."""
    now = uow.now
    repo = uow.subscriptions
    sub = order.sub
    invoice = issued
    if invoice is None and order.bill:
        assert peers is not None, "an order to bill needs billing"
        invoice = bill(
            peers,
            request_id=order.bill_key if order.bill_key is not None else order.request_id,
            sub=sub,
            order_number=order.invoice_number or order.number,
            kind=order.kind,
            lines=order.lines,
            term_start_date=sub.current_period_start_date,
        )
    if invoice is not None and order.take_payment_method:
        sub.payment_method_type = invoice.payment_method_type or sub.payment_method_type
    if before_save is not None:
        before_save(invoice)
    saved = repo.add(sub, now) if order.new else repo.save(sub, now)
    booked = Booked(saved, order.number, invoice, order.lines)
    repo.add_order(
        order_number=order.number,
        sub=saved,
        kind=order.order_kind or order.kind,
        invoice_id=booked.invoice_id,
        subtotal=booked.subtotal,
        total=booked.total,
        order_date=saved.today(now),
        period_start_date=order.period_start_date or saved.current_period_start_date,
        lines=order.lines,
        request_id=order.request_id,
        now=now,
        price_book_version=uow.catalog.version(),  # rules §10: the version the order was priced from
    )
    if order.transitions:
        repo.add_transitions(saved.subscription_id, list(order.transitions))
    announce(booked)
    stage_events(uow, saved, order.transitions)
    return booked


# -- events ---------------------------------------------------------------------------------------------


def stage_events(uow: SubscriptionUnitOfWork, sub: Subscription, transitions: Sequence[Transition]) -> None:
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


def changed(uow: SubscriptionUnitOfWork, sub: Subscription, change: str, **order: Any) -> None:
    uow.publish(
        "subscription.changed",
        account_id=sub.account_id,
        subscription_id=sub.subscription_id,
        subscription_changed=events_pb2.SubscriptionChanged(
            subscription=codec.snapshot_pb(sub), change=change, **order
        ),
    )


def changed_by_order(uow: SubscriptionUnitOfWork, change: str) -> Callable[[Booked], None]:
    """`subscription.changed` naming the order that changed it (an alignment, a trial conversion)."""

    def announce(b: Booked) -> None:
        changed(
            uow,
            b.sub,
            change,
            order_number=b.number,
            amount=money(b.total, b.sub.currency),
            invoice_id=b.invoice_id,
        )

    return announce


def renewed(uow: SubscriptionUnitOfWork) -> Callable[[Booked], None]:
    """`subscription.renewed`: a renewal, manual or automatic, or a declined one paid later."""

    def announce(b: Booked) -> None:
        uow.publish(
            "subscription.renewed",
            account_id=b.sub.account_id,
            subscription_id=b.sub.subscription_id,
            subscription_renewed=events_pb2.SubscriptionRenewed(
                subscription=codec.snapshot_pb(b.sub),
                order_number=b.number,
                amount=money(b.total, b.sub.currency),
                invoice_id=b.invoice_id,
            ),
        )

    return announce


def created(uow: SubscriptionUnitOfWork, trial: bool = False) -> Callable[[Booked], None]:
    """`subscription.created`: a new subscription (a trial, a direct order, an accepted quote)."""

    def announce(b: Booked) -> None:
        uow.publish(
            "subscription.created",
            account_id=b.sub.account_id,
            subscription_id=b.sub.subscription_id,
            subscription_created=events_pb2.SubscriptionCreated(
                subscription=codec.snapshot_pb(b.sub),
                order_number=b.number,
                amount=money(b.total, b.sub.currency),
                invoice_id=b.invoice_id,
                trial=trial,
            ),
        )

    return announce


def seats_added(uow: SubscriptionUnitOfWork, seats: int) -> Callable[[Booked], None]:
    """`subscription.seats_added`: seats added mid-term, at a prorated price."""

    def announce(b: Booked) -> None:
        uow.publish(
            "subscription.seats_added",
            account_id=b.sub.account_id,
            subscription_id=b.sub.subscription_id,
            seats_added=events_pb2.SeatsAdded(
                subscription=codec.snapshot_pb(b.sub),
                order_number=b.number,
                seats_added=seats,
                prorated_amount=money(b.subtotal, b.sub.currency),
                invoice_id=b.invoice_id,
            ),
        )

    return announce


def record_moves(
    uow: SubscriptionUnitOfWork,
    before: Subscription,
    after: Subscription,
    transitions: Sequence[Transition],
    reminders: Sequence[int] = (),
) -> None:
    """History rows, reminder rows and their events for one subscription the lifecycle moved outside the
    sweep's set-based path (the sweep row by row, billing's events)."""
    state = lifecycle_state(after)
    for t in transitions:
        uow.subscriptions.add_transitions(
            after.subscription_id, [t], period_key=lifecycle.period_key(state, t)
        )
        uow.publish(
            "subscription.stage_changed",
            account_id=after.account_id,
            subscription_id=after.subscription_id,
            stage_changed=events_pb2.StageChanged(
                subscription=codec.snapshot_pb(replace(after, stage=t.to_stage)),
                from_stage=codec.stage_pb(t.from_stage),
                to_stage=codec.stage_pb(t.to_stage),
                reason=t.reason,
                transition_time=codec.ts_pb(t.at),
            ),
        )
    for days in reminders:
        uow.subscriptions.add_reminder(after.subscription_id, before.renewal_date, days, uow.now)
        uow.publish(
            "subscription.renewal_reminder",
            account_id=after.account_id,
            subscription_id=after.subscription_id,
            renewal_reminder=events_pb2.RenewalReminder(
                subscription=codec.snapshot_pb(after), days_before=days
            ),
        )
