"""Protobuf <-> domain conversions of the subscription service (servicer and event encoding)."""

from __future__ import annotations

import json
from decimal import Decimal

from google.protobuf import json_format

from services.subscription.domain import dates
from services.subscription.domain.catalog import Price, Product
from services.subscription.domain.lifecycle import LifecycleState
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
from services.subscription.domain.subscription import Option, OrderRequest, Subscription, lifecycle_state
from shared.errors import InvalidInput

# The wire conversions of every service, used here and re-exported for the servicer and handlers.
from shared.grpc.codec import date_of as date_of
from shared.grpc.codec import date_pb as date_pb
from shared.grpc.codec import timestamp
from shared.money import from_proto, to_proto
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.subscription.v1 import subscription_pb2 as pb

# -- enums: the domain value is the proto value name without its prefix --------------------------------


def _enum_to_pb(enum_type, prefix: str, value) -> int:
    return enum_type.Value(f"{prefix}{value.value}") if value is not None else 0


def _enum_from_pb(enum_type, prefix: str, number: int, domain_cls, field: str, *, default=None):
    if number == 0:
        if default is not None:
            return default
        raise InvalidInput(f"{field} is required", field=field)
    try:
        return domain_cls(enum_type.Name(number).removeprefix(prefix))
    except ValueError:
        raise InvalidInput(f"unknown {field} {number}", field=field) from None


def term_pb(t: Term | None) -> int:
    return _enum_to_pb(common_pb2.Term, "TERM_", t)


def plan_pb(p: Plan | None) -> int:
    return _enum_to_pb(common_pb2.Plan, "PLAN_", p)


def stage_pb(s: Stage | None) -> int:
    return _enum_to_pb(common_pb2.Stage, "STAGE_", s)


def channel_pb(c: Channel | None) -> int:
    return _enum_to_pb(common_pb2.Channel, "CHANNEL_", c)


def pm_type_pb(t: PaymentMethodType | None) -> int:
    return _enum_to_pb(common_pb2.PaymentMethodType, "PAYMENT_METHOD_TYPE_", t)


def policy_pb(p: ShutoffPolicy) -> int:
    return _enum_to_pb(common_pb2.ShutoffPolicy, "SHUTOFF_POLICY_", p)


def kind_pb(k: ProductKind) -> int:
    return _enum_to_pb(common_pb2.ProductKind, "PRODUCT_KIND_", k)


def term_of(n: int, field: str = "term", default: Term | None = None) -> Term:
    return _enum_from_pb(common_pb2.Term, "TERM_", n, Term, field, default=default)


def plan_of(n: int, field: str = "plan", default: Plan | None = None) -> Plan:
    return _enum_from_pb(common_pb2.Plan, "PLAN_", n, Plan, field, default=default)


def stage_of(n: int, field: str = "stage") -> Stage | None:
    return None if n == 0 else _enum_from_pb(common_pb2.Stage, "STAGE_", n, Stage, field)


def channel_of(n: int, field: str = "channel", default: Channel | None = None) -> Channel:
    return _enum_from_pb(common_pb2.Channel, "CHANNEL_", n, Channel, field, default=default)


# -- requests -----------------------------------------------------------------------------------------


def order_request(r: pb.CreateSubscriptionRequest, buyer_email: str) -> OrderRequest:
    """The order as its caller may place it: `buyer_email` is the buyer the caller may name
    (`permissions.order_buyer`)."""
    return OrderRequest(
        account_id=r.account_id,
        buyer_email=buyer_email,
        buyer_name=r.buyer.name,
        buyer_language=r.buyer.language or "en",
        product_code=r.product_code,
        plan=plan_of(r.plan, default=Plan.STANDARD),
        term=None if r.term == 0 else term_of(r.term),
        seats=r.seats,
        currency=r.currency_code.upper(),
        country_code=r.country_code.upper(),
        time_zone=r.time_zone,
        channel=channel_of(r.channel, default=Channel.DIRECT_ONLINE),
        payment_method_id=r.payment_method_id,
        auto_renew=r.auto_renew if r.HasField("auto_renew") else True,
        start_date=date_of(r.start_date, "start_date"),
        trial=r.trial,
        partner_name=r.partner_name,
    )


def target_plan_of(n: int) -> Plan | None:
    return None if n == 0 else plan_of(n, "target_plan")


# -- scalars ------------------------------------------------------------------------------------------


ts_pb = timestamp


def money_pb(amount: Decimal, currency: str):
    return to_proto(amount, currency)


# -- messages -----------------------------------------------------------------------------------------


def subscription_pb(s: Subscription) -> pb.Subscription:
    return pb.Subscription(
        subscription_id=s.subscription_id,
        account_id=s.account_id,
        product_code=s.product_code,
        product_name=s.product_name,
        plan=plan_pb(s.plan),
        term=term_pb(s.term),
        seats=s.seats,
        renewal_seats=s.renewal_seats,
        pending_term=term_pb(s.pending_term),
        pending_product_code=s.pending_product_code,
        currency_code=s.currency,
        unit_price=money_pb(s.unit_price, s.currency),
        channel=channel_pb(s.channel),
        country_code=s.country_code,
        time_zone=s.time_zone,
        auto_renew=s.auto_renew,
        stage=stage_pb(s.stage),
        payment_method_id=s.payment_method_id,
        payment_method_type=pm_type_pb(s.payment_method_type),
        start_date=date_pb(s.start_date),
        current_period_start_date=date_pb(s.current_period_start_date),
        renewal_date=date_pb(s.renewal_date),
        renewal_time=ts_pb(s.renewal_time),
        expiry_date=date_pb(s.expiry_date),
        expiry_time=ts_pb(s.expiry_time),
        installments=s.installments,
        buyer_email=s.buyer_email,
        buyer_name=s.buyer_name,
        buyer_language=s.buyer_language,
        etag=f'W/"{s.version}"',
        create_time=ts_pb(s.create_time),
        shutoff_policy=policy_pb(s.shutoff_policy),
        access_until_time=ts_pb(s.access_until),
        trial_end_date=date_pb(s.trial_end_date),
        partner_name=s.partner_name,
        anchor_date=date_pb(s.anchor_date),
        upgraded_to_subscription_id=s.upgraded_to,
        upgraded_from_subscription_id=s.upgraded_from,
        last_order_date=date_pb(s.last_order_date),
    )


def snapshot_pb(s: Subscription) -> events_pb2.SubscriptionSnapshot:
    """The subscription as events carry it: its profile and its lifecycle part, merged."""
    snap = profile_pb(s)
    snap.MergeFrom(lifecycle_snapshot_pb(lifecycle_state(s)))
    return snap


def profile_pb(s: Subscription) -> events_pb2.SubscriptionSnapshot:
    """The fields of an event snapshot that the lifecycle sweep never changes (who, what, at which price)."""
    return events_pb2.SubscriptionSnapshot(
        subscription_id=s.subscription_id,
        account_id=s.account_id,
        product_code=s.product_code,
        product_name=s.product_name,
        plan=plan_pb(s.plan),
        seats=s.seats,
        shutoff_policy=policy_pb(s.shutoff_policy),
        unit_price=money_pb(s.unit_price, s.currency),
        buyer_email=s.buyer_email,
        buyer_name=s.buyer_name,
        buyer_language=s.buyer_language,
        channel=channel_pb(s.channel),
        renewal_seats=s.renewal_seats,
        included_product_codes=s.included_product_codes,
    )


def lifecycle_snapshot_pb(state: LifecycleState) -> events_pb2.SubscriptionSnapshot:
    """The fields of an event snapshot that follow from the lifecycle state alone (the same for every
    subscription in that state, so the sweep builds them once per state)."""
    return events_pb2.SubscriptionSnapshot(
        term=term_pb(state.term),
        stage=stage_pb(state.stage),
        current_period_start_date=date_pb(state.current_period_start_date),
        renewal_date=date_pb(state.renewal_date),
        renewal_time=ts_pb(state.renewal_time),
        expiry_date=date_pb(dates.expiry_date(state.renewal_date)),
        expiry_time=ts_pb(dates.expiry_instant(state.renewal_date, state.time_zone)),
        auto_renew=state.auto_renew,
        time_zone=state.time_zone,
        access_until_time=ts_pb(state.access_until),
    )


def event_profile(s: Subscription) -> str:
    """`profile_pb` as the members of a proto3 JSON object (no braces), stored on the subscription row so
    that the sweep's set-based statement can write event payloads by concatenation."""
    return json.dumps(json_format.MessageToDict(profile_pb(s)), ensure_ascii=False, separators=(",", ":"))[
        1:-1
    ]


def product_pb(p: Product, upgrades_to: list[str]) -> pb.Product:
    return pb.Product(
        product_code=p.code,
        name=p.name,
        kind=kind_pb(p.kind),
        shutoff_policy=policy_pb(p.shutoff_policy),
        upgrades_to=upgrades_to,
        release_year=p.release_year,
        supported=p.supported,
        contains=list(p.contains),
    )


def price_pb(p: Price) -> pb.Price:
    return pb.Price(
        product_code=p.product_code,
        plan=plan_pb(p.plan),
        term=term_pb(p.term),
        currency_code=p.currency,
        list_price=money_pb(p.list_price, p.currency),
        renewal_price=money_pb(p.renewal_price, p.currency),
        channel=channel_pb(p.channel),
        effective_date=date_pb(p.effective_date),
    )


def line_pb(ln: OrderLine) -> pb.OrderLine:
    return pb.OrderLine(
        description=ln.description,
        quantity=ln.quantity,
        unit_price=money_pb(ln.unit_price, ln.currency),
        period_start_date=date_pb(ln.period_start_date),
        period_end_date=date_pb(ln.period_end_date),
        amount=money_pb(ln.amount, ln.currency),
        subscription_id=ln.subscription_id,
        prorated_days=ln.prorated_days,
        term_days=ln.term_days,
        term_start_date=date_pb(ln.term_start_date),
        term_end_date=date_pb(ln.term_end_date),
        explanation=ln.explanation(),
    )


def option_pb(o: Option) -> pb.SelfServiceOption:
    return pb.SelfServiceOption(
        action=pb.SelfServiceAction.Value(f"SELF_SERVICE_ACTION_{o.action}"),
        available=o.available,
        reason=o.reason,
        error_reason=f"ERROR_REASON_{o.error_reason}" if o.error_reason else "",
    )


def transition_pb(t: Transition) -> pb.LifecycleTransition:
    return pb.LifecycleTransition(
        from_stage=stage_pb(t.from_stage),
        to_stage=stage_pb(t.to_stage),
        transition_time=ts_pb(t.at),
        reason=t.reason,
    )


UPCOMING_KINDS = {
    "RENEWAL": pb.UPCOMING_PAYMENT_KIND_RENEWAL,
    "INSTALLMENT": pb.UPCOMING_PAYMENT_KIND_INSTALLMENT,
}


def upcoming_payment_pb(p) -> pb.UpcomingPayment:
    """`p`: a `previews.UpcomingPayment`."""
    cur = p.currency
    return pb.UpcomingPayment(
        subscription_id=p.subscription_id,
        product_code=p.product_code,
        product_name=p.product_name,
        kind=UPCOMING_KINDS[p.kind],
        due_date=date_pb(p.due_date),
        seats=p.seats,
        unit_price=money_pb(p.unit_price, cur),
        subtotal=money_pb(p.subtotal, cur),
        tax=money_pb(p.tax, cur),
        total=money_pb(p.total, cur),
        installment_sequence=p.sequence,
        installment_count=p.count,
        applied_changes=list(p.applied),
        term=term_pb(p.term),
    )


# -- partner quotes (rules §9) --------------------------------------------------------------------------


def quote_line_spec_of(m: pb.QuoteLineSpec):
    from services.subscription.domain.quotes import LineKind, LineSpec

    kind = _enum_from_pb(pb.QuoteLineKind, "QUOTE_LINE_KIND_", m.kind, LineKind, "lines.kind")
    return LineSpec(
        kind,
        m.subscription_id.strip(),
        m.product_code.strip(),
        plan_of(m.plan, "lines.plan", default=Plan.STANDARD),
        term_of(m.term, "lines.term") if m.term else None,
        m.seats,
        m.align_to_subscription_id.strip(),
    )


def quote_contacts_of(buyer: pb.Buyer, payer_emails):
    from services.subscription.domain.quotes import Contacts

    return Contacts(buyer.email, buyer.name, buyer.language or "en", tuple(payer_emails))


def quote_pb(q, today) -> pb.Quote:
    cur = q.currency
    return pb.Quote(
        quote_number=q.quote_number,
        version=q.version,
        partner=q.partner,
        account_id=q.account_id,
        buyer=pb.Buyer(
            email=q.contacts.buyer_email, name=q.contacts.buyer_name, language=q.contacts.buyer_language
        ),
        payer_emails=list(q.contacts.payer_emails),
        currency_code=cur,
        country_code=q.country_code,
        time_zone=q.time_zone,
        lines=[
            pb.QuoteLineSpec(
                kind=pb.QuoteLineKind.Value(f"QUOTE_LINE_KIND_{ln.kind.value}"),
                subscription_id=ln.subscription_id,
                product_code=ln.product_code,
                plan=plan_pb(ln.plan),
                term=term_pb(ln.term),
                seats=ln.seats,
                align_to_subscription_id=ln.align_to,
            )
            for ln in q.lines
        ],
        status=pb.QuoteStatus.Value(f"QUOTE_STATUS_{q.status_on(today).value}"),
        priced_lines=[line_pb(ln) for ln in q.priced],
        subtotal=money_pb(q.subtotal, cur),
        tax=money_pb(q.tax, cur),
        total=money_pb(q.total, cur),
        issue_date=date_pb(q.issue_date) if q.issue_date else None,
        valid_until_date=date_pb(q.valid_until) if q.valid_until else None,
        order_number=q.order_number,
        invoice_id=q.invoice_id,
        subscription_id=q.subscription_id,
        partner_email=q.partner_email,
        partner_language=q.partner_language,
    )


# -- the managed catalog (rules §10) --------------------------------------------------------------------


def product_spec_of(m: pb.ProductSpec, *, new: bool) -> Product:
    """A product as an operator writes it; a new product is always sold (`supported`)."""
    kind = _enum_from_pb(common_pb2.ProductKind, "PRODUCT_KIND_", m.kind, ProductKind, "product.kind")
    policy = _enum_from_pb(
        common_pb2.ShutoffPolicy,
        "SHUTOFF_POLICY_",
        m.shutoff_policy,
        ShutoffPolicy,
        "product.shutoff_policy",
        default=ShutoffPolicy.STANDARD,
    )
    return Product(
        code=m.product_code.strip().upper(),
        name=m.name.strip(),
        kind=kind,
        shutoff_policy=policy,
        release_year=m.release_year,
        supported=True if new else m.supported,
        full_product=m.full_product_code.strip().upper(),
        contains=tuple(c.strip().upper() for c in m.contains),
        upgrade_paths=tuple(c.strip().upper() for c in m.upgrade_paths),
    )


def money_of(m, field: str) -> tuple[Decimal, str]:
    """(amount, currency) of a google.type.Money that must be set."""
    if not m.currency_code and not m.units and not m.nanos:
        raise InvalidInput(f"{field} is required", field=field)
    try:
        money = from_proto(m)
    except InvalidInput as e:
        raise InvalidInput(f"{field}: {e}", field=field) from None
    return money.amount, money.currency
