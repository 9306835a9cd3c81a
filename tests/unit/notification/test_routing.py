"""Rules §8: who is told what."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.notification.domain.model import (
    ADMIN_ROLES,
    BILLING_AND_RENEWAL_KINDS,
    EventFacts,
    Kind,
    MailFacts,
    Person,
    Role,
)
from services.notification.domain.reminders import INVOICE_REMINDER_EVENT
from services.notification.domain.routing import (
    ROUTES,
    Audience,
    build_directory,
    plan,
)

BUYER = Person("Buyer@Example.com", "Kari Nordmann", "nb-NO", frozenset({Role.BUYER, Role.SECONDARY_ADMIN}))
ADMIN = Person("admin@example.com", "Ola Admin", "sv", frozenset({Role.PRIMARY_ADMIN}))
ADMIN2 = Person("admin2@example.com", "Anne Admin", "fr", frozenset({Role.SECONDARY_ADMIN}))
USER = Person("user@example.com", "Per Bruker", "en", frozenset({Role.USER}))
TEAM = (BUYER, ADMIN, ADMIN2, USER)
PAYERS = tuple(
    Person(f"payer{i}@example.com", f"Payer {i}", lang, frozenset({Role.PAYER}))
    for i, lang in enumerate(["en", "nb", "fr", "sv", "de"], start=1)
)


def event(event_type: str, **kw) -> EventFacts:
    kw.setdefault("facts", MailFacts(order_number="ORD-2024-000123", product_name="AutoCAD LT"))
    return EventFacts(event_id="ev-1", event_type=event_type, account_id="acct-1", **kw)


def sent(planned) -> set[tuple[str, Kind]]:
    return {(p.recipient.email, p.kind) for p in planned}


def test_order_goes_to_the_buyer_with_the_order_number_and_product_access_to_admins() -> None:
    out = plan(event("subscription.created"), build_directory(TEAM))
    assert sent(out) == {
        ("buyer@example.com", Kind.ORDER_CONFIRMATION),
        ("buyer@example.com", Kind.PRODUCT_ACCESS),  # the buyer is also a (secondary) admin
        ("admin@example.com", Kind.PRODUCT_ACCESS),
        ("admin2@example.com", Kind.PRODUCT_ACCESS),
    }
    confirmation = next(p for p in out if p.kind is Kind.ORDER_CONFIRMATION)
    assert confirmation.facts.order_number == "ORD-2024-000123"
    assert confirmation.language == "nb"
    assert confirmation.role is Role.BUYER
    assert confirmation.facts.recipient_name == "Kari Nordmann"


def test_admins_get_no_billing_or_renewal_mail() -> None:
    directory = build_directory(TEAM, PAYERS)
    for event_type in (
        "subscription.renewed",
        "subscription.renewal_reminder",
        "subscription.seats_added",
        "subscription.refunded",
        "billing.invoice_issued",
        "billing.invoice_overdue",
        "billing.payment_failed",
        INVOICE_REMINDER_EVENT,
    ):
        out = plan(event(event_type), directory)
        billing = {p.recipient.email for p in out if p.kind in BILLING_AND_RENEWAL_KINDS}
        assert "admin@example.com" not in billing, event_type
        assert "admin2@example.com" not in billing, event_type
        assert "buyer@example.com" in billing, event_type
        # what admins get of these is product access (seats added to assign), never billing
        assert {p.kind for p in out if p.recipient.email.startswith("admin")} <= {Kind.PRODUCT_ACCESS}


def test_five_payers_and_the_buyer_each_get_the_invoice_once() -> None:
    directory = build_directory(TEAM, PAYERS, payer_emails=[p.email for p in PAYERS])
    out = plan(event("billing.invoice_issued"), directory)
    assert sorted(p.recipient.email for p in out) == sorted(["buyer@example.com"] + [p.email for p in PAYERS])
    assert {p.kind for p in out} == {Kind.INVOICE_ISSUED}
    langs = {p.recipient.email: p.language for p in out}
    assert langs["payer5@example.com"] == "en"  # German falls back to English
    assert langs["payer2@example.com"] == "nb"


def test_a_buyer_who_is_also_a_payer_gets_one_invoice_email() -> None:
    buyer_as_payer = Person("buyer@example.com", "", "", frozenset({Role.PAYER}))
    directory = build_directory(TEAM, (buyer_as_payer, *PAYERS[:2]))
    out = plan(event("billing.invoice_issued"), directory)
    to_buyer = [p for p in out if p.recipient.email == "buyer@example.com"]
    assert len(to_buyer) == 1
    assert to_buyer[0].role is Role.BUYER
    assert len(out) == 3


def test_an_admin_who_is_a_payer_gets_the_invoice_as_payer() -> None:
    admin_payer = Person("admin@example.com", "", "", frozenset({Role.PAYER}))
    out = plan(event("billing.invoice_issued"), build_directory(TEAM, (admin_payer,)))
    assert ("admin@example.com", Kind.INVOICE_ISSUED) in sent(out)
    assert next(p for p in out if p.recipient.email == "admin@example.com").role is Role.PAYER


def test_payers_listed_on_the_invoice_win_over_the_billing_list() -> None:
    directory = build_directory(TEAM, PAYERS, payer_emails=["payer1@example.com", "new@example.com"])
    out = plan(event("billing.invoice_overdue"), directory)
    assert sent(out) == {
        ("buyer@example.com", Kind.INVOICE_OVERDUE),
        ("payer1@example.com", Kind.INVOICE_OVERDUE),
        ("new@example.com", Kind.INVOICE_OVERDUE),
    }


def test_each_failed_payment_goes_to_the_buyer_and_the_payers_not_the_admins() -> None:
    # dunning (rules §5): each declined attempt tells the buyer and the invoice's payers
    directory = build_directory(TEAM, PAYERS, payer_emails=[p.email for p in PAYERS[:2]])
    out = plan(event("billing.payment_failed"), directory)
    assert sent(out) == {
        ("buyer@example.com", Kind.PAYMENT_FAILED),
        ("payer1@example.com", Kind.PAYMENT_FAILED),
        ("payer2@example.com", Kind.PAYMENT_FAILED),
    }


def test_expiry_and_each_shutoff_stage_go_to_the_buyer() -> None:
    directory = build_directory(TEAM, PAYERS)
    for stage, kind in (
        ("EXPIRED", Kind.SUBSCRIPTION_EXPIRED),
        ("SUSPENDED", Kind.SUBSCRIPTION_SUSPENDED),
        ("CANCELLED", Kind.SUBSCRIPTION_CANCELLED),
    ):
        out = plan(event("subscription.stage_changed", to_stage=stage, reason="term_ended"), directory)
        assert sent(out) == {("buyer@example.com", kind)}


def test_stage_changes_without_their_own_mail() -> None:
    directory = build_directory(TEAM)
    assert plan(event("subscription.stage_changed", to_stage="ACTIVE", reason="paid"), directory) == []
    assert plan(event("subscription.stage_changed", to_stage="CANCELLED", reason="refunded"), directory) == []
    assert plan(event("subscription.stage_changed", to_stage="CANCELLED", reason="upgraded"), directory) == []


def test_renewal_reminder_goes_to_the_buyer() -> None:
    out = plan(event("subscription.renewal_reminder"), build_directory(TEAM))
    assert sent(out) == {("buyer@example.com", Kind.RENEWAL_REMINDER)}


def test_upgrade_confirms_to_the_buyer_and_tells_the_admins() -> None:
    out = plan(event("subscription.upgraded"), build_directory(TEAM))
    assert ("buyer@example.com", Kind.UPGRADE_CONFIRMATION) in sent(out)
    assert ("admin@example.com", Kind.PRODUCT_ACCESS) in sent(out)
    assert ("admin@example.com", Kind.UPGRADE_CONFIRMATION) not in sent(out)


def test_a_newly_assigned_user_is_told_to_sign_in_and_download() -> None:
    new_user = Person("New.User@example.com", "Nina", "fr")
    out = plan(event("entitlement.seat_assigned", subject=new_user), build_directory(TEAM))
    told = [p for p in out if p.kind is Kind.SEAT_ASSIGNED]
    assert sent(told) == {("new.user@example.com", Kind.SEAT_ASSIGNED)}
    assert told[0].language == "fr"
    assert told[0].role is Role.USER


def test_role_change_goes_to_admins_and_the_member_once() -> None:
    member = Person("admin2@example.com", "Anne Admin", "fr", frozenset({Role.SECONDARY_ADMIN}))
    by_admin = MailFacts(member_email=member.email, role="SECONDARY_ADMIN", actor_email="admin@example.com")
    out = plan(event("entitlement.role_changed", subject=member, facts=by_admin), build_directory(TEAM))
    assert sent(out) == {
        ("buyer@example.com", Kind.ROLE_CHANGED),
        ("admin@example.com", Kind.ROLE_CHANGED),
        ("admin2@example.com", Kind.ROLE_CHANGED),
    }
    assert "user@example.com" not in {p.recipient.email for p in out}


def test_becoming_a_user_or_a_payer_sends_no_role_mail() -> None:
    """The seat e-mail tells a new user; payers are billing's business, which admins do not get."""
    for role in ("USER", "PAYER"):
        person = Person("per@example.com", "Per", "sv", frozenset({Role(role)}))
        facts = MailFacts(member_email=person.email, role=role, actor_email="buyer@example.com")
        out = plan(event("entitlement.role_changed", subject=person, facts=facts), build_directory(TEAM))
        assert out == [], role


def test_setting_up_a_new_team_sends_no_role_mail() -> None:
    first_buyer = Person("kari@example.com", "Kari", "nb", frozenset({Role.BUYER}))
    automatic = MailFacts(member_email=first_buyer.email, role="BUYER", actor_email="")
    out = plan(event("entitlement.role_changed", subject=first_buyer, facts=automatic), build_directory(TEAM))
    assert out == []


def test_unknown_events_tell_nobody() -> None:
    assert plan(event("subscription.changed"), build_directory(TEAM, PAYERS)) == []
    assert plan(event("billing.invoice_paid"), build_directory(TEAM, PAYERS)) == []


def test_before_the_team_exists_the_events_buyer_is_buyer_and_primary_admin() -> None:
    buyer = Person("first@example.com", "First Buyer", "sv")
    directory = build_directory((), (), event_buyer=buyer)
    out = plan(event("subscription.created"), directory)
    assert sent(out) == {
        ("first@example.com", Kind.ORDER_CONFIRMATION),
        ("first@example.com", Kind.PRODUCT_ACCESS),
    }
    assert {p.language for p in out} == {"sv"}


def test_the_teams_buyer_wins_over_the_events_buyer() -> None:
    directory = build_directory(TEAM, event_buyer=Person("old@example.com", "Old", "en"))
    out = plan(event("subscription.renewed"), directory)
    assert sent(out) == {("buyer@example.com", Kind.RENEWAL_CONFIRMATION)}


def test_no_route_sends_billing_or_renewal_mail_to_admins() -> None:
    for route in ROUTES:
        if route.kind in BILLING_AND_RENEWAL_KINDS:
            assert Audience.ADMINS not in route.audiences, route
            assert Audience.SUBJECT not in route.audiences, route


def test_dedupe_key_is_per_event_recipient_and_kind() -> None:
    out = plan(event("billing.invoice_issued"), build_directory(TEAM, PAYERS))
    keys = [p.dedupe_key for p in out]
    assert len(keys) == len(set(keys))
    assert "ev-1|buyer@example.com|INVOICE_ISSUED" in keys


ROLE_SETS = st.frozensets(st.sampled_from(list(Role)), max_size=3)
people = st.lists(
    st.builds(
        Person,
        email=st.sampled_from([f"p{i}@example.com" for i in range(8)]),
        name=st.sampled_from(["", "A", "B"]),
        language=st.sampled_from(["", "en", "nb", "fr", "sv", "de"]),
        roles=ROLE_SETS,
    ),
    max_size=10,
)
EVENT_TYPES = sorted({r.event_type for r in ROUTES} | {"subscription.changed"})


@given(
    members=people,
    payers=people,
    event_type=st.sampled_from(EVENT_TYPES),
    stage=st.sampled_from(["EXPIRED", "SUSPENDED", "CANCELLED", "ACTIVE"]),
    subject=st.none() | st.builds(Person, email=st.sampled_from(["p1@example.com", "x@example.com"])),
    actor=st.sampled_from(["", "p2@example.com"]),
)
def test_routing_invariants(members, payers, event_type, stage, subject, actor) -> None:
    directory = build_directory(
        members, [Person(p.email, p.name, p.language, frozenset({Role.PAYER})) for p in payers]
    )
    out = plan(
        event(event_type, to_stage=stage, subject=subject, facts=MailFacts(actor_email=actor)), directory
    )
    # one e-mail per (recipient, kind)
    assert len({(p.recipient.email, p.kind) for p in out}) == len(out)
    for p in out:
        holder = directory.get(p.recipient.email)
        roles = holder.roles if holder else frozenset()
        if p.kind in BILLING_AND_RENEWAL_KINDS:
            # only the buyer, or a payer of an invoice (its issue, overdue and failed payments), ever gets
            # billing or renewal mail
            payer_kinds = p.kind.value.startswith("INVOICE") or p.kind is Kind.PAYMENT_FAILED
            assert Role.BUYER in roles or (Role.PAYER in roles and payer_kinds), p
        if p.kind is Kind.PRODUCT_ACCESS:
            assert roles & ADMIN_ROLES
        assert p.language in ("en", "nb", "fr", "sv")
