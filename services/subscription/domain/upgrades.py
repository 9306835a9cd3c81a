"""Upgrades and product switches (rules §6): a new subscription for the new product or plan with the old
term's unused value credited, or another product from the next renewal."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.subscription.domain import dates
from services.subscription.domain.aggregate import (
    NO_SHUTOFF,
    NOT_ALIGNED,
    PRODUCT_SWITCH_FROM,
    SERIAL_UPDATE_UP_TO_YEAR,
    Outcome,
    Subscription,
    describe,
    installments_for,
    require_active,
    require_before_renewal,
    require_open,
    require_self_service,
)
from services.subscription.domain.catalog import Catalog, Product
from services.subscription.domain.model import (
    OrderLine,
    Plan,
    ProductKind,
    Stage,
    Transition,
)
from services.subscription.domain.pricing import line_amount, prorate
from shared.errors import InvalidInput, RuleViolation
from shared.money import split_evenly

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
    """What the old term paid for and has not used (rules §6 decision): per-seat price x seats x remaining
    days / term days, remaining days counted in the subscription's zone to the current renewal date and
    term days those of one term as bought (an alignment's extra days were paid at the same per-day price,
    so they are credited at it). A term billed in three annual installments has not paid for the installments that
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


def upgrade_flags(old: Product, new: Product, stage: Stage) -> tuple[bool, bool]:
    """(serial_number_update_required, reinstall_required) of moving from `old` to `new` (rules §6).

    Usually nothing is reinstalled and serial numbers stay. A serial-number update only when the product
    changes away from a standalone product (LT or FULL) of release year 2019 or earlier (ACD, 2019, to
    AEC_COLLECTION: yes; ACDLT, 2021, to ACD: no); never on a plan change of the same product. A reinstall
    only when moving off a suite whose current subscription has expired (Expired or Suspended)."""
    product_changes = new.code != old.code
    serial = product_changes and old.kind.standalone and old.release_year <= SERIAL_UPDATE_UP_TO_YEAR
    reinstall = (
        product_changes and old.kind is ProductKind.SUITE and stage in (Stage.EXPIRED, Stage.SUSPENDED)
    )
    return serial, reinstall


def check_upgrade(sub: Subscription, catalog: Catalog, now: datetime) -> None:
    require_self_service(sub, catalog, "upgrade")
    require_open(sub, "upgrade")
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
    price = catalog.price(product_code, plan, sub.term, sub.currency, sub.channel, today)  # rules §10
    renewal = dates.add_months(today, sub.term.months)
    charge = line_amount(price.list_price, sub.seats, sub.currency)
    remaining = max(0, dates.days_between(today, sub.renewal_date)) if sub.stage is Stage.ACTIVE else 0
    credit = min(unused_value(sub, today), charge)
    lines = [
        OrderLine(
            description=f"Upgrade to {describe(target, plan, sub.term)}",
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
                term_start_date=sub.current_period_start_date,
                term_end_date=sub.term_end_date,
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
        **NOT_ALIGNED,
        version=0,
        create_time=now,
    )
    old = replace(sub, auto_renew=False, access_until=access_until, upgraded_to=new_subscription_id)
    serial, reinstall = upgrade_flags(old_product, target, sub.stage)
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
    require_open(sub, "switch product")
    require_active(sub, "switch product")
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
    require_before_renewal(sub, now, "switch product")


def schedule_product_switch(sub: Subscription, product_code: str, catalog: Catalog, now: datetime) -> Outcome:
    """Switch to another product at the next renewal (bought or renewed on or after 2024-09-16, inside the
    90 days before renewal)."""
    if not product_code:
        raise InvalidInput("product_code is required", field="product_code")
    check_product_switch(sub, catalog, now)
    target = catalog.product(product_code)
    if not target.supported:
        raise RuleViolation(f"{target.name} can no longer be bought", reason="PRODUCT_NOT_SUPPORTED")
    term = sub.pending_term or sub.term
    catalog.price(target.code, sub.plan, term, sub.currency, sub.channel, sub.renewal_date)
    pending = "" if target.code == sub.product_code else target.code
    if pending == sub.pending_product_code:
        raise RuleViolation(f"the subscription already renews as {target.name}", reason="NOTHING_TO_CHANGE")
    return Outcome(replace(sub, pending_product_code=pending))
