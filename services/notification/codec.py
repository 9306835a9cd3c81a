"""The notification service's protobuf conversions: consumed events (tenure.events.v1) → the
domain's EventFacts, and the API's enums and `Notification` messages (tenure.notification.v1)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.notification.adapters.tables import AttachmentRow, NotificationRow
from services.notification.domain.model import EventFacts, Kind, MailFacts, Person, Role, Status
from services.notification.domain.reminders import INVOICE_REMINDER_EVENT
from services.notification.domain.shutoff import ShutoffPolicy
from shared.errors import InvalidInput
from shared.grpc.codec import timestamp
from shared.money import from_proto
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.notification.v1 import notification_pb2 as pb

SHUTOFF = ShutoffPolicy()


def _enum_name(enum, value: int, prefix: str) -> str:
    try:
        name = enum.Name(value)
    except ValueError:
        return ""
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix)


def _date(msg) -> date | None:
    if msg is None or msg.year == 0:
        return None
    return date(msg.year, msg.month, msg.day)


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local_date(ts, zone: ZoneInfo) -> date | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.fromtimestamp(ts.seconds, tz=UTC).astimezone(zone).date()


def _money(msg) -> tuple[object, str]:
    if msg is None or not msg.currency_code:
        return None, ""
    try:
        m = from_proto(msg)
    except InvalidInput:
        return None, ""
    return m.amount, m.currency


def _role(value: int) -> Role | None:
    name = _enum_name(common_pb2.Role, value, "ROLE_")
    return Role(name) if name in Role.__members__ else None


def _snapshot_facts(snap: events_pb2.SubscriptionSnapshot) -> MailFacts:
    amount, currency = _money(snap.unit_price)
    return MailFacts(
        account_id=snap.account_id,
        subscription_id=snap.subscription_id,
        product_code=snap.product_code,
        product_name=snap.product_name or snap.product_code,
        plan=_enum_name(common_pb2.Plan, snap.plan, "PLAN_"),
        term=_enum_name(common_pb2.Term, snap.term, "TERM_"),
        seats=snap.seats,
        currency_code=currency,
        renewal_date=_date(snap.renewal_date),
        expiry_date=_date(snap.expiry_date),
        auto_renew=snap.auto_renew,
        immediate_shutoff=snap.shutoff_policy == common_pb2.SHUTOFF_POLICY_IMMEDIATE,
    )


def _buyer(snap: events_pb2.SubscriptionSnapshot) -> Person | None:
    if not snap.buyer_email:
        return None
    return Person(snap.buyer_email, snap.buyer_name, snap.buyer_language)


def _invoice_facts(inv: events_pb2.InvoiceSummary) -> MailFacts:
    amount, currency = _money(inv.total)
    return MailFacts(
        account_id=inv.account_id,
        subscription_id=inv.subscription_id,
        order_number=inv.order_number,
        invoice_number=inv.invoice_number,
        amount=amount,
        currency_code=currency,
        due_date=_date(inv.due_date),
        issue_date=_local_date(inv.issue_time, zone_of(inv.time_zone)),
        payment_method=_enum_name(
            common_pb2.PaymentMethodType, inv.payment_method_type, "PAYMENT_METHOD_TYPE_"
        ),
    )


def _partner(c: events_pb2.PartnerContact) -> Person | None:
    if not c.email:
        return None
    return Person(c.email, c.partner, c.language, frozenset({Role.PARTNER}))


def _partner_facts(base: EventFacts, ev: events_pb2.Event) -> EventFacts:
    """Quote mail (rules §9): the quote to its buyer, its acceptance and expiry and a sold subscription's
    renewal opportunity to the partner."""
    which = ev.WhichOneof("payload")
    if which == "quote_issued":
        p = ev.quote_issued
        total, currency = _money(p.total)
        subtotal, _ = _money(p.subtotal)
        tax, _ = _money(p.tax)
        return replace(
            base,
            subject=Person(p.buyer_email, p.buyer_name, p.buyer_language, frozenset({Role.BUYER})),
            partner=_partner(p.partner_contact),
            facts=replace(
                base.facts,
                quote_number=p.quote_number,
                quote_version=p.version,
                partner_name=p.partner_contact.partner,
                customer_name=p.buyer_name,
                customer_email=p.buyer_email,
                amount=total,
                subtotal=subtotal,
                tax=tax,
                currency_code=currency,
                issue_date=_date(p.issue_date),
                valid_until_date=_date(p.valid_until_date),
            ),
        )
    if which == "quote_accepted":
        p = ev.quote_accepted
        snap = p.subscription
        amount, currency = _money(p.amount)
        return replace(
            base,
            account_id=base.account_id or snap.account_id,
            subscription_id=base.subscription_id or snap.subscription_id,
            partner=_partner(p.partner_contact),
            facts=replace(
                _snapshot_facts(snap),
                quote_number=p.quote_number,
                quote_version=p.version,
                partner_name=p.partner_contact.partner or p.partner,
                customer_name=snap.buyer_name,
                customer_email=p.buyer_email,
                order_number=p.order_number,
                amount=amount,
                **({"currency_code": currency} if currency else {}),
            ),
        )
    if which == "quote_expired":
        p = ev.quote_expired
        total, currency = _money(p.total)
        return replace(
            base,
            partner=_partner(p.partner_contact),
            facts=replace(
                base.facts,
                quote_number=p.quote_number,
                quote_version=p.version,
                partner_name=p.partner_contact.partner,
                customer_name=p.buyer_name,
                customer_email=p.buyer_email,
                amount=total,
                currency_code=currency,
                valid_until_date=_date(p.valid_until_date),
            ),
        )
    p = ev.renewal_opportunity
    snap = p.subscription
    return replace(
        base,
        account_id=base.account_id or snap.account_id,
        subscription_id=base.subscription_id or snap.subscription_id,
        partner=_partner(p.partner_contact),
        facts=replace(
            _snapshot_facts(snap),
            partner_name=p.partner_contact.partner,
            customer_name=snap.buyer_name,
            customer_email=snap.buyer_email,
            days_before=p.days_before,
        ),
    )


def to_facts(ev: events_pb2.Event) -> EventFacts:
    """The facts of one event; events without a payload this service knows carry only the envelope."""
    base = EventFacts(
        event_id=ev.event_id,
        event_type=ev.event_type,
        account_id=ev.account_id,
        subscription_id=ev.subscription_id,
        time=ev.occurred_time.ToDatetime(tzinfo=UTC) if ev.HasField("occurred_time") else None,
        facts=MailFacts(account_id=ev.account_id, subscription_id=ev.subscription_id),
    )
    which = ev.WhichOneof("payload")
    if which is None:
        return base

    if which in (
        "subscription_created",
        "subscription_renewed",
        "seats_added",
        "stage_changed",
        "renewal_reminder",
        "subscription_refunded",
        "subscription_changed",
    ):
        p = getattr(ev, which)
        snap = p.subscription
        facts = _snapshot_facts(snap)
        extra: dict[str, object] = {}
        event_extra: dict[str, object] = {}
        if which == "subscription_created":
            amount, currency = _money(p.amount)
            extra = dict(order_number=p.order_number, amount=amount, trial=p.trial)
            if currency:
                extra["currency_code"] = currency
            event_extra["invoice_id"] = p.invoice_id
        elif which == "subscription_renewed":
            amount, currency = _money(p.amount)
            extra = dict(order_number=p.order_number, amount=amount)
            if currency:
                extra["currency_code"] = currency
            event_extra["invoice_id"] = p.invoice_id
        elif which == "seats_added":
            amount, currency = _money(p.prorated_amount)
            extra = dict(order_number=p.order_number, amount=amount, seats_added=p.seats_added)
            if currency:
                extra["currency_code"] = currency
            event_extra["invoice_id"] = p.invoice_id
        elif which == "stage_changed":
            to_stage = _enum_name(common_pb2.Stage, p.to_stage, "STAGE_")
            entered = _local_date(p.transition_time, zone_of(snap.time_zone)) or facts.expiry_date
            extra = dict(
                reason=p.reason,
                next_stage_date=SHUTOFF.next_stage_date(to_stage, facts.term, entered) if entered else None,
            )
            event_extra = dict(to_stage=to_stage, reason=p.reason)
        elif which == "subscription_changed":
            amount, currency = _money(p.amount)
            extra = dict(order_number=p.order_number, amount=amount, order_kind=p.change)
            if currency:
                extra["currency_code"] = currency
            event_extra = dict(invoice_id=p.invoice_id, change=p.change)
        elif which == "renewal_reminder":
            extra = dict(days_before=p.days_before)
        elif which == "subscription_refunded":
            amount, currency = _money(p.refunded_amount)
            extra = dict(amount=amount)
            if currency:
                extra["currency_code"] = currency
        return replace(
            base,
            account_id=base.account_id or snap.account_id,
            subscription_id=base.subscription_id or snap.subscription_id,
            buyer=_buyer(snap),
            facts=replace(facts, **extra),
            **event_extra,
        )

    if which in ("quote_issued", "quote_accepted", "quote_expired", "renewal_opportunity"):
        return _partner_facts(base, ev)

    if which == "subscription_upgraded":
        p = ev.subscription_upgraded
        new, old = p.new_subscription, p.old_subscription
        facts = _snapshot_facts(new)
        zone = zone_of(new.time_zone or old.time_zone)
        facts = replace(
            facts,
            order_number=p.order_number,
            old_product_name=old.product_name or old.product_code,
            old_access_until_date=_local_date(p.old_access_until_time, zone),
        )
        if p.HasField("amount"):
            amount, currency = _money(p.amount)
            facts = replace(facts, amount=amount, **({"currency_code": currency} if currency else {}))
        return replace(
            base,
            account_id=base.account_id or new.account_id,
            subscription_id=base.subscription_id or new.subscription_id,
            buyer=_buyer(new) or _buyer(old),
            facts=facts,
        )

    if which in ("invoice_issued", "invoice_overdue", "payment_failed", "invoice_paid"):
        p = getattr(ev, which)
        inv = p.invoice
        facts = _invoice_facts(inv)
        if ev.event_type == INVOICE_REMINDER_EVENT and base.time is not None and facts.due_date:
            # a reminder carries its invoice's issue event; its time is when it comes due
            day = base.time.astimezone(zone_of(inv.time_zone)).date()
            facts = replace(facts, days_before=(facts.due_date - day).days)
        if which == "payment_failed":
            zone = zone_of(inv.time_zone)
            facts = replace(
                facts,
                decline_reason=p.decline_reason,
                retry_attempt=p.attempt,
                next_retry_date=_local_date(p.next_retry_time, zone)
                if p.HasField("next_retry_time")
                else None,
                update_payment_method=p.update_payment_method,
            )
        return replace(
            base,
            account_id=base.account_id or inv.account_id,
            subscription_id=base.subscription_id or inv.subscription_id,
            buyer=Person(inv.buyer_email) if inv.buyer_email else None,
            payer_emails=tuple(inv.payer_emails),
            invoice_id=inv.invoice_id,
            facts=facts,
        )

    if which == "seat_assigned":
        p = ev.seat_assigned
        return replace(
            base,
            account_id=base.account_id or p.account_id,
            subscription_id=base.subscription_id or p.subscription_id,
            subject=Person(p.user_email, p.user_name, p.language, frozenset({Role.USER})),
            facts=replace(
                base.facts,
                account_id=base.account_id or p.account_id,
                subscription_id=p.subscription_id,
                product_code=p.product_code,
                product_name=p.product_name or p.product_code,
                member_name=p.user_name,
                member_email=p.user_email.strip().lower(),
            ),
        )

    if which == "role_changed":
        p = ev.role_changed
        role = _role(p.role)
        roles = frozenset({role}) if (role and p.granted) else frozenset()
        return replace(
            base,
            account_id=base.account_id or p.account_id,
            subject=Person(p.email, p.name, p.language, roles),
            facts=replace(
                base.facts,
                account_id=base.account_id or p.account_id,
                role=role.value if role else "",
                granted=p.granted,
                member_name=p.name,
                member_email=p.email.strip().lower(),
                actor_email=p.actor_email,
            ),
        )

    return base


# --- the API (tenure.notification.v1) -------------------------------------------------------------


def kind_of(value: int, *, required: bool) -> Kind | None:
    if value == pb.NOTIFICATION_KIND_UNSPECIFIED:
        if required:
            raise InvalidInput("kind is required", field="kind", reason="KIND_REQUIRED")
        return None
    try:
        name = pb.NotificationKind.Name(value)
    except ValueError:
        raise InvalidInput(f"unknown kind {value}", field="kind", reason="KIND_REQUIRED") from None
    return Kind(name.removeprefix("NOTIFICATION_KIND_"))


def status_of(value: int) -> Status | None:
    if value == pb.NOTIFICATION_STATUS_UNSPECIFIED:
        return None
    try:
        return Status(pb.NotificationStatus.Name(value).removeprefix("NOTIFICATION_STATUS_"))
    except ValueError:
        raise InvalidInput(f"unknown status {value}", field="status", reason="INVALID_ARGUMENT") from None


def _role_pb(role: str) -> int:
    """The proto role of a recipient; a partner holds no role on the account (unspecified)."""
    return common_pb2.Role.Value(f"ROLE_{role}") if f"ROLE_{role}" in common_pb2.Role.keys() else 0


def notification_pb(row: NotificationRow, files: list[AttachmentRow], *, bodies: bool) -> pb.Notification:
    msg = pb.Notification(
        notification_id=row.notification_id,
        event_id=row.event_id,
        event_type=row.event_type,
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        kind=pb.NotificationKind.Value(f"NOTIFICATION_KIND_{row.kind}"),
        recipient_email=row.recipient_email,
        recipient_name=row.recipient_name,
        recipient_role=_role_pb(row.recipient_role),
        language=row.language,
        subject=row.subject,
        status=pb.NotificationStatus.Value(f"NOTIFICATION_STATUS_{row.status}"),
        attempts=row.attempts,
        last_error=row.last_error,
        resend_of_notification_id=row.resend_of_notification_id,
        message_id=row.message_id,
        attachments=[
            pb.Attachment(filename=f.filename, content_type=f.content_type, size_bytes=len(f.content))
            for f in files
        ],
    )
    for name, value in (
        ("sent_time", row.sent_time),
        ("create_time", row.create_time),
        ("next_attempt_time", row.next_attempt_time if row.status == Status.PENDING.value else None),
    ):
        ts = timestamp(value)
        if ts is not None:
            getattr(msg, name).CopyFrom(ts)
    if bodies:
        msg.text_body = row.text_body
        msg.html_body = row.html_body
    return msg
