"""The subscription aggregate (rules §2): its fields and derived dates, its lifecycle state, the `Outcome`
every command returns, and the guards the commands share. The commands live by family in `orders`,
`renewals`, `upgrades`, `refunds` and `options`; `subscription` names them all."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict

from services.subscription.domain import dates, lifecycle
from services.subscription.domain.catalog import Catalog, Product
from services.subscription.domain.model import (
    Channel,
    OrderLine,
    PaymentMethodType,
    Plan,
    ShutoffPolicy,
    Stage,
    Term,
    Transition,
)
from services.subscription.domain.selfservice import self_service_refusal
from shared.errors import InvalidInput, RuleViolation

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
    # the shutoff (rules §4), fixed when it starts: why, from which local date, and when the later stages
    # begin; the invoice whose payment ends it (a declined renewal's or an overdue one's)
    shutoff_reason: str = ""
    shutoff_start_date: date | None = None
    suspend_time: datetime | None = None
    cancel_time: datetime | None = None
    shutoff_invoice_id: str = ""
    last_reminder_days: int | None = None  # the nearest renewal reminder sent in this term (45, 30, 4)
    prepay_pending: bool = False  # cancelled for an unpaid credit line; billing is still to be told
    # an alignment of the current term (rules §3): the renewal date, anchor and months from the anchor the
    # term had as bought, before the first alignment moved them (None: not aligned this term)
    aligned_from_date: date | None = None
    aligned_from_anchor_date: date | None = None
    aligned_from_months: int | None = None
    version: int = 0
    create_time: datetime | None = None

    # -- derived dates (rules §2) ----------------------------------------------------------------------
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
    def term_end_date(self) -> date:
        """End of the current term as bought (its start + one term from the anchor): the renewal date,
        unless an alignment has moved that date since."""
        return self.aligned_from_date or self.renewal_date

    @property
    def term_days(self) -> int:
        """Days of one term as bought, the denominator of every proration of this term (rules §3, §6): an
        alignment adds days to the term but does not make a day cheaper."""
        return dates.days_between(self.current_period_start_date, self.term_end_date)

    @property
    def aligned(self) -> bool:
        return self.aligned_from_date is not None

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


class ShutoffFields(TypedDict):
    shutoff_reason: str
    shutoff_start_date: date | None
    suspend_time: datetime | None
    cancel_time: datetime | None
    shutoff_invoice_id: str
    prepay_pending: bool


#: The shutoff fields of a subscription that is not shut off (`replace(sub, **NO_SHUTOFF)`).
NO_SHUTOFF: ShutoffFields = {
    "shutoff_reason": "",
    "shutoff_start_date": None,
    "suspend_time": None,
    "cancel_time": None,
    "shutoff_invoice_id": "",
    "prepay_pending": False,
}


def require_no_unpaid_invoice(sub: Subscription, action: str) -> None:
    """A shutoff for an overdue invoice ends when that invoice is paid; its term has already renewed."""
    if sub.stage in (Stage.EXPIRED, Stage.SUSPENDED) and sub.shutoff_reason == lifecycle.INVOICE_OVERDUE:
        raise RuleViolation(
            f"cannot {action}: the subscription is {sub.stage.value.lower()} because invoice "
            f"{sub.shutoff_invoice_id} is unpaid past its due date; paying it returns the subscription to "
            "Active",
            reason="INVOICE_UNPAID",
            metadata={"invoice_id": sub.shutoff_invoice_id},
        )


class AlignmentFields(TypedDict):
    aligned_from_date: date | None
    aligned_from_anchor_date: date | None
    aligned_from_months: int | None


#: The alignment fields of a term that no alignment has moved (`replace(sub, **NOT_ALIGNED)`): a new term.
NOT_ALIGNED: AlignmentFields = {
    "aligned_from_date": None,
    "aligned_from_anchor_date": None,
    "aligned_from_months": None,
}


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


def require_open(sub: Subscription, action: str, *, trial_ok: bool = False) -> None:
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


def require_active(sub: Subscription, action: str) -> None:
    if sub.stage is not Stage.ACTIVE:
        raise RuleViolation(
            f"cannot {action} while the subscription is {sub.stage.value.lower()}; renew it first",
            reason="STAGE_NOT_ALLOWED",
        )


def require_before_renewal(sub: Subscription, now: datetime, action: str) -> None:
    if now >= sub.renewal_time:
        raise RuleViolation(
            f"cannot {action}: the renewal instant {sub.renewal_time.isoformat()} has passed",
            reason="RENEWAL_PASSED",
        )


def valid_seats(seats: int, field_name: str = "seats") -> int:
    if seats < 1:
        raise InvalidInput("seats must be at least 1", field=field_name)
    if seats > MAX_SEATS:
        raise InvalidInput(f"seats must be at most {MAX_SEATS}", field=field_name)
    return seats


def installments_for(term: Term, period_start: date) -> int:
    """A 3-year term bought or renewed on or after 2024-09-16 is billed in three annual installments."""
    return 3 if term is Term.THREE_YEAR and period_start >= INSTALLMENTS_FROM else 1


def describe(product: Product, plan: Plan, term: Term) -> str:
    return f"{product.name} ({plan.value.title()}, {TERM_WORDS[term]})"
