"""The subscription aggregate and every order and change on it (SPEC §2, §3, §6).

Each operation is a pure function: it takes a subscription (and the catalog and the current instant),
checks the rules, and returns an `Outcome` with the changed copy, the order lines to invoice and the
stage transitions to record. Nothing here does I/O; the handlers persist outcomes and call billing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.subscription.domain import dates, lifecycle
from services.subscription.domain.catalog import Catalog, Product
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
from services.subscription.domain.pricing import line_amount, prorate
from services.subscription.domain.selfservice import self_service_refusal
from shared.errors import DomainError, InvalidInput, RuleViolation
from shared.money import minor_unit, split_evenly

INSTALLMENTS_FROM = date(2024, 9, 16)
PRODUCT_SWITCH_FROM = date(2024, 9, 16)
REFUND_DAYS = {Term.MONTHLY: 15, Term.ANNUAL: 30, Term.THREE_YEAR: 30}
SERIAL_UPDATE_UP_TO_YEAR = 2019
MAX_SEATS = 100_000
TERM_WORDS = {Term.MONTHLY: "monthly", Term.ANNUAL: "annual", Term.THREE_YEAR: "3-year"}


@dataclass
class Subscription:
    subscription_id: str
    account_id: str
    product_code: str
    product_name: str
    plan: Plan
    term: Term
    seats: int
    renewal_seats: int
    currency: str
    unit_price: Decimal
    channel: Channel
    country_code: str
    time_zone: str
    auto_renew: bool
    stage: Stage
    start_date: date
    anchor_date: date
    months_from_anchor: int  # paid terms: renewal_date == anchor_date + months_from_anchor months
    current_period_start_date: date
    renewal_date: date
    last_order_date: date  # local date of the order that paid the current term: day 1 of refund windows
    buyer_email: str
    buyer_name: str = ""
    buyer_language: str = "en"
    payment_method_id: str = ""
    payment_method_type: PaymentMethodType | None = None
    partner_name: str = ""
    shutoff_policy: ShutoffPolicy = ShutoffPolicy.STANDARD
    included_product_codes: tuple[str, ...] = ()  # a collection's products, which a seat also grants
    pending_term: Term | None = None
    pending_product_code: str = ""
    trial_end_date: date | None = None
    access_until: datetime | None = None
    upgraded_to: str = ""
    upgraded_from: str = ""
    installments: int = 1
    # the shutoff (SPEC §4), fixed when it starts: why, from which local date, and when the later stages
    # begin; the invoice whose payment ends it (a declined renewal's or an overdue one's)
    shutoff_reason: str = ""
    shutoff_start_date: date | None = None
    suspend_time: datetime | None = None
    cancel_time: datetime | None = None
    shutoff_invoice_id: str = ""
    last_reminder_days: int | None = None  # the nearest renewal reminder sent in this term (45, 30, 4)
    prepay_pending: bool = False  # cancelled for an unpaid credit line; billing is still to be told
    version: int = 0
    create_time: datetime | None = None

    # -- derived dates (SPEC §2) ----------------------------------------------------------------------
    @property
    def renewal_time(self) -> datetime:
        return dates.renewal_instant(self.renewal_date, self.time_zone)

    @property
    def expiry_date(self) -> date:
        return dates.expiry_date(self.renewal_date)

    @property
    def expiry_time(self) -> datetime:
        return dates.expiry_instant(self.renewal_date, self.time_zone)

    @property
    def term_days(self) -> int:
        return dates.days_between(self.current_period_start_date, self.renewal_date)

    def today(self, now: datetime) -> date:
        return dates.local_date(now, self.time_zone)

    @property
    def is_trial(self) -> bool:
        return self.stage is Stage.TRIAL


def lifecycle_state(sub: Subscription) -> lifecycle.LifecycleState:
    return lifecycle.LifecycleState(
        stage=sub.stage,
        term=sub.term,
        time_zone=sub.time_zone,
        renewal_date=sub.renewal_date,
        renewal_time=sub.renewal_time,
        current_period_start_date=sub.current_period_start_date,
        auto_renew=sub.auto_renew,
        access_until=sub.access_until,
        upgraded=bool(sub.upgraded_to),
        pays_by_invoice=sub.payment_method_type is PaymentMethodType.INVOICE,
        shutoff_reason=sub.shutoff_reason,
        shutoff_start_date=sub.shutoff_start_date,
        suspend_time=sub.suspend_time,
        cancel_time=sub.cancel_time,
        last_reminder_days=sub.last_reminder_days,
        prepay_pending=sub.prepay_pending,
    )


def with_state(sub: Subscription, state: lifecycle.LifecycleState) -> Subscription:
    """`sub` with the fields that the lifecycle moved."""
    return replace(
        sub,
        stage=state.stage,
        auto_renew=state.auto_renew,
        shutoff_reason=state.shutoff_reason,
        shutoff_start_date=state.shutoff_start_date,
        suspend_time=state.suspend_time,
        cancel_time=state.cancel_time,
        last_reminder_days=state.last_reminder_days,
        prepay_pending=state.prepay_pending,
    )


NO_SHUTOFF = dict(
    shutoff_reason="",
    shutoff_start_date=None,
    suspend_time=None,
    cancel_time=None,
    shutoff_invoice_id="",
    prepay_pending=False,
)


def _require_no_unpaid_invoice(sub: Subscription, action: str) -> None:
    """A shutoff for an overdue invoice ends when that invoice is paid; its term has already renewed."""
    if sub.stage in (Stage.EXPIRED, Stage.SUSPENDED) and sub.shutoff_reason == lifecycle.INVOICE_OVERDUE:
        raise RuleViolation(
            f"cannot {action}: the subscription is {sub.stage.value.lower()} because invoice "
            f"{sub.shutoff_invoice_id} is unpaid past its due date; paying it returns the subscription to "
            "Active",
            reason="INVOICE_UNPAID",
            metadata={"invoice_id": sub.shutoff_invoice_id},
        )


@dataclass
class Outcome:
    """What an operation produced: the changed subscription(s), the lines to invoice, the transitions."""

    subscription: Subscription
    lines: list[OrderLine] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


# -- guards -------------------------------------------------------------------------------------------


def require_self_service(sub: Subscription, catalog: Catalog, action: str) -> None:
    product = catalog.products.get(sub.product_code)
    refusal = self_service_refusal(
        action=action,
        channel=sub.channel,
        partner_name=sub.partner_name,
        country_code=sub.country_code,
        start_date=sub.start_date,
        product_name=product.name if product else sub.product_code,
        product_supported=bool(product and product.supported),
    )
    if refusal is not None:
        raise refusal


def _require_open(sub: Subscription, action: str, *, trial_ok: bool = False) -> None:
    """Refuse changes to cancelled, upgraded-away and (unless `trial_ok`) trial subscriptions."""
    if sub.stage is Stage.CANCELLED:
        raise RuleViolation(
            f"cannot {action}: the subscription is cancelled; buy a new subscription at the list price",
            reason="SUBSCRIPTION_CANCELLED",
        )
    if sub.upgraded_to:
        raise RuleViolation(
            f"cannot {action}: the subscription was upgraded to {sub.upgraded_to} and ends when its "
            "overlap period is over",
            reason="SUBSCRIPTION_UPGRADED",
        )
    if sub.is_trial and not trial_ok:
        raise RuleViolation(
            f"cannot {action}: a trial cannot be renewed, extended or changed; convert it to a paid "
            "subscription first",
            reason="TRIAL_NOT_RENEWABLE",
        )


def _require_active(sub: Subscription, action: str) -> None:
    if sub.stage is not Stage.ACTIVE:
        raise RuleViolation(
            f"cannot {action} while the subscription is {sub.stage.value.lower()}; renew it first",
            reason="STAGE_NOT_ALLOWED",
        )


def _require_before_renewal(sub: Subscription, now: datetime, action: str) -> None:
    if now >= sub.renewal_time:
        raise RuleViolation(
            f"cannot {action}: the renewal instant {sub.renewal_time.isoformat()} has passed",
            reason="RENEWAL_PASSED",
        )


def _seats(seats: int, field_name: str = "seats") -> int:
    if seats < 1:
        raise InvalidInput("seats must be at least 1", field=field_name)
    if seats > MAX_SEATS:
        raise InvalidInput(f"seats must be at most {MAX_SEATS}", field=field_name)
    return seats


def installments_for(term: Term, period_start: date) -> int:
    """A 3-year term bought or renewed on or after 2024-09-16 is billed in three annual installments."""
    return 3 if term is Term.THREE_YEAR and period_start >= INSTALLMENTS_FROM else 1


def _describe(product: Product, plan: Plan, term: Term) -> str:
    return f"{product.name} ({plan.value.title()}, {TERM_WORDS[term]})"


# -- create -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """The fields of a new subscription order."""

    account_id: str
    buyer_email: str
    product_code: str
    seats: int
    currency: str
    country_code: str
    time_zone: str
    plan: Plan = Plan.STANDARD
    term: Term | None = None
    buyer_name: str = ""
    buyer_language: str = "en"
    channel: Channel = Channel.DIRECT_ONLINE
    payment_method_id: str = ""
    payment_method_type: PaymentMethodType | None = None
    auto_renew: bool = True
    start_date: date | None = None
    trial: bool = False
    partner_name: str = ""


def create(req: OrderRequest, catalog: Catalog, subscription_id: str, now: datetime) -> Outcome:
    """A new subscription (or a 30-day trial) starting at local midnight of its start date."""
    if not req.account_id:
        raise InvalidInput("account_id is required", field="account_id")
    if not req.buyer_email or "@" not in req.buyer_email:
        raise InvalidInput("the buyer's e-mail address is required", field="buyer.email")
    if len(req.country_code) != 2 or not req.country_code.isalpha():
        raise InvalidInput("country_code is an ISO 3166-1 alpha-2 code such as NO", field="country_code")
    minor_unit(req.currency)
    today = dates.local_date(now, req.time_zone)  # validates the zone
    seats = _seats(req.seats)
    product = catalog.product(req.product_code)
    if not product.supported:
        raise RuleViolation(f"{product.name} can no longer be bought", reason="PRODUCT_NOT_SUPPORTED")
    start = req.start_date or today
    if start > today:
        raise InvalidInput("start_date cannot be in the future", field="start_date")
    if req.channel.is_partner and not req.partner_name:
        raise InvalidInput("partner sales name the partner or reseller", field="partner_name")
    if req.trial:
        term = req.term or Term.ANNUAL
        catalog.price(product.code, req.plan, term, req.currency, req.channel)  # the trial converts later
        renewal = start + timedelta(days=dates.TRIAL_DAYS)
        sub = _new(req, product, subscription_id, now, start, term, seats, Decimal(0), renewal, months=0)
        sub.stage = Stage.TRIAL
        sub.auto_renew = False
        sub.trial_end_date = dates.trial_end_date(start)
        return Outcome(sub, [], [Transition(None, Stage.TRIAL, now, "created")])
    if req.term is None:
        raise InvalidInput("term is required", field="term")
    if not req.payment_method_id:
        raise InvalidInput("payment_method_id is required", field="payment_method_id")
    price = catalog.price(product.code, req.plan, req.term, req.currency, req.channel)
    renewal = dates.add_months(start, req.term.months)
    sub = _new(
        req, product, subscription_id, now, start, req.term, seats, price.list_price, renewal, req.term.months
    )
    line = OrderLine(
        description=_describe(product, req.plan, req.term),
        quantity=seats,
        unit_price=price.list_price,
        currency=req.currency,
        amount=line_amount(price.list_price, seats, req.currency),
        period_start_date=start,
        period_end_date=renewal,
        subscription_id=subscription_id,
    )
    return Outcome(sub, [line], [Transition(None, Stage.ACTIVE, now, "created")])


def _new(
    req: OrderRequest,
    product: Product,
    subscription_id: str,
    now: datetime,
    start: date,
    term: Term,
    seats: int,
    unit_price: Decimal,
    renewal: date,
    months: int,
) -> Subscription:
    return Subscription(
        subscription_id=subscription_id,
        account_id=req.account_id,
        product_code=product.code,
        product_name=product.name,
        plan=req.plan,
        term=term,
        seats=seats,
        renewal_seats=seats,
        currency=req.currency,
        unit_price=unit_price,
        channel=req.channel,
        country_code=req.country_code.upper(),
        time_zone=req.time_zone,
        auto_renew=req.auto_renew,
        stage=Stage.ACTIVE,
        start_date=start,
        anchor_date=start,
        months_from_anchor=months,
        current_period_start_date=start,
        renewal_date=renewal,
        last_order_date=start,
        buyer_email=req.buyer_email,
        buyer_name=req.buyer_name,
        buyer_language=req.buyer_language or "en",
        payment_method_id=req.payment_method_id,
        payment_method_type=req.payment_method_type,
        partner_name=req.partner_name,
        shutoff_policy=product.shutoff_policy,
        included_product_codes=product.contains,
        installments=installments_for(term, start),
        create_time=now,
    )


# -- seats --------------------------------------------------------------------------------------------


def check_add_seats(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "add seats")
    _require_open(sub, "add seats")
    _require_active(sub, "add seats")
    if sub.access_until is not None:
        raise RuleViolation(
            "cannot add seats: the subscription's access is ending", reason="STAGE_NOT_ALLOWED"
        )
    _require_before_renewal(sub, now, "add seats")


def add_seats(sub: Subscription, seats: int, catalog: Catalog, now: datetime) -> Outcome:
    """Seats added mid-term end on the current renewal date (co-term) and cost the current per-seat price x
    seats x days left / days in the term."""
    _seats(seats)
    check_add_seats(sub, catalog, now)
    today = sub.today(now)
    days_left = dates.days_between(today, sub.renewal_date)
    term_days = sub.term_days
    amount = prorate(sub.unit_price, seats, days_left, term_days, sub.currency)
    line = OrderLine(
        description=f"{sub.product_name}: {seats} seat(s) added, co-termed to {sub.renewal_date.isoformat()}",
        quantity=seats,
        unit_price=sub.unit_price,
        currency=sub.currency,
        amount=amount,
        period_start_date=today,
        period_end_date=sub.renewal_date,
        subscription_id=sub.subscription_id,
        prorated_days=days_left,
        term_days=term_days,
    )
    new = replace(sub, seats=sub.seats + seats, renewal_seats=sub.renewal_seats + seats)
    return Outcome(new, [line])


def check_set_renewal_seats(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "change the renewal seats")
    _require_open(sub, "change the renewal seats")


def set_renewal_seats(
    sub: Subscription, seats: int, assigned_users: int, catalog: Catalog, now: datetime
) -> Outcome:
    """Seats cannot be removed mid-term; a lower count for the next renewal may not be below the users
    assigned now."""
    _seats(seats)
    check_set_renewal_seats(sub, catalog, now)
    if seats < assigned_users:
        raise RuleViolation(
            f"cannot renew with {seats} seat(s): {assigned_users} user(s) are assigned; unassign users first",
            reason="SEATS_BELOW_ASSIGNED",
            metadata={"assigned_users": str(assigned_users)},
        )
    return Outcome(replace(sub, renewal_seats=seats))


# -- term, auto-renew, renewal ------------------------------------------------------------------------


def check_change_term(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "change the term")
    _require_open(sub, "change the term")


def change_term(sub: Subscription, term: Term, catalog: Catalog, now: datetime) -> Outcome:
    """The new term takes effect at the next renewal (and keeps the renewal price if renewed on time)."""
    check_change_term(sub, catalog, now)
    catalog.price(sub.pending_product_code or sub.product_code, sub.plan, term, sub.currency, sub.channel)
    pending = None if term is sub.term else term
    if pending == sub.pending_term:
        raise RuleViolation(f"the subscription already renews {TERM_WORDS[term]}", reason="NOTHING_TO_CHANGE")
    return Outcome(replace(sub, pending_term=pending))


def check_set_auto_renew(sub: Subscription, on: bool, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "turn automatic renewal " + ("on" if on else "off"))
    _require_open(sub, "turn automatic renewal " + ("on" if on else "off"))
    if sub.stage in (Stage.EXPIRED, Stage.SUSPENDED):
        if not on:
            raise RuleViolation(
                "automatic renewal is already off: the term has ended", reason="NOTHING_TO_CHANGE"
            )
        _require_no_unpaid_invoice(sub, "turn automatic renewal on")
        return  # turning it on reinstates
    _require_before_renewal(sub, now, "change automatic renewal")


def set_auto_renew(sub: Subscription, on: bool, catalog: Catalog, now: datetime) -> Outcome:
    """Off at any time before the renewal instant (access kept until expiry, nothing charged). On before the
    renewal instant, or while Expired or Suspended, which renews it (reinstatement)."""
    check_set_auto_renew(sub, on, catalog, now)
    if on and sub.stage in (Stage.EXPIRED, Stage.SUSPENDED):
        return renew_term(replace(sub, auto_renew=True), catalog, now, reason="reinstated")
    return Outcome(replace(sub, auto_renew=on))


def check_renew(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "renew")
    _require_open(sub, "renew")
    _require_no_unpaid_invoice(sub, "renew")
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
    term, product and renewal seats, at the renewal price of that term."""
    term = sub.pending_term or sub.term
    product = catalog.product(sub.pending_product_code or sub.product_code)
    price = catalog.price(product.code, sub.plan, term, sub.currency, sub.channel)
    start = sub.renewal_date
    months = sub.months_from_anchor + term.months
    renewal = dates.add_months(sub.anchor_date, months)
    seats = sub.renewal_seats
    line = OrderLine(
        description=f"Renewal: {_describe(product, sub.plan, term)}",
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
    )
    transitions = []
    if sub.stage is not Stage.ACTIVE:
        transitions.append(Transition(sub.stage, Stage.ACTIVE, now, reason))
    return Outcome(new, [line], transitions)


# -- alignment ----------------------------------------------------------------------------------------


def check_align_one(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "align renewal dates")
    _require_open(sub, "align renewal dates")
    _require_active(sub, "align renewal dates")
    if sub.payment_method_type is PaymentMethodType.PAYPAL:
        raise RuleViolation(
            "subscriptions paid with PayPal cannot be aligned; pay by card to align them",
            reason="ALIGN_PAYPAL",
        )
    _require_before_renewal(sub, now, "align renewal dates")


@dataclass
class AlignOutcome:
    subscriptions: list[Subscription]
    lines: list[OrderLine]
    target_date: date

    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def align(subs: Sequence[Subscription], account_id: str, catalog: Catalog, now: datetime) -> AlignOutcome:
    """Extend each subscription to the latest renewal date among them; each extended one pays the extra
    days of all its seats, prorated over its current term."""
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
        extra = dates.days_between(s.renewal_date, target.renewal_date)
        amount = prorate(s.unit_price, s.seats, extra, s.term_days, s.currency)
        lines.append(
            OrderLine(
                description=(
                    f"{s.product_name}: renewal date moved from {s.renewal_date.isoformat()} to "
                    f"{target.renewal_date.isoformat()}"
                ),
                quantity=s.seats,
                unit_price=s.unit_price,
                currency=s.currency,
                amount=amount,
                period_start_date=s.renewal_date,
                period_end_date=target.renewal_date,
                subscription_id=s.subscription_id,
                prorated_days=extra,
                term_days=s.term_days,
            )
        )
        out.append(
            replace(
                s,
                renewal_date=target.renewal_date,
                anchor_date=target.anchor_date,
                months_from_anchor=target.months_from_anchor,
            )
        )
    return AlignOutcome(out, lines, target.renewal_date)


# -- upgrades -----------------------------------------------------------------------------------------


@dataclass
class UpgradeOutcome:
    old: Subscription
    new: Subscription
    lines: list[OrderLine]
    transitions: list[Transition]
    credit: Decimal
    old_access_until: datetime
    serial_number_update_required: bool
    reinstall_required: bool

    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def unused_value(sub: Subscription, today: date) -> Decimal:
    """What the old term paid for and has not used (SPEC §6 decision): per-seat price x seats x remaining
    days / term days. A term billed in three annual installments has not paid for the installments that
    are not yet due; those are cancelled instead of credited."""
    if sub.stage is not Stage.ACTIVE:
        return Decimal(0)
    remaining = max(0, dates.days_between(today, sub.renewal_date))
    value = prorate(sub.unit_price, sub.seats, remaining, sub.term_days, sub.currency)
    if sub.installments > 1:
        due = [dates.add_months(sub.current_period_start_date, 12 * k) for k in range(sub.installments)]
        billed = sum(1 for d in due if d <= today)
        parts = split_evenly(
            line_amount(sub.unit_price, sub.seats, sub.currency), sub.installments, sub.currency
        )
        value -= sum(parts[billed:], Decimal(0))
    return max(value, Decimal(0))


def check_upgrade(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "upgrade")
    _require_open(sub, "upgrade")
    if not catalog.upgrades_to(sub.product_code) and sub.plan is Plan.PREMIUM:
        raise RuleViolation(
            f"{sub.product_name} on the Premium plan has no upgrade", reason="UPGRADE_NOT_ALLOWED"
        )


def upgrade(
    sub: Subscription,
    catalog: Catalog,
    now: datetime,
    new_subscription_id: str,
    target_product_code: str = "",
    target_plan: Plan | None = None,
) -> UpgradeOutcome:
    """LT -> full, product -> collection, Standard -> Premium: an order for the new product or plan at the
    list price, with the unused value of the old term credited (never more than the new order). The old
    subscription keeps access for 30 days from the order date and does not renew."""
    if not target_product_code and target_plan is None:
        raise InvalidInput("name a target product, a target plan or both", field="target_product_code")
    check_upgrade(sub, catalog, now)
    product_code = target_product_code or sub.product_code
    plan = target_plan or sub.plan
    if product_code != sub.product_code and product_code not in catalog.upgrades_to(sub.product_code):
        paths = ", ".join(catalog.upgrades_to(sub.product_code)) or "none"
        raise RuleViolation(
            f"{sub.product_code} cannot be upgraded to {product_code} (upgrade paths: {paths})",
            reason="UPGRADE_NOT_ALLOWED",
        )
    if plan is Plan.STANDARD and sub.plan is Plan.PREMIUM:
        raise RuleViolation(
            "Premium cannot be changed to Standard by an upgrade", reason="UPGRADE_NOT_ALLOWED"
        )
    if product_code == sub.product_code and plan is sub.plan:
        raise RuleViolation("the target is the current product and plan", reason="UPGRADE_NOT_ALLOWED")
    old_product = catalog.product(sub.product_code)
    target = catalog.product(product_code)
    if not target.supported:
        raise RuleViolation(f"{target.name} can no longer be bought", reason="PRODUCT_NOT_SUPPORTED")
    today = sub.today(now)
    price = catalog.price(product_code, plan, sub.term, sub.currency, sub.channel)
    renewal = dates.add_months(today, sub.term.months)
    charge = line_amount(price.list_price, sub.seats, sub.currency)
    remaining = max(0, dates.days_between(today, sub.renewal_date)) if sub.stage is Stage.ACTIVE else 0
    credit = min(unused_value(sub, today), charge)
    lines = [
        OrderLine(
            description=f"Upgrade to {_describe(target, plan, sub.term)}",
            quantity=sub.seats,
            unit_price=price.list_price,
            currency=sub.currency,
            amount=charge,
            period_start_date=today,
            period_end_date=renewal,
            subscription_id=new_subscription_id,
        )
    ]
    if credit:
        lines.append(
            OrderLine(
                description=f"Credit for the unused {remaining} day(s) of {sub.product_name}",
                quantity=sub.seats,
                unit_price=sub.unit_price,
                currency=sub.currency,
                amount=-credit,
                period_start_date=today,
                period_end_date=sub.renewal_date,
                subscription_id=sub.subscription_id,
                prorated_days=remaining,
                term_days=sub.term_days,
            )
        )
    access_until = dates.local_midnight(today + timedelta(days=dates.UPGRADE_OVERLAP_DAYS), sub.time_zone)
    new = replace(
        sub,
        subscription_id=new_subscription_id,
        product_code=target.code,
        product_name=target.name,
        shutoff_policy=target.shutoff_policy,
        included_product_codes=target.contains,
        plan=plan,
        renewal_seats=sub.seats,
        unit_price=price.list_price,
        stage=Stage.ACTIVE,
        start_date=today,
        anchor_date=today,
        months_from_anchor=sub.term.months,
        current_period_start_date=today,
        renewal_date=renewal,
        last_order_date=today,
        pending_term=None,
        pending_product_code="",
        trial_end_date=None,
        access_until=None,
        upgraded_to="",
        upgraded_from=sub.subscription_id,
        installments=installments_for(sub.term, today),
        last_reminder_days=None,
        **NO_SHUTOFF,
        version=0,
        create_time=now,
    )
    old = replace(sub, auto_renew=False, access_until=access_until, upgraded_to=new_subscription_id)
    serial = old_product.kind in (ProductKind.LT, ProductKind.FULL) and (
        old_product.release_year <= SERIAL_UPDATE_UP_TO_YEAR
    )
    reinstall = old_product.kind is ProductKind.COLLECTION and sub.stage in (Stage.EXPIRED, Stage.SUSPENDED)
    return UpgradeOutcome(
        old=old,
        new=new,
        lines=lines,
        transitions=[Transition(None, Stage.ACTIVE, now, "upgraded")],
        credit=credit,
        old_access_until=access_until,
        serial_number_update_required=serial,
        reinstall_required=reinstall,
    )


# -- product switch -----------------------------------------------------------------------------------


def check_product_switch(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "switch product")
    _require_open(sub, "switch product")
    _require_active(sub, "switch product")
    if sub.current_period_start_date < PRODUCT_SWITCH_FROM:
        raise RuleViolation(
            "only subscriptions bought or renewed on or after 2024-09-16 can switch product; this term "
            f"started on {sub.current_period_start_date.isoformat()}",
            reason="PRODUCT_SWITCH_NOT_ELIGIBLE",
        )
    today = sub.today(now)
    opens = dates.renewal_window_opens(sub.renewal_date)
    if today < opens:
        raise RuleViolation(
            f"a product switch is possible in the 90 days before renewal, from {opens.isoformat()}",
            reason="PRODUCT_SWITCH_OUTSIDE_WINDOW",
            metadata={"window_opens_date": opens.isoformat()},
        )
    _require_before_renewal(sub, now, "switch product")


def schedule_product_switch(sub: Subscription, product_code: str, catalog: Catalog, now: datetime) -> Outcome:
    """Switch to another product at the next renewal (bought or renewed on or after 2024-09-16, inside the
    90 days before renewal)."""
    if not product_code:
        raise InvalidInput("product_code is required", field="product_code")
    check_product_switch(sub, catalog, now)
    target = catalog.product(product_code)
    if not target.supported:
        raise RuleViolation(f"{target.name} can no longer be bought", reason="PRODUCT_NOT_SUPPORTED")
    catalog.price(target.code, sub.plan, sub.pending_term or sub.term, sub.currency, sub.channel)
    pending = "" if target.code == sub.product_code else target.code
    if pending == sub.pending_product_code:
        raise RuleViolation(f"the subscription already renews as {target.name}", reason="NOTHING_TO_CHANGE")
    return Outcome(replace(sub, pending_product_code=pending))


# -- trials -------------------------------------------------------------------------------------------


def check_convert_trial(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    if not sub.is_trial:
        raise RuleViolation("the subscription is not a trial", reason="NOT_A_TRIAL")


def convert_trial(
    sub: Subscription,
    term: Term,
    seats: int,
    payment_method_id: str,
    payment_method_type: PaymentMethodType | None,
    catalog: Catalog,
    now: datetime,
) -> Outcome:
    """A trial becomes a paid subscription from today, at the list price; nothing is reinstalled (the
    subscription keeps its id)."""
    _seats(seats)
    if not payment_method_id:
        raise InvalidInput("payment_method_id is required", field="payment_method_id")
    check_convert_trial(sub, catalog, now)
    product = catalog.product(sub.product_code)
    price = catalog.price(product.code, sub.plan, term, sub.currency, sub.channel)
    today = sub.today(now)
    renewal = dates.add_months(today, term.months)
    line = OrderLine(
        description=_describe(product, sub.plan, term),
        quantity=seats,
        unit_price=price.list_price,
        currency=sub.currency,
        amount=line_amount(price.list_price, seats, sub.currency),
        period_start_date=today,
        period_end_date=renewal,
        subscription_id=sub.subscription_id,
    )
    new = replace(
        sub,
        term=term,
        seats=seats,
        renewal_seats=seats,
        unit_price=price.list_price,
        stage=Stage.ACTIVE,
        auto_renew=True,
        anchor_date=today,
        months_from_anchor=term.months,
        current_period_start_date=today,
        renewal_date=renewal,
        last_order_date=today,
        trial_end_date=None,
        payment_method_id=payment_method_id,
        payment_method_type=payment_method_type,
        installments=installments_for(term, today),
    )
    return Outcome(new, [line], [Transition(Stage.TRIAL, Stage.ACTIVE, now, "trial_converted")])


# -- payment method -----------------------------------------------------------------------------------


def check_change_payment_method(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "change the payment method")
    _require_open(sub, "change the payment method")


def check_pay_by_invoice(sub: Subscription, account_has_invoice_subscription: bool) -> None:
    if sub.channel is not Channel.PARTNER_QUOTE and not account_has_invoice_subscription:
        raise RuleViolation(
            "pay by invoice is only for purchases made through a quote or for accounts that already pay "
            "another subscription by invoice",
            reason="PAY_BY_INVOICE_NOT_ALLOWED",
        )


def change_payment_method(
    sub: Subscription,
    payment_method_id: str,
    payment_method_type: PaymentMethodType,
    account_has_invoice_subscription: bool,
    catalog: Catalog,
    now: datetime,
) -> Outcome:
    if not payment_method_id:
        raise InvalidInput("payment_method_id is required", field="payment_method_id")
    check_change_payment_method(sub, catalog, now)
    if payment_method_type is PaymentMethodType.INVOICE:
        check_pay_by_invoice(sub, account_has_invoice_subscription)
    if payment_method_id == sub.payment_method_id:
        raise RuleViolation("the subscription already uses this payment method", reason="NOTHING_TO_CHANGE")
    return Outcome(replace(sub, payment_method_id=payment_method_id, payment_method_type=payment_method_type))


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
    _require_open(sub, "request a refund")
    _require_active(sub, "request a refund")
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


# -- self-service options -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    action: str
    available: bool
    reason: str = ""
    error_reason: str = ""


ACTIONS = (
    "ADD_SEATS",
    "SET_RENEWAL_SEATS",
    "CHANGE_TERM",
    "ALIGN_RENEWAL_DATES",
    "TURN_ON_AUTO_RENEW",
    "TURN_OFF_AUTO_RENEW",
    "RENEW",
    "SWITCH_TO_PAY_BY_INVOICE",
    "UPGRADE",
    "SWITCH_PRODUCT",
    "CONVERT_TRIAL",
    "REQUEST_REFUND",
)


def self_service_options(
    sub: Subscription,
    catalog: Catalog,
    now: datetime,
    *,
    others: Sequence[Subscription] = (),
    account_has_invoice_subscription: bool = False,
) -> list[Option]:
    """Each portal action with whether it is available now and, when not, why (the greyed-out buttons).

    `others` are the account's other subscriptions (for alignment)."""

    def align() -> None:
        check_align_one(sub, catalog, now)
        partners = []
        for o in others:
            if o.subscription_id == sub.subscription_id or o.renewal_date == sub.renewal_date:
                continue
            if o.term is not sub.term or o.payment_method_id != sub.payment_method_id:
                continue
            try:
                check_align_one(o, catalog, now)
            except DomainError:
                continue
            partners.append(o)
        if not partners:
            raise RuleViolation(
                "no other subscription of the account with the same term and payment method renews on "
                "another date",
                reason="NOTHING_TO_CHANGE",
            )

    def turn_on() -> None:
        if sub.auto_renew and sub.stage is Stage.ACTIVE:
            raise RuleViolation("automatic renewal is already on", reason="NOTHING_TO_CHANGE")
        check_set_auto_renew(sub, True, catalog, now)

    def turn_off() -> None:
        if not sub.auto_renew:
            raise RuleViolation("automatic renewal is already off", reason="NOTHING_TO_CHANGE")
        check_set_auto_renew(sub, False, catalog, now)

    def pay_by_invoice() -> None:
        if sub.payment_method_type is PaymentMethodType.INVOICE:
            raise RuleViolation("the subscription is already paid by invoice", reason="NOTHING_TO_CHANGE")
        check_change_payment_method(sub, catalog, now)
        check_pay_by_invoice(sub, account_has_invoice_subscription)

    def upgrade_check() -> None:
        check_upgrade(sub, catalog, now)

    checks = {
        "ADD_SEATS": lambda: check_add_seats(sub, catalog, now),
        "SET_RENEWAL_SEATS": lambda: check_set_renewal_seats(sub, catalog, now),
        "CHANGE_TERM": lambda: check_change_term(sub, catalog, now),
        "ALIGN_RENEWAL_DATES": align,
        "TURN_ON_AUTO_RENEW": turn_on,
        "TURN_OFF_AUTO_RENEW": turn_off,
        "RENEW": lambda: check_renew(sub, catalog, now),
        "SWITCH_TO_PAY_BY_INVOICE": pay_by_invoice,
        "UPGRADE": upgrade_check,
        "SWITCH_PRODUCT": lambda: check_product_switch(sub, catalog, now),
        "CONVERT_TRIAL": lambda: check_convert_trial(sub, catalog, now),
        "REQUEST_REFUND": lambda: check_refund(sub, catalog, now),
    }
    options = []
    for action in ACTIONS:
        try:
            checks[action]()
        except DomainError as e:
            options.append(Option(action, False, e.message, e.reason))
        else:
            options.append(Option(action, True))
    return options
