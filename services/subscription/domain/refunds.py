"""Refunds (rules §3): a full refund within the window of a direct purchase or renewal cancels at once."""

from __future__ import annotations

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
