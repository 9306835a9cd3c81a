"""Rules §7: the buyer, the primary admin hand-over, secondary admins, operators."""

from __future__ import annotations

import pytest

from services.entitlement.domain.model import Actor, Role
from services.entitlement.domain.roles import (
    RoleChange,
    Team,
    assign_role,
    bootstrap,
    change_buyer,
    require_admin,
    require_usage_reader,
    revoke_role,
    seat_role_changes,
    set_payer,
)
from shared.errors import InvalidInput, NotAllowed, NotFound, RuleViolation

BUYER = "buyer@example.com"
ANNA = "anna@example.com"
BO = "bo@example.com"
OPERATOR = Actor("support@vendor.example", operator=True)


def team_with_buyer() -> Team:
    team = Team("acct-1")
    bootstrap(team, BUYER, "Bea Buyer", "nb")
    return team


def test_first_order_buyer_becomes_buyer_and_primary_admin():
    team = Team("acct-1")
    changes = bootstrap(team, BUYER, "Bea Buyer", "nb")
    assert changes == [RoleChange(BUYER, Role.BUYER, True), RoleChange(BUYER, Role.PRIMARY_ADMIN, True)]
    assert team.members[BUYER].roles == {Role.BUYER, Role.PRIMARY_ADMIN}
    assert (team.members[BUYER].name, team.members[BUYER].language) == ("Bea Buyer", "nb")


def test_later_orders_do_not_change_the_buyer():
    team = team_with_buyer()
    assert bootstrap(team, ANNA, "Anna", "sv") == []
    assert team.buyer.email == BUYER
    assert ANNA not in team.members


def test_hand_over_of_primary_admin_keeps_the_buyer_as_secondary_admin():
    team = team_with_buyer()
    changes = assign_role(team, Actor(BUYER), ANNA, Role.PRIMARY_ADMIN, "Anna", "sv")
    assert set(changes) == {
        RoleChange(BUYER, Role.PRIMARY_ADMIN, False),
        RoleChange(BUYER, Role.SECONDARY_ADMIN, True),
        RoleChange(ANNA, Role.PRIMARY_ADMIN, True),
    }
    assert team.members[BUYER].roles == {Role.BUYER, Role.SECONDARY_ADMIN}
    assert team.members[ANNA].roles == {Role.PRIMARY_ADMIN}
    assert team.primary_admin.email == ANNA
    # the buyer, now a secondary admin, can no longer name admins
    with pytest.raises(NotAllowed) as e:
        assign_role(team, Actor(BUYER), BO, Role.SECONDARY_ADMIN)
    assert e.value.reason == "SECONDARY_ADMIN_CANNOT_NAME_ADMINS"
    # the new primary admin can
    assert assign_role(team, Actor(ANNA), BO, Role.SECONDARY_ADMIN) == [
        RoleChange(BO, Role.SECONDARY_ADMIN, True)
    ]


def test_handing_over_to_a_secondary_admin_replaces_the_role():
    team = team_with_buyer()
    assign_role(team, Actor(BUYER), ANNA, Role.SECONDARY_ADMIN)
    assign_role(team, Actor(BUYER), ANNA, Role.PRIMARY_ADMIN)
    assert team.members[ANNA].roles == {Role.PRIMARY_ADMIN}
    assert len(team.holders(Role.PRIMARY_ADMIN)) == 1


def test_secondary_admin_refused_when_naming_an_admin():
    team = team_with_buyer()
    assign_role(team, Actor(BUYER), ANNA, Role.SECONDARY_ADMIN)
    for role in (Role.SECONDARY_ADMIN, Role.PRIMARY_ADMIN):
        with pytest.raises(NotAllowed) as e:
            assign_role(team, Actor(ANNA), BO, role)
        assert e.value.reason == "SECONDARY_ADMIN_CANNOT_NAME_ADMINS"
    with pytest.raises(NotAllowed):
        revoke_role(team, Actor(ANNA), ANNA, Role.SECONDARY_ADMIN)
    assert BO not in team.members  # nothing changed
    assert team.members[ANNA].roles == {Role.SECONDARY_ADMIN}


def test_non_member_and_anonymous_actor_refused():
    team = team_with_buyer()
    with pytest.raises(NotAllowed) as e:
        assign_role(team, Actor(BO), ANNA, Role.SECONDARY_ADMIN)
    assert e.value.reason == "PRIMARY_ADMIN_REQUIRED"
    with pytest.raises(NotAllowed) as e:
        assign_role(team, Actor(None), ANNA, Role.SECONDARY_ADMIN)
    assert e.value.reason == "ACTOR_REQUIRED"


def test_change_buyer_only_by_operator():
    team = team_with_buyer()
    assign_role(team, Actor(BUYER), ANNA, Role.PRIMARY_ADMIN)
    for actor in (Actor(BUYER), Actor(ANNA), Actor(BO), Actor(None)):
        with pytest.raises(NotAllowed) as e:
            change_buyer(team, actor, BO)
        assert e.value.reason == "OPERATOR_ONLY"
        with pytest.raises(NotAllowed):
            assign_role(team, actor, BO, Role.BUYER)
    assert team.buyer.email == BUYER
    changes = change_buyer(team, OPERATOR, BO, "Bo", "fr")
    assert changes == [RoleChange(BUYER, Role.BUYER, False), RoleChange(BO, Role.BUYER, True)]
    assert team.buyer.email == BO
    # the previous buyer keeps the admin role they had
    assert team.members[BUYER].roles == {Role.SECONDARY_ADMIN}
    assert change_buyer(team, OPERATOR, BO) == []


def test_operator_may_name_admins():
    team = team_with_buyer()
    assert assign_role(team, OPERATOR, ANNA, Role.SECONDARY_ADMIN) == [
        RoleChange(ANNA, Role.SECONDARY_ADMIN, True)
    ]


@pytest.mark.parametrize("role", [Role.PAYER, Role.USER, Role.OPERATOR])
def test_roles_managed_elsewhere_are_refused(role):
    team = team_with_buyer()
    with pytest.raises(RuleViolation) as e:
        assign_role(team, Actor(BUYER), ANNA, role)
    assert e.value.reason == "ROLE_NOT_ASSIGNABLE"


def test_missing_role_is_invalid_input():
    with pytest.raises(InvalidInput) as e:
        assign_role(team_with_buyer(), Actor(BUYER), ANNA, None)
    assert e.value.field_violations[0][0] == "role"


def test_revoke_secondary_admin():
    team = team_with_buyer()
    assign_role(team, Actor(BUYER), ANNA, Role.SECONDARY_ADMIN)
    assert revoke_role(team, Actor(BUYER), ANNA, Role.SECONDARY_ADMIN) == [
        RoleChange(ANNA, Role.SECONDARY_ADMIN, False)
    ]
    assert team.members[ANNA].roles == set()
    with pytest.raises(NotFound) as e:
        revoke_role(team, Actor(BUYER), ANNA, Role.SECONDARY_ADMIN)
    assert e.value.reason == "ROLE_NOT_HELD"
    with pytest.raises(NotFound) as e:
        revoke_role(team, Actor(BUYER), BO, Role.SECONDARY_ADMIN)
    assert e.value.reason == "MEMBER_NOT_FOUND"


@pytest.mark.parametrize("role", [Role.PRIMARY_ADMIN, Role.BUYER])
def test_primary_admin_and_buyer_cannot_be_revoked(role):
    team = team_with_buyer()
    with pytest.raises(RuleViolation) as e:
        revoke_role(team, OPERATOR, BUYER, role)
    assert e.value.reason == "ROLE_NOT_ASSIGNABLE"
    assert team.members[BUYER].roles == {Role.BUYER, Role.PRIMARY_ADMIN}


def test_primary_admin_cannot_also_be_secondary():
    team = team_with_buyer()
    with pytest.raises(RuleViolation):
        assign_role(team, Actor(BUYER), BUYER, Role.SECONDARY_ADMIN)


def test_require_admin_for_seat_management():
    team = team_with_buyer()
    assign_role(team, Actor(BUYER), ANNA, Role.SECONDARY_ADMIN)
    require_admin(team, Actor(BUYER), "assign seats")
    require_admin(team, Actor(ANNA), "assign seats")
    require_admin(team, OPERATOR, "assign seats")
    with pytest.raises(NotAllowed) as e:
        require_admin(team, Actor(BO), "assign seats")
    assert e.value.reason == "ADMIN_REQUIRED"


def test_the_buyer_who_is_no_admin_still_sees_the_usage_report():
    team = team_with_buyer()
    assign_role(team, Actor(BUYER), ANNA, Role.PRIMARY_ADMIN)
    change_buyer(team, OPERATOR, BO)  # Bo is buyer and holds no admin role
    for who in (Actor(BO), Actor(ANNA), Actor(BUYER), OPERATOR):
        require_usage_reader(team, who)
    team.members[BUYER].roles.clear()
    with pytest.raises(NotAllowed) as e:
        require_usage_reader(team, Actor(BUYER))
    assert e.value.reason == "ADMIN_REQUIRED"


def test_payers_come_and_go_with_billing_events():
    team = team_with_buyer()
    assert set_payer(team, "pat@example.com", True, "Pat", "fr") == [
        RoleChange("pat@example.com", Role.PAYER, True)
    ]
    assert (team.members["pat@example.com"].name, team.members["pat@example.com"].language) == ("Pat", "fr")
    assert set_payer(team, "pat@example.com", True) == []  # named twice
    # the buyer may be a payer as well; their other roles stay
    assert set_payer(team, BUYER, True) == [RoleChange(BUYER, Role.PAYER, True)]
    assert set_payer(team, BUYER, False) == [RoleChange(BUYER, Role.PAYER, False)]
    assert team.members[BUYER].roles == {Role.BUYER, Role.PRIMARY_ADMIN}
    assert set_payer(team, "nobody@example.com", False) == []
    assert "nobody@example.com" not in team.members


def test_the_user_role_follows_the_first_and_last_seat():
    assert seat_role_changes(ANNA, False, True) == [RoleChange(ANNA, Role.USER, True)]
    assert seat_role_changes(ANNA, True, True) == []
    assert seat_role_changes(ANNA, True, False) == [RoleChange(ANNA, Role.USER, False)]
    assert seat_role_changes(ANNA, False, False) == []
