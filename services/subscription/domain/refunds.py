"""Refunds (rules §3, §5): a full refund within the window of a direct purchase or renewal cancels at once;
cancelling an aligned term before its next renewal refunds what the alignment's extra days cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from services.subscription.domain import dates
from services.subscription.domain.aggregate import (
    REFUND_DAYS,
    TERM_WORDS,
    Outcome,
    Subscription,
    require_active,
    require_open,
)
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.model import (
    Channel,
    OrderLine,
    Stage,
    Term,
    Transition,
)
from shared.errors import RuleViolation

# -- refunds ------------------------------------------------------------------------------------------


def refund_window_days(term: Term) -> int:
    return REFUND_DAYS[term]


def check_refund(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    """Full refund within 15 days (monthly) or 30 days (annual, 3-year) of purchase or renewal; direct
    purchases only. Day 1 is the local date of the order that paid the current term."""
    if sub.channel is not Channel.DIRECT_ONLINE:
        contact = f"the partner {sub.partner_name}" if sub.partner_name else "the partner or support"
        raise RuleViolation(
            f"only direct purchases can be refunded here; contact {contact}",
            reason="REFUND_NOT_DIRECT",
            metadata={"partner_name": sub.partner_name},
        )
    require_open(sub, "request a refund")
    require_active(sub, "request a refund")
    limit = refund_window_days(sub.term)
    day = dates.day_number(sub.last_order_date, sub.today(now))
    if day > limit:
        raise RuleViolation(
            f"the refund window of {limit} days for a {TERM_WORDS[sub.term]} term has closed: the purchase "
            f"or renewal on {sub.last_order_date.isoformat()} was {day} days ago counting that day as day 1",
            reason="REFUND_WINDOW_CLOSED",
            metadata={"day": str(day), "window_days": str(limit)},
        )


def refund(sub: Subscription, catalog: Catalog, now: datetime) -> Outcome:
    """Cancelled at once: access ends now and nothing renews."""
    check_refund(sub, catalog, now)
    new = replace(sub, stage=Stage.CANCELLED, auto_renew=False, access_until=now)
    return Outcome(new, [], [Transition(sub.stage, Stage.CANCELLED, now, "refunded")])


# -- the alignment refund -----------------------------------------------------------------------------


def alignment_refundable(sub: Subscription, now: datetime) -> bool:
    """An alignment of the current term can be refunded while none of its extra days has begun: before the
    renewal instant of the term as bought (decision: once the extra days are in use they are not
    refunded, and the subscription runs to its aligned renewal date)."""
    return (
        sub.aligned_from_date is not None
        and sub.stage is Stage.ACTIVE
        and not sub.upgraded_to
        and now < dates.renewal_instant(sub.aligned_from_date, sub.time_zone)
    )


def refund_kind(sub: Subscription, catalog: Catalog, now: datetime) -> str:
    """ "full" inside the refund window; "alignment" after it when an alignment of the current term can
    still be refunded (rules §3: cancelling before the next renewal refunds the alignment's prorated
    amount); otherwise the refusal of `check_refund`."""
    try:
        check_refund(sub, catalog, now)
    except RuleViolation as e:
        if e.reason == "REFUND_WINDOW_CLOSED" and alignment_refundable(sub, now):
            return "alignment"
        raise
    return "full"


def refund_alignment(sub: Subscription, paid: Sequence[OrderLine], now: datetime) -> Outcome:
    """Undo the alignment of the current term: the renewal date, anchor and months go back to the term as
    bought, automatic renewal is off (the subscription is being cancelled) and each alignment line that was
    paid comes back as a credit line with the same inputs (seats, per-seat price, the extra days and the
    days of the term) and the opposite amount. The subscription keeps its access until the expiry of the
    term as bought."""
    if not alignment_refundable(sub, now):
        raise RuleViolation(
            "nothing to refund: the current term was not extended by an alignment, or its extra days have "
            "begun",
            reason="NOTHING_TO_CHANGE",
        )
    assert sub.aligned_from_date is not None and sub.aligned_from_anchor_date is not None
    credits = [
        replace(
            ln,
            description=f"Refund of the alignment: {ln.description}",
            amount=-ln.amount,
            subscription_id=sub.subscription_id,
        )
        for ln in paid
        if ln.amount > 0
    ]
    new = replace(
        sub,
        auto_renew=False,
        renewal_date=sub.aligned_from_date,
        anchor_date=sub.aligned_from_anchor_date,
        months_from_anchor=(
            sub.aligned_from_months if sub.aligned_from_months is not None else sub.months_from_anchor
        ),
        aligned_from_date=None,
        aligned_from_anchor_date=None,
        aligned_from_months=None,
    )
    return Outcome(new, credits)
