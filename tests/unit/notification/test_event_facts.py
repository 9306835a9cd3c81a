"""Consumed events are read into the facts the routing table and the templates need."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from services.notification.codec import to_facts
from services.notification.domain.model import Kind, MailFacts, Role
from services.notification.domain.routing import build_directory, plan
from services.notification.rendering import Renderer
from shared.money import to_proto
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def d(value: date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def snap(**kw) -> events_pb2.SubscriptionSnapshot:
    base = dict(
        subscription_id="sub_1",
        account_id="acct_1",
        product_code="ACDLT",
        product_name="AutoCAD LT",
        plan=common_pb2.PLAN_STANDARD,
        term=common_pb2.TERM_ANNUAL,
        seats=3,
        shutoff_policy=common_pb2.SHUTOFF_POLICY_STANDARD,
        unit_price=to_proto(Decimal("470.00"), "USD"),
        renewal_date=d(date(2025, 6, 10)),
        expiry_date=d(date(2025, 6, 9)),
        auto_renew=False,
        buyer_email="Kari@Example.com",
        buyer_name="Kari Nordmann",
        buyer_language="nb",
        time_zone="Europe/Oslo",
    )
    base.update(kw)
    return events_pb2.SubscriptionSnapshot(**base)


def event(event_type: str, **payload) -> events_pb2.Event:
    return events_pb2.Event(event_id="ev-1", event_type=event_type, account_id="acct_1", **payload)


def test_seats_added_carries_the_order_and_the_prorated_amount() -> None:
    ev = event(
        "subscription.seats_added",
        seats_added=events_pb2.SeatsAdded(
            subscription=snap(seats=6),
            order_number="ORD-2024-000789",
            seats_added=3,
            prorated_amount=to_proto(Decimal("737.84"), "USD"),
            invoice_id="inv_9",
        ),
    )
    facts = to_facts(ev)
    assert facts.buyer is not None and facts.buyer.email == "kari@example.com"
    assert facts.buyer.language == "nb"
    assert facts.invoice_id == "inv_9"
    f = facts.facts
    assert (f.order_number, f.seats_added, f.seats) == ("ORD-2024-000789", 3, 6)
    assert (f.amount, f.currency_code) == (Decimal("737.84"), "USD")
    assert (f.term, f.plan, f.auto_renew) == ("ANNUAL", "STANDARD", False)
    assert (f.renewal_date, f.expiry_date) == (date(2025, 6, 10), date(2025, 6, 9))


def test_expiry_names_the_day_the_suspension_starts_in_the_subscriptions_zone() -> None:
    # 10.06.2025 00:00 Oslo is 09.06.2025 22:00 UTC: the local day counts
    ev = event(
        "subscription.stage_changed",
        stage_changed=events_pb2.StageChanged(
            subscription=snap(),
            from_stage=common_pb2.STAGE_ACTIVE,
            to_stage=common_pb2.STAGE_EXPIRED,
            reason="term_ended",
            transition_time=ts(datetime(2025, 6, 9, 22, 0, tzinfo=UTC)),
        ),
    )
    facts = to_facts(ev)
    assert facts.to_stage == "EXPIRED" and facts.reason == "term_ended"
    assert facts.facts.next_stage_date == date(2025, 6, 25)  # 15 days of Expired
    out = plan(facts, build_directory(event_buyer=facts.buyer))
    assert [(p.kind, p.recipient.email, p.language) for p in out] == [
        (Kind.SUBSCRIPTION_EXPIRED, "kari@example.com", "nb")
    ]
    text = Renderer().render(out[0].kind, out[0].language, out[0].facts).text
    assert "9. juni 2025" in text and "25. juni 2025" in text


def test_immediate_products_say_access_has_ended() -> None:
    ev = event(
        "subscription.stage_changed",
        stage_changed=events_pb2.StageChanged(
            subscription=snap(product_name="Docs", shutoff_policy=common_pb2.SHUTOFF_POLICY_IMMEDIATE),
            to_stage=common_pb2.STAGE_EXPIRED,
            reason="term_ended",
            transition_time=ts(datetime(2025, 6, 9, 22, 0, tzinfo=UTC)),
        ),
    )
    facts = to_facts(ev).facts
    assert facts.immediate_shutoff is True
    text = Renderer().render(Kind.SUBSCRIPTION_EXPIRED, "en", facts).text
    assert "no longer have access" in text and "keep using" not in text


def test_invoice_events_name_the_payers_on_the_invoice() -> None:
    ev = event(
        "billing.invoice_issued",
        invoice_issued=events_pb2.InvoiceIssued(
            invoice=events_pb2.InvoiceSummary(
                invoice_id="inv_1",
                invoice_number="INV-2025-000001",
                account_id="acct_1",
                total=to_proto(Decimal("587.50"), "EUR"),
                due_date=d(date(2025, 7, 10)),
                issue_time=ts(datetime(2025, 6, 10, 8, 0, tzinfo=UTC)),
                buyer_email="kari@example.com",
                payer_emails=["a@example.com", "b@example.com"],
            )
        ),
    )
    facts = to_facts(ev)
    assert facts.payer_emails == ("a@example.com", "b@example.com")
    assert facts.invoice_id == "inv_1"
    assert (facts.facts.amount, facts.facts.currency_code) == (Decimal("587.50"), "EUR")
    assert facts.facts.due_date == date(2025, 7, 10) and facts.facts.issue_date == date(2025, 6, 10)


def test_entitlement_events_name_the_person_they_are_about() -> None:
    seat = to_facts(
        event(
            "entitlement.seat_assigned",
            seat_assigned=events_pb2.SeatAssigned(
                account_id="acct_1",
                subscription_id="sub_1",
                product_code="ACD",
                product_name="AutoCAD",
                user_email="Per@Example.com",
                user_name="Per",
                language="sv",
            ),
        )
    )
    assert seat.subject is not None and seat.subject.email == "per@example.com"
    assert seat.subject.roles == frozenset({Role.USER}) and seat.facts.product_name == "AutoCAD"

    role = to_facts(
        event(
            "entitlement.role_changed",
            role_changed=events_pb2.RoleChanged(
                account_id="acct_1",
                email="ola@example.com",
                name="Ola",
                language="nb",
                role=common_pb2.ROLE_SECONDARY_ADMIN,
                granted=True,
                actor_email="kari@example.com",
            ),
        )
    )
    assert role.subject.roles == frozenset({Role.SECONDARY_ADMIN})
    assert (role.facts.role, role.facts.granted, role.facts.member_name) == ("SECONDARY_ADMIN", True, "Ola")


def test_an_upgrade_names_the_old_product_and_when_it_stops() -> None:
    ev = event(
        "subscription.upgraded",
        subscription_upgraded=events_pb2.SubscriptionUpgraded(
            old_subscription=snap(),
            new_subscription=snap(subscription_id="sub_2", product_code="ACD", product_name="AutoCAD"),
            order_number="ORD-2024-000901",
            old_access_until_time=ts(datetime(2024, 12, 31, 22, 59, 59, tzinfo=UTC)),
        ),
    )
    facts = to_facts(ev).facts
    assert (facts.product_name, facts.old_product_name) == ("AutoCAD", "AutoCAD LT")
    assert facts.old_access_until_date == date(2024, 12, 31)
    assert facts.amount is None  # an event without a total: the templates leave it out
    text = Renderer().render(Kind.UPGRADE_CONFIRMATION, "fr", facts).text
    assert "ORD-2024-000901" in text and "Total" not in text

    ev.subscription_upgraded.amount.CopyFrom(to_proto(Decimal("3458.11"), "USD"))
    facts = to_facts(ev).facts
    assert (facts.amount, facts.currency_code) == (Decimal("3458.11"), "USD")
    text = Renderer().render(Kind.UPGRADE_CONFIRMATION, "en", facts).text
    assert "Total: $3,458.11" in text


def test_events_without_a_payload_carry_only_the_envelope() -> None:
    facts = to_facts(event("subscription.created"))
    assert facts.facts == MailFacts(account_id="acct_1")
    assert plan(facts, build_directory()) == []
