"""Use cases of partner quotes (rules §9): create, issue, revise, read and accept.

Issuing prices the quote's line with the domain function its order will book (on the subscription, the
catalog and the clock of the moment) and asks billing for the tax. Accepting books the order through
`booking.book_order`, the path of every direct order (the invoice with its tax and installments, the
saved subscription, the order row, the history and the events), on channel `PARTNER_QUOTE` with the
quote's number on every line, then marks the quote accepted and tells the partner
(`subscription.quote_accepted`). The quote row is locked and its status checked in the same transaction,
and billing's request id derives from the quote number, so a quote books one order however often it is
accepted.

Issuing a version publishes `subscription.quote_issued` (the buyer gets the quote as a PDF); the lifecycle
sweep records an issued quote past its validity date as expired and publishes `subscription.quote_expired`
once (`expire_due`). Every quote event names the partner's contact (the staff member who made it, in the
language they chose), whom the notification service writes to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from services.subscription import codec
from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork, reading
from services.subscription.booking import (
    Booked,
    Order,
    Peers,
    book_order,
    changed_by_order,
    created,
    money,
    new_order_number,
    renewed,
    seats_added,
)
from services.subscription.domain import quotes as rules
from services.subscription.domain.lifecycle import PAYMENT_FAILED
from services.subscription.domain.quotes import LineKind, Quote
from services.subscription.domain.subscription import Subscription
from shared.db import Database, new_id
from shared.errors import NotFound
from tenure.events.v1 import events_pb2


@dataclass(frozen=True)
class Caller:
    """Who is calling: an operator, or a person (their e-mail) who may be a partner's staff member."""

    email: str = ""
    partner: str = ""
    operator: bool = False


def new_quote_number(uow: SubscriptionUnitOfWork) -> str:
    return f"Q-{uow.now.astimezone(UTC):%Y%m%d}-{uuid.uuid4().hex[:8].upper()}"


def _hidden(number: str) -> NotFound:
    return NotFound(f"quote {number} not found", reason=rules.QUOTE_NOT_FOUND)


def create_quote(
    uow: SubscriptionUnitOfWork,
    partner: str,
    account_id: str,
    contacts: rules.Contacts,
    currency: str,
    country_code: str,
    time_zone: str,
    lines: list[rules.LineSpec],
    *,
    partner_email: str = "",
    partner_language: str = "en",
) -> Quote:
    q = rules.draft(
        new_quote_number(uow),
        partner,
        account_id,
        contacts,
        currency,
        country_code,
        time_zone,
        lines,
        uow.now,
        partner_email=partner_email,
        partner_language=partner_language,
    )
    for ln in q.lines:  # a partner quotes only the subscriptions of the account it names
        for sid in (ln.subscription_id, ln.align_to):
            if sid and uow.subscriptions.get(sid).account_id != q.account_id:
                raise NotFound(f"subscription {sid} not found", reason="SUBSCRIPTION_NOT_FOUND")
    return uow.quotes.add(q, uow.now)


def _subscription_of(uow: SubscriptionUnitOfWork, q: Quote, *, lock: bool = False) -> Subscription | None:
    (ln,) = q.lines
    return uow.subscriptions.get(ln.subscription_id, lock=lock) if ln.subscription_id else None


def _aligned_to(uow: SubscriptionUnitOfWork, q: Quote) -> Subscription | None:
    (ln,) = q.lines
    return uow.subscriptions.get(ln.align_to) if ln.kind is LineKind.EXTENSION else None


def partner_contact(q: Quote) -> events_pb2.PartnerContact:
    return events_pb2.PartnerContact(partner=q.partner, email=q.partner_email, language=q.partner_language)


def _issue(uow: SubscriptionUnitOfWork, peers: Peers, q: Quote, superseded: int = 0) -> Quote:
    sub = _subscription_of(uow, q)
    out = rules.order_of(
        q, sub, uow.catalog.load(), uow.now, subscription_id="", align_to=_aligned_to(uow, q)
    )
    tax = peers.billing.preview_tax(out.subscription, out.lines)
    issued = uow.quotes.save(
        rules.issue(q, out.lines, tax.subtotal, tax.tax, tax.total, q.today(uow.now)), uow.now
    )
    cur = issued.currency
    uow.publish(
        "subscription.quote_issued",
        account_id=issued.account_id,
        subscription_id=sub.subscription_id if sub is not None else "",
        quote_issued=events_pb2.QuoteIssued(
            quote_number=issued.quote_number,
            version=issued.version,
            partner_contact=partner_contact(issued),
            buyer_email=issued.contacts.buyer_email,
            buyer_name=issued.contacts.buyer_name,
            buyer_language=issued.contacts.buyer_language,
            currency_code=cur,
            lines=[
                events_pb2.QuoteLine(
                    description=ln.description,
                    quantity=ln.quantity,
                    unit_price=money(ln.unit_price, cur),
                    amount=money(ln.amount, cur),
                    period_start_date=codec.date_pb(ln.period_start_date),
                    period_end_date=codec.date_pb(ln.period_end_date),
                )
                for ln in issued.priced
            ],
            subtotal=money(issued.subtotal, cur),
            tax=money(issued.tax, cur),
            total=money(issued.total, cur),
            issue_date=codec.date_pb(issued.issue_date) if issued.issue_date else None,
            valid_until_date=codec.date_pb(issued.valid_until) if issued.valid_until else None,
            superseded_version=superseded,
        ),
    )
    return issued


def issue_quote(uow: SubscriptionUnitOfWork, peers: Peers, partner: str, quote_number: str) -> Quote:
    q = uow.quotes.get(quote_number, lock=True)
    rules.require_partner(q, partner, "issue the quote")
    return _issue(uow, peers, q)


def revise_quote(
    uow: SubscriptionUnitOfWork,
    peers: Peers,
    partner: str,
    quote_number: str,
    contacts: rules.Contacts | None,
    lines: list[rules.LineSpec] | None,
) -> tuple[Quote, int]:
    """(the new version, the version it superseded or 0). An issued quote is re-issued at once."""
    q = uow.quotes.get(quote_number, lock=True)
    rules.require_partner(q, partner, "change the quote")
    was_issued = q.status_on(q.today(uow.now)) is not rules.QuoteStatus.DRAFT
    old, nxt = rules.revise(q, contacts, lines)
    if old.version == nxt.version:
        return uow.quotes.save(nxt, uow.now), 0
    uow.quotes.save(old, uow.now)
    nxt = replace(nxt, create_time=uow.now)
    uow.quotes.add(nxt, uow.now)
    return (_issue(uow, peers, nxt, old.version) if was_issued else nxt), old.version


def get_quote(db: Database, caller: Caller, quote_number: str, version: int = 0) -> Quote:
    with reading(db) as uow:
        q = uow.quotes.get(quote_number, version)
    if not rules.visible_to(q, operator=caller.operator, partner=caller.partner, email=caller.email):
        raise _hidden(quote_number)
    return q


@dataclass
class Accepted:
    quote: Quote
    booked: Booked


def accept_quote(
    uow: SubscriptionUnitOfWork,
    peers: Peers,
    caller: Caller,
    quote_number: str,
    version: int,
    payment_method_id: str,
    request_id: str,
) -> Accepted:
    now = uow.now
    q = uow.quotes.get(quote_number, lock=True)
    if not rules.visible_to(q, operator=False, partner=caller.partner, email=caller.email):
        raise _hidden(quote_number)
    rules.check_accept(q, version, caller.email, q.today(now))
    if not payment_method_id:
        from shared.errors import InvalidInput

        raise InvalidInput("payment_method_id is required", field="payment_method_id")
    (ln,) = q.lines
    if ln.kind is LineKind.NEW_SUBSCRIPTION:
        uow.lock_key(f"account:{q.account_id}")
        uow.members.open_account(q.account_id, q.contacts.buyer_email)
    before = _subscription_of(uow, q, lock=True)
    sub_id = before.subscription_id if before is not None else new_id("sub")
    out = rules.order_of(
        q,
        before,
        uow.catalog.load(),
        now,
        subscription_id=sub_id,
        payment_method_id=payment_method_id,
        align_to=_aligned_to(uow, q),
    )
    number = new_order_number(now)
    kind = {
        LineKind.NEW_SUBSCRIPTION: "new",
        LineKind.ADDED_SEATS: "add_seats",
        LineKind.EXTENSION: "align",
    }.get(ln.kind, "renewal")
    order = Order(
        kind,
        out.subscription,
        out.lines,
        request_id,
        number,
        new=before is None,
        transitions=out.transitions,
        bill_key=f"quote:{q.quote_number}:{q.version}",
        period_start_date=out.lines[0].period_start_date,
    )

    if kind == "renewal":
        announce = renewed(uow)
    elif kind == "new":
        announce = created(uow)
    elif kind == "align":
        announce = changed_by_order(uow, "aligned")
    else:
        announce = seats_added(uow, ln.seats)
    b = book_order(uow, peers, order, announce)
    if kind == "renewal" and b.invoice is not None:
        uow.subscriptions.record_renewal(
            subscription_id=b.sub.subscription_id,
            period_start_date=b.sub.current_period_start_date,
            invoice_id=b.invoice_id,
            order_number=b.number,
            status="OPEN" if b.invoice.payment_status == "PENDING" else "PAID",
            now=now,
        )
        if before is not None and before.shutoff_reason == PAYMENT_FAILED and before.shutoff_invoice_id:
            # the declined automatic renewal's invoice is replaced by the quote's: the period is billed once
            peers.billing.void_invoice(
                request_id=f"{before.shutoff_invoice_id}:void",
                invoice_id=before.shutoff_invoice_id,
                reason=f"replaced by quote {q.quote_number} v{q.version} (invoice {b.invoice_id})",
            )
    accepted = uow.quotes.save(
        replace(
            q,
            status=rules.QuoteStatus.ACCEPTED,
            order_number=b.number,
            invoice_id=b.invoice_id,
            subscription_id=b.sub.subscription_id,
        ),
        now,
    )
    uow.publish(
        "subscription.quote_accepted",
        account_id=b.sub.account_id,
        subscription_id=b.sub.subscription_id,
        quote_accepted=events_pb2.QuoteAccepted(
            quote_number=q.quote_number,
            version=q.version,
            partner=q.partner,
            buyer_email=q.contacts.buyer_email,
            order_number=b.number,
            invoice_id=b.invoice_id,
            amount=money(b.total, b.sub.currency),
            subscription=codec.snapshot_pb(b.sub),
            partner_contact=partner_contact(q),
        ),
    )
    return Accepted(accepted, b)


# -- expiry (the lifecycle sweep) -------------------------------------------------------------------


def due_to_expire(uow: SubscriptionUnitOfWork, as_of: datetime, limit: int = 500) -> bool:
    """Whether an issued quote's validity has ended by `as_of` (the sweep then records it)."""
    return any(rules.expire(q, as_of) for q in uow.quotes.issued_until(as_of.astimezone(UTC).date(), limit))


def expire_due(uow: SubscriptionUnitOfWork, as_of: datetime, limit: int = 500) -> int:
    """Record the issued quotes whose validity ended by `as_of` as expired, each telling its partner once
    (`subscription.quote_expired`); returns how many."""
    done = 0
    # the last valid day of a quote expiring by now is at most yesterday in the zone furthest behind UTC
    for q in uow.quotes.issued_until(as_of.astimezone(UTC).date(), limit):
        expired = rules.expire(q, as_of)
        if expired is None:
            continue
        uow.quotes.save(expired, uow.now)
        cur = q.currency
        uow.publish(
            "subscription.quote_expired",
            account_id=q.account_id,
            subscription_id=q.lines[0].subscription_id if q.lines else "",
            quote_expired=events_pb2.QuoteExpired(
                quote_number=q.quote_number,
                version=q.version,
                partner_contact=partner_contact(q),
                buyer_email=q.contacts.buyer_email,
                buyer_name=q.contacts.buyer_name,
                total=money(q.total, cur),
                valid_until_date=codec.date_pb(q.valid_until) if q.valid_until else None,
            ),
        )
        done += 1
    return done


def next_expiry_after(uow: SubscriptionUnitOfWork, after: datetime) -> datetime | None:
    """The first instant after `after` at which an issued quote expires (the test clock steps to it)."""
    # zones run from UTC-12 to UTC+14: a quote expiring after `after` was valid on its UTC date - 1 or later
    first = after.astimezone(UTC).date() - timedelta(days=1)
    times = [t for q in uow.quotes.issued_from(first) if (t := q.expiry_time) is not None and t > after]
    return min(times, default=None)
