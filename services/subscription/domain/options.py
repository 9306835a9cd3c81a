"""The self-service options of a subscription (rules §3): each portal action, available or not and why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.subscription.domain.aggregate import (
    Subscription,
)
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.model import (
    PaymentMethodType,
    Stage,
)
from services.subscription.domain.orders import (
    check_add_seats,
    check_change_payment_method,
    check_convert_trial,
    check_pay_by_invoice,
    check_set_renewal_seats,
)
from services.subscription.domain.refunds import refund_kind
from services.subscription.domain.renewals import (
    check_align_one,
    check_change_term,
    check_renew,
    check_set_auto_renew,
)
from services.subscription.domain.upgrades import check_product_switch, check_upgrade
from shared.errors import DomainError, RuleViolation

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

    def refund_check() -> None:
        refund_kind(sub, catalog, now)

    def upgrade_check() -> None:
        check_upgrade(sub, catalog, now)

    checks: dict[str, Callable[[], None]] = {
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
        "REQUEST_REFUND": refund_check,
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
