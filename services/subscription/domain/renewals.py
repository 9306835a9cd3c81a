"""Renewal (rules §2, §3): the next term's length, automatic renewal, manual renewal and reinstatement, the
next term itself (`renew_term`, also the sweep's), and aligning the renewal dates of an account's
subscriptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from services.subscription.domain import dates
from services.subscription.domain.aggregate import (
    NO_SHUTOFF,
    NOT_ALIGNED,
    TERM_WORDS,
    Outcome,
    Subscription,
    describe,
    installments_for,
    require_active,
    require_before_renewal,
    require_no_unpaid_invoice,
    require_open,
    require_self_service,
)
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.model import (
    OrderLine,
    PaymentMethodType,
    Stage,
    Term,
    Transition,
)
from services.subscription.domain.pricing import line_amount, prorate
from shared.errors import InvalidInput, RuleViolation

# -- term, auto-renew, renewal ------------------------------------------------------------------------


def check_change_term(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "change the term")
    require_open(sub, "change the term")


def change_term(sub: Subscription, term: Term, catalog: Catalog, now: datetime) -> Outcome:
    """The new term takes effect at the next renewal (and keeps the renewal price if renewed on time)."""
    check_change_term(sub, catalog, now)
    catalog.price(
        sub.pending_product_code or sub.product_code,
        sub.plan,
        term,
        sub.currency,
        sub.channel,
        sub.renewal_date,
    )
    pending = None if term is sub.term else term
    if pending == sub.pending_term:
        raise RuleViolation(f"the subscription already renews {TERM_WORDS[term]}", reason="NOTHING_TO_CHANGE")
    return Outcome(replace(sub, pending_term=pending))


def check_set_auto_renew(sub: Subscription, on: bool, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "turn automatic renewal " + ("on" if on else "off"))
    require_open(sub, "turn automatic renewal " + ("on" if on else "off"))
    if sub.stage in (Stage.EXPIRED, Stage.SUSPENDED):
        if not on:
            raise RuleViolation(
                "automatic renewal is already off: the term has ended", reason="NOTHING_TO_CHANGE"
            )
        require_no_unpaid_invoice(sub, "turn automatic renewal on")
        return  # turning it on reinstates
    require_before_renewal(sub, now, "change automatic renewal")


def set_auto_renew(sub: Subscription, on: bool, catalog: Catalog, now: datetime) -> Outcome:
    """Off at any time before the renewal instant (access kept until expiry, nothing charged). On before the
    renewal instant, or while Expired or Suspended, which renews it (reinstatement)."""
    check_set_auto_renew(sub, on, catalog, now)
    if on and sub.stage in (Stage.EXPIRED, Stage.SUSPENDED):
        return renew_term(replace(sub, auto_renew=True), catalog, now, reason="reinstated")
    return Outcome(replace(sub, auto_renew=on))


def check_renew(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "renew")
    require_open(sub, "renew")
    require_no_unpaid_invoice(sub, "renew")
    if sub.stage is Stage.ACTIVE:
        opens = dates.renewal_window_opens(sub.renewal_date)
        if sub.today(now) < opens:
            raise RuleViolation(
                f"renewal opens 90 days before the renewal date, on {opens.isoformat()}",
                reason="RENEWAL_WINDOW_NOT_OPEN",
                metadata={"window_opens_date": opens.isoformat()},
            )


def renew(sub: Subscription, catalog: Catalog, now: datetime) -> Outcome:
    """Manual renewal: from 90 days before the renewal instant, or while Expired or Suspended."""
    check_renew(sub, catalog, now)
    return renew_term(sub, catalog, now, reason="renewed")


def renew_term(sub: Subscription, catalog: Catalog, now: datetime, *, reason: str = "renewed") -> Outcome:
    """The next term: starts at the original renewal instant (no gap, anniversary kept), with the pending
    term, product and renewal seats, at the renewal price of that term in effect on the renewal date
    (rules §10: a price change from a day reaches renewals on or after it, never the term running)."""
    term = sub.pending_term or sub.term
    product = catalog.product(sub.pending_product_code or sub.product_code)
    start = sub.renewal_date
    price = catalog.price(product.code, sub.plan, term, sub.currency, sub.channel, start)
    months = sub.months_from_anchor + term.months
    renewal = dates.add_months(sub.anchor_date, months)
    seats = sub.renewal_seats
    line = OrderLine(
        description=f"Renewal: {describe(product, sub.plan, term)}",
        quantity=seats,
        unit_price=price.renewal_price,
        currency=sub.currency,
        amount=line_amount(price.renewal_price, seats, sub.currency),
        period_start_date=start,
        period_end_date=renewal,
        subscription_id=sub.subscription_id,
    )
    new = replace(
        sub,
        product_code=product.code,
        product_name=product.name,
        shutoff_policy=product.shutoff_policy,
        included_product_codes=product.contains,
        term=term,
        seats=seats,
        unit_price=price.renewal_price,
        stage=Stage.ACTIVE,
        current_period_start_date=start,
        months_from_anchor=months,
        renewal_date=renewal,
        last_order_date=max(sub.today(now), start),  # an early renewal counts from the new term's start
        pending_term=None,
        pending_product_code="",
        installments=installments_for(term, start),
        last_reminder_days=None,
        **NO_SHUTOFF,
        **NOT_ALIGNED,
    )
    transitions = []
    if sub.stage is not Stage.ACTIVE:
        transitions.append(Transition(sub.stage, Stage.ACTIVE, now, reason))
    return Outcome(new, [line], transitions)


# -- alignment ----------------------------------------------------------------------------------------


def check_align_one(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "align renewal dates")
    require_open(sub, "align renewal dates")
    require_active(sub, "align renewal dates")
    if sub.payment_method_type is PaymentMethodType.PAYPAL:
        raise RuleViolation(
            "subscriptions paid with PayPal cannot be aligned; pay by card to align them",
            reason="ALIGN_PAYPAL",
        )
    require_before_renewal(sub, now, "align renewal dates")


@dataclass
class AlignOutcome:
    subscriptions: list[Subscription]
    lines: list[OrderLine]
    target_date: date

    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def extend_to(s: Subscription, target: Subscription) -> tuple[Subscription, OrderLine]:
    """`s` extended to `target`'s renewal date, and the line that bills it: the extra days of all its
    seats, prorated over the days of its term as bought. The term's start stays; what the term was as
    bought is kept (`aligned_from_*`) for the prorations of the rest of the term and for a refund of the
    extension (rules §3). An alignment and a partner's extension quote both extend this way."""
    extra = dates.days_between(s.renewal_date, target.renewal_date)
    line = OrderLine(
        description=(
            f"{s.product_name}: renewal date moved from {s.renewal_date.isoformat()} to "
            f"{target.renewal_date.isoformat()}"
        ),
        quantity=s.seats,
        unit_price=s.unit_price,
        currency=s.currency,
        amount=prorate(s.unit_price, s.seats, extra, s.term_days, s.currency),
        period_start_date=s.renewal_date,
        period_end_date=target.renewal_date,
        subscription_id=s.subscription_id,
        prorated_days=extra,
        term_days=s.term_days,
        term_start_date=s.current_period_start_date,
        term_end_date=s.term_end_date,
    )
    extended = replace(
        s,
        renewal_date=target.renewal_date,
        anchor_date=target.anchor_date,
        months_from_anchor=target.months_from_anchor,
        aligned_from_date=s.term_end_date,
        aligned_from_anchor_date=s.aligned_from_anchor_date if s.aligned else s.anchor_date,
        aligned_from_months=s.aligned_from_months if s.aligned else s.months_from_anchor,
    )
    return extended, line


def align(subs: Sequence[Subscription], account_id: str, catalog: Catalog, now: datetime) -> AlignOutcome:
    """Extend each subscription to the latest renewal date among them; each extended one pays the extra
    days of all its seats, prorated over the days of its term as bought (so a day costs the same before and
    after the extension). The term's start stays; what the term was as bought is kept (`aligned_from_*`)
    for the prorations of the rest of the term and for a refund of the extension (rules §3)."""
    if len({s.subscription_id for s in subs}) < 2:
        raise InvalidInput("name at least two different subscriptions to align", field="subscription_ids")
    for s in subs:
        if s.account_id != account_id:
            raise RuleViolation(
                f"subscription {s.subscription_id} belongs to another account",
                reason="ALIGN_ACCOUNT_MISMATCH",
            )
        check_align_one(s, catalog, now)
    if len({s.term for s in subs}) > 1:
        raise RuleViolation(
            "only subscriptions with the same term length can be aligned", reason="ALIGN_TERM_MISMATCH"
        )
    if len({s.payment_method_id for s in subs}) > 1:
        raise RuleViolation(
            "only subscriptions paid with the same payment method can be aligned",
            reason="ALIGN_PAYMENT_METHOD_MISMATCH",
        )
    if len({s.currency for s in subs}) > 1:
        raise RuleViolation(
            "only subscriptions in the same currency can be aligned", reason="ALIGN_PAYMENT_METHOD_MISMATCH"
        )
    target = max(subs, key=lambda s: (s.renewal_date, s.subscription_id))
    if all(s.renewal_date == target.renewal_date for s in subs):
        raise RuleViolation("the subscriptions already renew on the same date", reason="NOTHING_TO_CHANGE")
    out: list[Subscription] = []
    lines: list[OrderLine] = []
    for s in subs:
        if s.renewal_date == target.renewal_date:
            out.append(s)
            continue
        extended, line = extend_to(s, target)
        lines.append(line)
        out.append(extended)
    return AlignOutcome(out, lines, target.renewal_date)
