"""The entitlement handlers on a fake unit of work (no server, no database): seats never exceed the
purchased count, suspended subscriptions keep their seats read-only, cancelled ones lose them, the
primary admin role is handed over, and the CheckAccess cache follows every seat change."""

from __future__ import annotations

import pytest

from services.entitlement import handlers
from services.entitlement.adapters.cache import AccessCache
from services.entitlement.codec import ROLE_PB
from services.entitlement.domain.model import Actor, Capability, Plan, Role, ShutoffPolicy, Stage
from services.entitlement.domain.projection import Snapshot, SubscriptionEvent
from shared.errors import AlreadyExists, InvalidInput, LimitReached, NotAllowed, NotFound, RuleViolation

from .fakes import FakeDatabase

ACCOUNT = "acct-1"
BUYER = "kari@example.com"
ADMIN = "ola@example.com"
OPERATOR = Actor("support@vendor.example", operator=True)


class World:
    def __init__(self) -> None:
        self.db = FakeDatabase()
        self.cache = AccessCache(lambda email: handlers.load_grants(self.db, email))
        self.sequence = 0

    def event(self, event_type: str, stage: Stage = Stage.ACTIVE, seats: int = 2, sub: str = "sub-1") -> None:
        self.sequence += 1
        snap = Snapshot(
            subscription_id=sub,
            account_id=ACCOUNT,
            product_code="ACDLT",
            product_name="AutoCAD LT",
            plan=Plan.STANDARD,
            seats=seats,
            stage=stage,
            shutoff_policy=ShutoffPolicy.STANDARD,
            buyer_email=BUYER,
            buyer_name="Kari",
            buyer_language="nb",
        )
        with self.db.unit_of_work() as uow:
            handlers.apply_subscription_event(
                uow, self.cache, SubscriptionEvent(event_type, self.sequence, (snap,))
            )

    def assign(self, email: str, actor: str = BUYER, sub: str = "sub-1") -> handlers.AssignmentResult:
        with self.db.unit_of_work() as uow:
            return handlers.assign_seat(uow, self.cache, Actor(actor), sub, email, "", "")

    def unassign(self, email: str, actor: str = BUYER, sub: str = "sub-1") -> handlers.AssignmentResult:
        with self.db.unit_of_work() as uow:
            return handlers.unassign_seat(uow, self.cache, Actor(actor), sub, email)

    def assigned(self, sub: str = "sub-1") -> list[str]:
        results, _ = handlers.list_assignments(self.db, "", sub, "", 0, "")
        return [a.row.user_email for a in results]

    def roles(self, email: str) -> tuple[Role, ...]:
        members, _ = handlers.list_members(self.db, ACCOUNT, None, 0, "")
        return next((m.roles for m in members if m.email == email), ())

    def events(self, event_type: str) -> list:
        return [msg for t, msg in self.db.published if t == event_type]


@pytest.fixture
def world() -> World:
    w = World()
    w.event("subscription.created")
    return w


def test_the_first_order_makes_its_buyer_buyer_and_primary_admin(world):
    assert world.roles(BUYER) == (Role.BUYER, Role.PRIMARY_ADMIN)
    assert [(e.email, e.role, e.granted) for e in world.events("entitlement.role_changed")] == [
        (BUYER, ROLE_PB[Role.BUYER], True),
        (BUYER, ROLE_PB[Role.PRIMARY_ADMIN], True),
    ]
    world.event("subscription.renewed")  # later events of the account change nothing
    assert len(world.events("entitlement.role_changed")) == 2


def test_seats_never_exceed_the_purchased_count(world):
    world.assign("u1@example.com")
    world.assign("u2@example.com")
    with pytest.raises(LimitReached) as err:
        world.assign("u3@example.com")
    assert err.value.reason == "SEAT_LIMIT_REACHED"
    with pytest.raises(AlreadyExists):
        world.assign("u1@example.com")
    assert world.assigned() == ["u1@example.com", "u2@example.com"]
    assert handlers.subscription_access(world.db, "sub-1").assigned_seats == 2

    world.unassign("u1@example.com")
    world.assign("u3@example.com")
    assert world.assigned() == ["u2@example.com", "u3@example.com"]
    world.event("subscription.seats_added", seats=3)  # more seats bought: one more fits
    world.assign("u4@example.com")
    with pytest.raises(LimitReached):
        world.assign("u5@example.com")
    assert [e.user_email for e in world.events("entitlement.seat_assigned")] == [
        "u1@example.com",
        "u2@example.com",
        "u3@example.com",
        "u4@example.com",
    ]
    assert [(e.user_email, e.reason) for e in world.events("entitlement.seat_unassigned")] == [
        ("u1@example.com", "unassigned")
    ]


def test_only_the_buyer_and_admins_assign_seats(world):
    with pytest.raises(NotAllowed):
        world.assign("u1@example.com", actor="stranger@example.com")
    world.assign("u1@example.com")
    with pytest.raises(NotAllowed):
        world.unassign("u1@example.com", actor="u1@example.com")
    assert world.assigned() == ["u1@example.com"]


def test_a_suspended_subscription_keeps_its_seats_read_only(world):
    world.assign("u1@example.com")
    world.event("subscription.stage_changed", stage=Stage.SUSPENDED)
    with pytest.raises(RuleViolation) as err:
        world.assign("u2@example.com")
    assert err.value.reason == "ASSIGNMENTS_READ_ONLY"
    with pytest.raises(RuleViolation) as err:
        world.unassign("u1@example.com")
    assert err.value.reason == "ASSIGNMENTS_READ_ONLY"
    assert world.assigned() == ["u1@example.com"]
    assert world.roles("u1@example.com") == (Role.USER,)
    world.event("subscription.stage_changed", stage=Stage.ACTIVE)  # paid: changeable again
    world.unassign("u1@example.com")
    assert world.assigned() == [] and world.roles("u1@example.com") == ()


def test_a_cancelled_subscription_loses_its_seats_and_its_users_their_role(world):
    world.assign("u1@example.com")
    world.event("subscription.stage_changed", stage=Stage.CANCELLED)
    assert world.assigned() == []
    assert [(e.user_email, e.reason) for e in world.events("entitlement.seat_unassigned")] == [
        ("u1@example.com", "cancelled")
    ]
    assert world.roles("u1@example.com") == ()
    revoked = [e for e in world.events("entitlement.role_changed") if e.email == "u1@example.com"]
    assert [e.granted for e in revoked] == [True, False]
    with pytest.raises(RuleViolation) as err:
        world.assign("u2@example.com")
    assert err.value.reason == "SUBSCRIPTION_ENDED"


def test_the_primary_admin_hands_the_role_over_and_stays_a_secondary_admin(world):
    with world.db.unit_of_work() as uow:
        m = handlers.assign_role(uow, Actor(BUYER), ACCOUNT, ADMIN, Role.PRIMARY_ADMIN, "Ola", "sv")
    assert m.roles == (Role.PRIMARY_ADMIN,)
    assert world.roles(BUYER) == (Role.BUYER, Role.SECONDARY_ADMIN)
    # a secondary admin names no admins; the new primary admin does
    with pytest.raises(NotAllowed) as err, world.db.unit_of_work() as uow:
        handlers.assign_role(uow, Actor(BUYER), ACCOUNT, "x@example.com", Role.SECONDARY_ADMIN, "", "")
    assert err.value.reason == "SECONDARY_ADMIN_CANNOT_NAME_ADMINS"
    with world.db.unit_of_work() as uow:
        handlers.revoke_role(uow, Actor(ADMIN), ACCOUNT, BUYER, Role.SECONDARY_ADMIN)
    assert world.roles(BUYER) == (Role.BUYER,)
    with pytest.raises(NotFound), world.db.unit_of_work() as uow:
        handlers.revoke_role(uow, Actor(ADMIN), ACCOUNT, BUYER, Role.SECONDARY_ADMIN)


def test_only_an_operator_changes_the_buyer(world):
    with pytest.raises(NotAllowed) as err, world.db.unit_of_work() as uow:
        handlers.change_buyer(uow, Actor(BUYER), ACCOUNT, ADMIN, "Ola", "sv")
    assert err.value.reason == "OPERATOR_ONLY"
    with world.db.unit_of_work() as uow:
        handlers.change_buyer(uow, OPERATOR, ACCOUNT, ADMIN, "Ola", "sv")
    assert world.roles(ADMIN) == (Role.BUYER,)
    assert world.roles(BUYER) == (Role.PRIMARY_ADMIN,)  # the previous buyer keeps their admin role


def test_check_access_follows_seat_changes_through_the_cache(world):
    def allowed() -> bool:
        return handlers.check_access(
            world.cache, world.db.clock.now(), "u1@example.com", "ACDLT", Capability.PRODUCT_ACCESS
        ).allowed

    assert not allowed()  # now cached: no seat
    world.assign("u1@example.com")
    assert allowed()
    world.unassign("u1@example.com")
    assert not allowed()
    assert world.db.access_changes.users == ["u1@example.com", "u1@example.com"]


def test_members_and_assignments_page_with_tokens(world):
    for i in range(2):
        world.assign(f"u{i}@example.com")
    seen, token = [], ""
    while True:
        members, token = handlers.list_members(world.db, ACCOUNT, None, 1, token)
        seen += [m.email for m in members]
        if not token:
            break
    assert seen == [BUYER, "u0@example.com", "u1@example.com"]
    page, token = handlers.list_assignments(world.db, ACCOUNT, "", "", 1, "")
    rest, last = handlers.list_assignments(world.db, ACCOUNT, "", "", 1, token)
    assert [a.row.user_email for a in page + rest] == ["u0@example.com", "u1@example.com"] and last == ""
    for bad in ("!!", token[:-2]):
        with pytest.raises(InvalidInput):
            handlers.list_assignments(world.db, ACCOUNT, "", "", 1, bad)
    # a person who is neither buyer nor admin lists only their own
    own, _ = handlers.list_assignments(world.db, ACCOUNT, "", "", 0, "", only_user="u1@example.com")
    assert [a.row.user_email for a in own] == ["u1@example.com"]
    with pytest.raises(NotAllowed):
        handlers.list_assignments(world.db, ACCOUNT, "", "u0@example.com", 0, "", only_user="u1@example.com")
