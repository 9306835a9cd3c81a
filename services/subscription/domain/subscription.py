"""The subscription aggregate and every order and change on it (rules §2, §3, §6), by one name.

Each command is a pure function: it takes a subscription (and the catalog and the current instant), checks
the rules, and returns an `Outcome` with the changed copy, the order lines to invoice and the stage
transitions to record. Nothing here does I/O; the handlers persist outcomes and call billing. The code
lives by family: the aggregate and its shared guards (`aggregate`), new subscriptions and changes of the
term in progress (`orders`), renewal and alignment (`renewals`), upgrades and product switches
(`upgrades`), refunds (`refunds`) and the self-service options (`options`).
"""

from __future__ import annotations

from services.subscription.domain.aggregate import (
    INSTALLMENTS_FROM,
    MAX_SEATS,
    NO_SHUTOFF,
    PRODUCT_SWITCH_FROM,
    REFUND_DAYS,
    SERIAL_UPDATE_UP_TO_YEAR,
    TERM_WORDS,
    Outcome,
    Subscription,
    describe,
    installments_for,
    lifecycle_state,
    require_active,
    require_before_renewal,
    require_no_unpaid_invoice,
    require_open,
    require_self_service,
    valid_seats,
    with_state,
)
from services.subscription.domain.options import (
    ACTIONS,
    Option,
    self_service_options,
)
from services.subscription.domain.orders import (
    OrderRequest,
    add_seats,
    change_payment_method,
    check_add_seats,
    check_change_payment_method,
    check_convert_trial,
    check_pay_by_invoice,
    check_set_renewal_seats,
    convert_trial,
    create,
    set_renewal_seats,
)
from services.subscription.domain.refunds import (
    check_refund,
    refund,
    refund_window_days,
)
from services.subscription.domain.renewals import (
    AlignOutcome,
    align,
    change_term,
    check_align_one,
    check_change_term,
    check_renew,
    check_set_auto_renew,
    renew,
    renew_term,
    set_auto_renew,
)
from services.subscription.domain.upgrades import (
    UpgradeOutcome,
    check_product_switch,
    check_upgrade,
    schedule_product_switch,
    unused_value,
    upgrade,
)

__all__ = [
    "ACTIONS",
    "AlignOutcome",
    "INSTALLMENTS_FROM",
    "MAX_SEATS",
    "NO_SHUTOFF",
    "Option",
    "OrderRequest",
    "Outcome",
    "PRODUCT_SWITCH_FROM",
    "REFUND_DAYS",
    "SERIAL_UPDATE_UP_TO_YEAR",
    "Subscription",
    "TERM_WORDS",
    "UpgradeOutcome",
    "add_seats",
    "align",
    "change_payment_method",
    "change_term",
    "check_add_seats",
    "check_align_one",
    "check_change_payment_method",
    "check_change_term",
    "check_convert_trial",
    "check_pay_by_invoice",
    "check_product_switch",
    "check_refund",
    "check_renew",
    "check_set_auto_renew",
    "check_set_renewal_seats",
    "check_upgrade",
    "convert_trial",
    "create",
    "describe",
    "installments_for",
    "lifecycle_state",
    "refund",
    "refund_window_days",
    "renew",
    "renew_term",
    "require_active",
    "require_before_renewal",
    "require_no_unpaid_invoice",
    "require_open",
    "require_self_service",
    "schedule_product_switch",
    "self_service_options",
    "set_auto_renew",
    "set_renewal_seats",
    "unused_value",
    "upgrade",
    "valid_seats",
    "with_state",
]
