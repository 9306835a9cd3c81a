"""Partner quotes on the real service (rules §9): the partner's token, the quote's lifecycle and the one
order an accepted quote books, with its invoice, installments and the event that tells the partner."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import bearer, issuer, person
from tests.service.notification.conftest import peers, smtp, start_notification, wait_for  # noqa: F401

from .conftest import KARI, OPERATOR, Stack, error_info, money, outbox_events, rid

ACME = "ACME Reseller AS"
OTHER = "Other Partner Ltd"
SALLY = "sally@acme.example"  # ACME's staff
OLE = "ole@other.example"  # staff of the other partner


def partner(email: str = SALLY, org: str = ACME):
    return bearer(issuer().person(email, partner=org))


def _new_line(term=common_pb2.TERM_THREE_YEAR, seats=1):
    return pb.QuoteLineSpec(
        kind=pb.QUOTE_LINE_KIND_NEW_SUBSCRIPTION,
        product_code="ACDLT",
        plan=common_pb2.PLAN_STANDARD,
        term=term,
        seats=seats,
    )


def _quote(
    stack, account: str, line: pb.QuoteLineSpec, buyer: str = KARI, who=None, partner_language: str = ""
) -> pb.Quote:
    q = stack.sub.CreateQuote(
        pb.CreateQuoteRequest(
            request_id=rid(),
            account_id=account,
            buyer=pb.Buyer(email=buyer, name="Kari Nordmann", language="nb"),
            currency_code="USD",
            country_code="NO",
            time_zone="Europe/Oslo",
            lines=[line],
            partner_language=partner_language,
        ),
        metadata=who or partner(),
    ).quote
    assert q.status == pb.QUOTE_STATUS_DRAFT and q.partner == ACME
    return stack.sub.IssueQuote(
        pb.IssueQuoteRequest(request_id=rid(), quote_number=q.quote_number), metadata=who or partner()
    ).quote


def _invoice_method(stack, account: str, who: str = KARI) -> str:
    resp = stack.billing.AddPaymentMethod(
        billing_pb2.AddPaymentMethodRequest(
            account_id=account, type=common_pb2.PAYMENT_METHOD_TYPE_INVOICE, request_id=rid()
        ),
        metadata=person(who),
    )
    return resp.payment_method.payment_method_id


def _accept(stack, q: pb.Quote, pm: str, version: int = 0, who: str = KARI) -> pb.AcceptQuoteResponse:
    return stack.sub.AcceptQuote(
        pb.AcceptQuoteRequest(
            request_id=rid(), quote_number=q.quote_number, version=version, payment_method_id=pm
        ),
        metadata=person(who),
    )


def _refused(call) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), error_info(e.value).reason.removeprefix("ERROR_REASON_"), e.value.details()


def _partner_subscription(stack, account: str, renewal_start: datetime) -> pb.Subscription:
    """An annual ACDLT subscription that ACME sold (ordered by Kari at `renewal_start` through a quote)."""
    stack.clock.set(renewal_start)
    q = _quote(stack, account, _new_line(term=common_pb2.TERM_ANNUAL, seats=2))
    return _accept(stack, q, stack.card(account)).subscription


def _mail_of(start_service, peers, smtp, stack, *event_types: str):  # noqa: F811
    """A notification service given the subscription service's events of these types (as its relay would
    deliver them)."""
    notif = start_notification(start_service, peers, smtp.port)
    for ev in outbox_events(stack.sub_app.db):
        if ev.event_type in event_types:
            notif.sink.Deliver(events_pb2.DeliverRequest(event=ev))
    return notif


def test_a_3_year_quote_reissued_with_a_corrected_buyer_and_accepted_with_pay_by_invoice(
    stack,
    start_service,
    peers,  # noqa: F811
    smtp,  # noqa: F811
):
    stack.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    v1 = _quote(stack, "acct-q1", _new_line(), buyer="kari@exmaple.no", partner_language="sv")
    assert v1.status == pb.QUOTE_STATUS_ISSUED and v1.version == 1
    assert (v1.partner_email, v1.partner_language) == (SALLY, "sv")
    assert (v1.valid_until_date.year, v1.valid_until_date.month, v1.valid_until_date.day) == (2024, 10, 31)
    assert money(v1.subtotal) == Decimal("1310.00") * 1  # the 3-year list price of one seat
    revised = stack.sub.ReviseQuote(
        pb.ReviseQuoteRequest(
            request_id=rid(), quote_number=v1.quote_number, buyer=pb.Buyer(email=KARI, name="Kari")
        ),
        metadata=partner(),
    )
    v2 = revised.quote
    assert (revised.superseded_version, v2.version, v2.status) == (1, 2, pb.QUOTE_STATUS_ISSUED)
    assert v2.buyer.email == KARI and v2.quote_number == v1.quote_number
    old = stack.sub.GetQuote(pb.GetQuoteRequest(quote_number=v1.quote_number, version=1), metadata=partner())
    assert old.quote.status == pb.QUOTE_STATUS_SUPERSEDED

    pm = _invoice_method(stack, "acct-q1")
    code, reason, _ = _refused(lambda: _accept(stack, v1, pm, version=1))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_SUPERSEDED")
    code, reason, _ = _refused(lambda: _accept(stack, v2, pm, who="someone@example.no"))
    assert code == grpc.StatusCode.NOT_FOUND

    done = _accept(stack, v2, pm)
    s = done.subscription
    assert done.order_number and done.invoice_id and done.quote.status == pb.QUOTE_STATUS_ACCEPTED
    assert s.channel == common_pb2.CHANNEL_PARTNER_QUOTE and s.partner_name == ACME
    assert s.term == common_pb2.TERM_THREE_YEAR and s.installments == 3
    inv = stack.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=done.invoice_id)).invoice
    assert inv.order_number == done.order_number
    assert all(v1.quote_number in ln.description for ln in inv.lines)
    assert inv.payment_method_type == common_pb2.PAYMENT_METHOD_TYPE_INVOICE
    parts = stack.billing.ListInstallments(
        billing_pb2.ListInstallmentsRequest(subscription_id=s.subscription_id)
    ).installments
    assert [p.sequence for p in parts] == [1, 2, 3] and parts[0].invoice_id == done.invoice_id
    assert sum((money(p.amount) for p in parts), Decimal(0)) == Decimal("1310.00")

    code, reason, _ = _refused(lambda: _accept(stack, v2, pm))  # accepted once
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_NOT_OPEN")
    events = outbox_events(stack.sub_app.db)
    told = [e.quote_accepted for e in events if e.event_type == "subscription.quote_accepted"]
    assert len(told) == 1 and told[0].partner == ACME and told[0].order_number == done.order_number
    assert (told[0].partner_contact.email, told[0].partner_contact.language) == (SALLY, "sv")
    assert sum(1 for e in events if e.event_type == "subscription.created") == 1
    issued = [e.quote_issued for e in events if e.event_type == "subscription.quote_issued"]
    assert [(i.version, i.buyer_email, i.superseded_version) for i in issued] == [
        (1, "kari@exmaple.no", 0),
        (2, KARI, 1),
    ]

    # the partner is told, in Swedish; each version went to the buyer it named, in the language named with
    # it (version 1 in Norwegian; version 2 named no language: English), with its PDF
    _mail_of(start_service, peers, smtp, stack, "subscription.quote_accepted", "subscription.quote_issued")
    wait_for(lambda: smtp.inbox.to(SALLY) and smtp.inbox.to(KARI) and smtp.inbox.to("kari@exmaple.no"))
    (to_partner,) = smtp.inbox.to(SALLY)
    assert v1.quote_number in to_partner["Subject"] and "godkänd" in to_partner["Subject"]
    assert done.order_number in to_partner.get_body(("plain",)).get_content()
    (first,) = smtp.inbox.to("kari@exmaple.no")
    assert "Tilbud" in first["Subject"] and v1.quote_number in first["Subject"]
    (to_buyer,) = smtp.inbox.to(KARI)
    assert to_buyer["Subject"].startswith(f"Quote {v1.quote_number} from {ACME}")
    (pdf,) = [a for a in to_buyer.iter_attachments() if a.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"{v1.quote_number}-v2.pdf"
    assert pdf.get_content().startswith(b"%PDF")


def test_a_renewal_quote_opens_89_days_before_renewal_and_renews_at_the_renewal_price(stack):
    sub = _partner_subscription(stack, "acct-q2", datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    renewal = pb.QuoteLineSpec(kind=pb.QUOTE_LINE_KIND_RENEWAL, subscription_id=sub.subscription_id)
    stack.clock.set(datetime(2025, 7, 2, 9, 0, tzinfo=UTC))  # 91 days before 2025-10-01
    code, reason, _ = _refused(lambda: _quote(stack, "acct-q2", renewal))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "RENEWAL_WINDOW_NOT_OPEN")
    stack.clock.set(datetime(2025, 7, 4, 9, 0, tzinfo=UTC))  # 89 days before
    q = _quote(stack, "acct-q2", renewal)
    assert money(q.subtotal) == Decimal("840.00")  # 2 seats x the renewal price 420.00
    stack.clock.set(datetime(2025, 8, 1, 9, 0, tzinfo=UTC))
    done = _accept(stack, q, stack.card("acct-q2"))
    s = done.subscription
    assert money(s.unit_price) == Decimal("420.00") and s.seats == 2
    assert (s.current_period_start_date.year, s.current_period_start_date.month) == (2025, 10)
    assert (s.renewal_date.year, s.renewal_date.month, s.renewal_date.day) == (2026, 10, 1)


def test_a_renewal_quote_accepted_while_expired_reinstates_without_a_gap(stack):
    """ACME sold it without automatic renewal; the term ended on 2025-09-30 and ACME quotes the renewal
    on 2025-10-11, 10 days after: accepted while Expired, it is Active again from 2025-10-01."""
    stack.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    order = stack.order(
        "acct-q3", channel=common_pb2.CHANNEL_PARTNER_QUOTE, partner_name=ACME, auto_renew=False, seats=2
    )
    sub = stack.sub.CreateSubscription(order, metadata=OPERATOR).subscription
    stack.clock.set(datetime(2025, 10, 11, 9, 0, tzinfo=UTC))
    stack.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    got = stack.sub.GetSubscription(
        pb.GetSubscriptionRequest(subscription_id=sub.subscription_id)
    ).subscription
    assert got.stage == common_pb2.STAGE_EXPIRED
    code, reason, _ = _refused(
        lambda: stack.sub.RenewSubscription(
            pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=sub.subscription_id)
        )
    )
    assert reason == "SELF_SERVICE_PARTNER"  # the buyer renews it through a quote only
    line = pb.QuoteLineSpec(kind=pb.QUOTE_LINE_KIND_RENEWAL, subscription_id=sub.subscription_id)
    q = _quote(stack, "acct-q3", line)
    assert money(q.subtotal) == Decimal("840.00")
    done = _accept(stack, q, stack.card("acct-q3"))
    s = done.subscription
    assert s.stage == common_pb2.STAGE_ACTIVE and money(s.unit_price) == Decimal("420.00")
    assert (s.current_period_start_date.year, s.current_period_start_date.month) == (2025, 10)
    assert s.current_period_start_date.day == 1
    assert (s.renewal_date.year, s.renewal_date.month, s.renewal_date.day) == (2026, 10, 1)
    history = stack.sub.GetLifecycleHistory(
        pb.GetLifecycleHistoryRequest(subscription_id=sub.subscription_id)
    )
    assert [t.to_stage for t in history.transitions][-2:] == [
        common_pb2.STAGE_EXPIRED,
        common_pb2.STAGE_ACTIVE,
    ]


def test_a_quote_accepted_after_its_validity_date_is_refused(stack):
    stack.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    q = _quote(stack, "acct-q4", _new_line())
    pm = _invoice_method(stack, "acct-q4")
    stack.clock.set(datetime(2024, 11, 1, 9, 0, tzinfo=UTC))  # valid until 2024-10-31
    code, reason, details = _refused(lambda: _accept(stack, q, pm))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_EXPIRED")
    assert "2024-10-31" in details
    got = stack.sub.GetQuote(pb.GetQuoteRequest(quote_number=q.quote_number), metadata=partner()).quote
    assert got.status == pb.QUOTE_STATUS_EXPIRED


def test_a_product_switch_quote_needs_a_term_from_2024_09_16_and_takes_effect_at_renewal(stack):
    old = _partner_subscription(stack, "acct-q6", datetime(2024, 9, 15, 9, 0, tzinfo=UTC))
    new = _partner_subscription(stack, "acct-q5", datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    stack.clock.set(datetime(2025, 8, 1, 9, 0, tzinfo=UTC))  # inside both renewal windows
    switch = pb.QuoteLineSpec(
        kind=pb.QUOTE_LINE_KIND_PRODUCT_SWITCH, subscription_id=old.subscription_id, product_code="ACD"
    )
    code, reason, _ = _refused(lambda: _quote(stack, "acct-q6", switch))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_SWITCH_NOT_ELIGIBLE")
    switch.subscription_id = new.subscription_id
    q = _quote(stack, "acct-q5", switch)
    s = _accept(stack, q, stack.card("acct-q5")).subscription
    assert s.product_code == "ACD" and (
        s.current_period_start_date.year,
        s.current_period_start_date.month,
    ) == (2025, 10)


def test_a_partner_sees_only_its_own_customers_and_refunds_are_the_partners(stack):
    sub = _partner_subscription(stack, "acct-q7", datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    got = stack.sub.GetSubscription(
        pb.GetSubscriptionRequest(subscription_id=sub.subscription_id), metadata=partner()
    ).subscription
    assert got.subscription_id == sub.subscription_id
    req = pb.GetSubscriptionRequest(subscription_id=sub.subscription_id)
    code, _, _ = _refused(lambda: stack.sub.GetSubscription(req, metadata=partner(OLE, OTHER)))
    assert code == grpc.StatusCode.NOT_FOUND
    renewal = pb.QuoteLineSpec(kind=pb.QUOTE_LINE_KIND_RENEWAL, subscription_id=sub.subscription_id)
    code, _, _ = _refused(lambda: _quote(stack, "acct-q7", renewal, who=partner(OLE, OTHER)))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _, _ = _refused(lambda: _quote(stack, "acct-q7", renewal, who=person("kari@example.no")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, reason, details = _refused(
        lambda: stack.sub.RequestRefund(
            pb.RequestRefundRequest(
                request_id=rid(), subscription_id=sub.subscription_id, reason="changed mind"
            )
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_NOT_DIRECT") and ACME in details


def test_an_issued_quote_expires_after_its_validity_date_and_tells_the_partner_once(
    start_service,
    clock,
    peers,  # noqa: F811
    smtp,  # noqa: F811
):
    """Issued 2024-10-01, valid until 2024-10-31: the sweep records it expired at local midnight of
    2024-11-01 in Oslo (2024-10-31 23:00 UTC), the instant the test clock steps to on its way."""
    billing_app = start_service("billing", sweep_interval_seconds=0)
    sub_app = start_service(
        "subscription",
        billing_addr=billing_app.addr,
        entitlement_addr="",
        notification_addr="",
        lifecycle_interval_seconds=0,
    )
    stack = Stack.at(sub_app, billing_app, clock)
    stack.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    q = _quote(stack, "acct-q8", _new_line(), partner_language="fr")
    stack.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)
    got = stack.sub.GetQuote(pb.GetQuoteRequest(quote_number=q.quote_number), metadata=partner()).quote
    assert got.status == pb.QUOTE_STATUS_ISSUED
    stack.sub.AdvanceClock(
        pb.AdvanceClockRequest(to_time=_ts(datetime(2024, 11, 5, 9, 0, tzinfo=UTC))), metadata=OPERATOR
    )
    stack.sub.RunLifecycle(pb.RunLifecycleRequest(), metadata=OPERATOR)  # a second sweep: nothing again
    expired = [e for e in outbox_events(stack.sub_app.db) if e.event_type == "subscription.quote_expired"]
    assert len(expired) == 1
    (ev,) = expired
    assert ev.occurred_time.ToDatetime(tzinfo=UTC) == datetime(2024, 10, 31, 23, 0, tzinfo=UTC)
    p = ev.quote_expired
    assert (p.quote_number, p.version, p.partner_contact.email) == (q.quote_number, 1, SALLY)
    assert (p.valid_until_date.year, p.valid_until_date.month, p.valid_until_date.day) == (2024, 10, 31)
    got = stack.sub.GetQuote(pb.GetQuoteRequest(quote_number=q.quote_number), metadata=partner()).quote
    assert got.status == pb.QUOTE_STATUS_EXPIRED
    code, reason, _ = _refused(lambda: _accept(stack, q, stack.card("acct-q8")))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_EXPIRED")

    _mail_of(start_service, peers, smtp, stack, "subscription.quote_expired")
    wait_for(lambda: smtp.inbox.to(SALLY))
    (mail,) = smtp.inbox.to(SALLY)
    assert q.quote_number in mail["Subject"] and "expiré" in mail["Subject"]
    assert "31 octobre 2024" in mail.get_body(("plain",)).get_content()


def _ts(when: datetime):
    from google.protobuf import timestamp_pb2

    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return ts


def test_an_extension_quote_aligns_a_subscription_to_anothers_renewal_date_prorated(stack):
    """A: 2 seats from 2024-10-01 (renews 2025-10-01, a 365-day term); B renews 2025-12-01. Extended to
    B's date: 2 seats x the unit price x 61 days / 365, on an invoice naming the quote."""
    a = _partner_subscription(stack, "acct-q9", datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    b = _partner_subscription(stack, "acct-q9", datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    stack.clock.set(datetime(2025, 2, 1, 9, 0, tzinfo=UTC))
    line = pb.QuoteLineSpec(
        kind=pb.QUOTE_LINE_KIND_EXTENSION,
        subscription_id=a.subscription_id,
        align_to_subscription_id=b.subscription_id,
    )
    q = _quote(stack, "acct-q9", line)
    unit = money(a.unit_price)
    expected = (unit * 2 * 61 / 365).quantize(Decimal("0.01"))
    assert unit == Decimal("470.00") and expected == Decimal("157.10")
    assert money(q.subtotal) == expected and q.lines[0].align_to_subscription_id == b.subscription_id
    (priced,) = q.priced_lines
    assert "2025-10-01" in priced.description and "2025-12-01" in priced.description
    backwards = pb.QuoteLineSpec(
        kind=pb.QUOTE_LINE_KIND_EXTENSION,
        subscription_id=b.subscription_id,
        align_to_subscription_id=a.subscription_id,
    )
    code, reason, _ = _refused(lambda: _quote(stack, "acct-q9", backwards))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOTHING_TO_CHANGE")
    done = _accept(stack, q, stack.card("acct-q9"))
    s = done.subscription
    assert (s.renewal_date.year, s.renewal_date.month, s.renewal_date.day) == (2025, 12, 1)
    assert (s.current_period_start_date.year, s.current_period_start_date.month) == (2024, 10)
    inv = stack.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=done.invoice_id)).invoice
    assert money(inv.subtotal) == expected and q.quote_number in inv.lines[0].description
    missing = pb.QuoteLineSpec(kind=pb.QUOTE_LINE_KIND_EXTENSION, subscription_id=a.subscription_id)
    code, _, _ = _refused(lambda: _quote(stack, "acct-q9", missing))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
