"""New subscriptions and the orders and changes of a term in progress (rules §2, §3): create (or a trial),
add seats, the renewal seats, converting a trial, the payment method."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.subscription.domain import dates
from services.subscription.domain.aggregate import (
    Outcome,
    Subscription,
    describe,
    installments_for,
    require_active,
    require_before_renewal,
    require_open,
    require_self_service,
    valid_seats,
)
from services.subscription.domain.catalog import Catalog, Product
from services.subscription.domain.model import (
    Channel,
    OrderLine,
    PaymentMethodType,
    Plan,
    Stage,
    Term,
    Transition,
)
from services.subscription.domain.pricing import line_amount, prorate
from shared.errors import InvalidInput, RuleViolation
from shared.money import minor_unit

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
    seats = valid_seats(req.seats)
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
        catalog.price(product.code, req.plan, term, req.currency, req.channel, today)  # converts later
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
    # rules §10: a purchase pays the price in effect on its order date
    price = catalog.price(product.code, req.plan, req.term, req.currency, req.channel, today)
    renewal = dates.add_months(start, req.term.months)
    sub = _new(
        req, product, subscription_id, now, start, req.term, seats, price.list_price, renewal, req.term.months
    )
    line = OrderLine(
        description=describe(product, req.plan, req.term),
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
    require_open(sub, "add seats")
    require_active(sub, "add seats")
    if sub.access_until is not None:
        raise RuleViolation(
            "cannot add seats: the subscription's access is ending", reason="STAGE_NOT_ALLOWED"
        )
    require_before_renewal(sub, now, "add seats")


def add_seats(sub: Subscription, seats: int, catalog: Catalog, now: datetime) -> Outcome:
    """Seats added mid-term end on the current renewal date (co-term) and cost the current per-seat price x
    seats x days left / days in the term. Days left are local dates from today to the renewal date (after an
    alignment, the moved one); days in the term are those of one term as bought (`Subscription.term_days`):
    bought 2024-06-10 (annual, 470.00), aligned to 2025-09-01, one seat added on 2025-01-10 costs
    470.00 x 234 / 365 = 301.32."""
    valid_seats(seats)
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
        term_start_date=sub.current_period_start_date,
        term_end_date=sub.term_end_date,
    )
    new = replace(sub, seats=sub.seats + seats, renewal_seats=sub.renewal_seats + seats)
    return Outcome(new, [line])


def check_set_renewal_seats(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "change the renewal seats")
    require_open(sub, "change the renewal seats")


def set_renewal_seats(
    sub: Subscription, seats: int, assigned_users: int, catalog: Catalog, now: datetime
) -> Outcome:
    """Seats cannot be removed mid-term; a lower count for the next renewal may not be below the users
    assigned now."""
    valid_seats(seats)
    check_set_renewal_seats(sub, catalog, now)
    if seats < assigned_users:
        raise RuleViolation(
            f"cannot renew with {seats} seat(s): {assigned_users} user(s) are assigned; unassign users first",
            reason="SEATS_BELOW_ASSIGNED",
            metadata={"assigned_users": str(assigned_users)},
        )
    return Outcome(replace(sub, renewal_seats=seats))


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
    valid_seats(seats)
    if not payment_method_id:
        raise InvalidInput("payment_method_id is required", field="payment_method_id")
    check_convert_trial(sub, catalog, now)
    product = catalog.product(sub.product_code)
    today = sub.today(now)
    price = catalog.price(product.code, sub.plan, term, sub.currency, sub.channel, today)  # rules §10
    renewal = dates.add_months(today, term.months)
    line = OrderLine(
        description=describe(product, sub.plan, term),
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
    require_open(sub, "change the payment method")


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
