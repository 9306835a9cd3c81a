"""Teams, roles and seats over gRPC: rules §7 roles, seat limits, Suspended and Cancelled."""

from __future__ import annotations

import grpc
import pytest

from tenure.common.v1 import common_pb2 as c
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tests.service.entitlement.conftest import OPERATOR, PRODUCT, Sub, actor, reason_of

BUYER = "buyer@example.com"
ANNA = "anna@example.com"
BO = "bo@example.com"


def members(ent, **kw):
    """The team as an operator sees it (whoever is left on it)."""
    return {
        m.email: set(m.roles)
        for m in ent.stub.ListMembers(
            pb.ListMembersRequest(account_id="acct-1", **kw), metadata=OPERATOR
        ).members
    }


def assign_role(ent, by: str, email, role, request_id=None):
    return ent.stub.AssignRole(
        pb.AssignRoleRequest(
            request_id=request_id or f"{by}-{email}-{role}",
            account_id="acct-1",
            email=email,
            role=role,
            name=email.split("@")[0].title(),
            language="fr",
        ),
        metadata=actor(by),
    ).member


def test_roles_hand_over_secondary_admin_and_buyer_change(ent):
    ent.created(Sub("sub-1", "acct-1"))
    assert members(ent) == {BUYER: {c.ROLE_BUYER, c.ROLE_PRIMARY_ADMIN}}
    # a second order of the account does not change the buyer
    ent.created(Sub("sub-2", "acct-1", buyer_email="someone@example.com"))
    assert members(ent) == {BUYER: {c.ROLE_BUYER, c.ROLE_PRIMARY_ADMIN}}

    # hand-over of primary admin: the buyer becomes secondary admin and stays buyer
    m = assign_role(ent, BUYER, ANNA, c.ROLE_PRIMARY_ADMIN)
    assert list(m.roles) == [c.ROLE_PRIMARY_ADMIN] and m.name == "Anna" and m.language == "fr"
    assert members(ent) == {BUYER: {c.ROLE_BUYER, c.ROLE_SECONDARY_ADMIN}, ANNA: {c.ROLE_PRIMARY_ADMIN}}

    # a secondary admin (the buyer now) is refused when naming an admin
    with pytest.raises(grpc.RpcError) as e:
        assign_role(ent, BUYER, BO, c.ROLE_SECONDARY_ADMIN)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(e.value) == "ERROR_REASON_SECONDARY_ADMIN_CANNOT_NAME_ADMINS"
    assert BO not in members(ent)

    # the primary admin names one; the repeat with the same request id changes nothing
    assign_role(ent, ANNA, BO, c.ROLE_SECONDARY_ADMIN, request_id="r-bo")
    assign_role(ent, ANNA, BO, c.ROLE_SECONDARY_ADMIN, request_id="r-bo")
    assert members(ent, role=c.ROLE_SECONDARY_ADMIN).keys() == {BUYER, BO}

    # ChangeBuyer is refused for anyone but an operator, the buyer and the primary admin included
    for md in (actor(BUYER), actor(ANNA)):
        with pytest.raises(grpc.RpcError) as e:
            ent.stub.ChangeBuyer(
                pb.ChangeBuyerRequest(request_id="cb", account_id="acct-1", email=BO), metadata=md
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason_of(e.value) == "ERROR_REASON_PERMISSION_DENIED"
    # AssignRole(ROLE_BUYER) is the same operator action
    with pytest.raises(grpc.RpcError) as e:
        assign_role(ent, ANNA, BO, c.ROLE_BUYER)
    assert reason_of(e.value) == "ERROR_REASON_OPERATOR_ONLY"
    m = ent.stub.ChangeBuyer(
        pb.ChangeBuyerRequest(request_id="cb-op", account_id="acct-1", email=BO), metadata=OPERATOR
    ).member
    assert set(m.roles) == {c.ROLE_BUYER, c.ROLE_SECONDARY_ADMIN}
    assert members(ent, role=c.ROLE_BUYER).keys() == {BO}

    # revoke a secondary admin
    ent.stub.RevokeRole(
        pb.RevokeRoleRequest(request_id="rv", account_id="acct-1", email=BUYER, role=c.ROLE_SECONDARY_ADMIN),
        metadata=actor(ANNA),
    )
    assert BUYER not in members(ent)

    # every change was published as entitlement.role_changed
    changes = [
        (e.role_changed.email, c.Role.Name(e.role_changed.role), e.role_changed.granted)
        for e in ent.outbox("entitlement.role_changed")
    ]
    assert changes == [
        (BUYER, "ROLE_BUYER", True),
        (BUYER, "ROLE_PRIMARY_ADMIN", True),
        (BUYER, "ROLE_PRIMARY_ADMIN", False),
        (BUYER, "ROLE_SECONDARY_ADMIN", True),
        (ANNA, "ROLE_PRIMARY_ADMIN", True),
        (BO, "ROLE_SECONDARY_ADMIN", True),
        (BUYER, "ROLE_BUYER", False),
        (BO, "ROLE_BUYER", True),
        (BUYER, "ROLE_SECONDARY_ADMIN", False),
    ]


def test_seats_limit_suspended_read_only_and_cancelled_removed(ent):
    sub = Sub("sub-1", "acct-1", seats=2)
    ent.created(sub)
    # only admins assign: a stranger is told the subscription does not exist
    with pytest.raises(grpc.RpcError) as e:
        ent.assign(sub, "u1@example.com", by="stranger@example.com")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(e.value) == "ERROR_REASON_SUBSCRIPTION_NOT_FOUND"

    a = ent.assign(sub, "U1@Example.com", request_id="a1")
    # a user of the account is a member, but not one who assigns
    with pytest.raises(grpc.RpcError) as e:
        ent.assign(sub, "u5@example.com", by="u1@example.com")
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (a.user_email, a.product_code, a.stage) == ("u1@example.com", "ACDLT", c.STAGE_ACTIVE)
    assert ent.assign(sub, "U1@Example.com", request_id="a1") == a  # idempotent repeat
    ent.assign(sub, "u2@example.com")
    with pytest.raises(grpc.RpcError) as e:
        ent.assign(sub, "u3@example.com")
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(e.value) == "ERROR_REASON_SEAT_LIMIT_REACHED"

    # welcome e-mail material
    seated = [e.seat_assigned for e in ent.outbox("entitlement.seat_assigned")]
    assert [(s.user_email, s.product_name, s.language, s.user_name) for s in seated] == [
        ("u1@example.com", "AutoCAD LT", "sv", "U1"),
        ("u2@example.com", "AutoCAD LT", "sv", "U2"),
    ]
    assert members(ent, role=c.ROLE_USER).keys() == {"u1@example.com", "u2@example.com"}

    # Suspended keeps the assignments and refuses changes
    ent.stage(sub, c.STAGE_EXPIRED)
    ent.stage(sub, c.STAGE_SUSPENDED)
    listed = ent.stub.ListAssignments(pb.ListAssignmentsRequest(subscription_id="sub-1")).assignments
    assert [x.user_email for x in listed] == ["u1@example.com", "u2@example.com"]
    for call in (
        lambda: ent.stub.UnassignSeat(
            pb.UnassignSeatRequest(request_id="u", subscription_id="sub-1", user_email="u1@example.com"),
            metadata=actor(BUYER),
        ),
        lambda: ent.assign(sub, "u9@example.com"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(e.value) == "ERROR_REASON_ASSIGNMENTS_READ_ONLY"

    # Cancelled removes them
    ent.stage(sub, c.STAGE_CANCELLED, reason="shutoff")
    assert list(ent.stub.ListAssignments(pb.ListAssignmentsRequest(account_id="acct-1")).assignments) == []
    gone = [
        (e.seat_unassigned.user_email, e.seat_unassigned.reason)
        for e in ent.outbox("entitlement.seat_unassigned")
    ]
    assert gone == [("u1@example.com", "cancelled"), ("u2@example.com", "cancelled")]
    # holding no seat any more, both stop being users of the account
    users = [(email, granted) for _, email, role, granted in ent.role_changes() if role == "USER"]
    assert users == [
        ("u1@example.com", True),
        ("u2@example.com", True),
        ("u1@example.com", False),
        ("u2@example.com", False),
    ]
    assert members(ent, role=c.ROLE_USER) == {}
    with pytest.raises(grpc.RpcError) as e:
        ent.assign(sub, "u9@example.com")
    assert reason_of(e.value) == "ERROR_REASON_SUBSCRIPTION_ENDED"


def test_refund_removes_assignments_and_unassign_frees_a_seat(ent):
    from tenure.events.v1 import events_pb2

    sub = Sub("sub-1", "acct-1", seats=1)
    ent.created(sub)
    ent.assign(sub, "u1@example.com")
    ent.stub.UnassignSeat(
        pb.UnassignSeatRequest(request_id="un", subscription_id="sub-1", user_email="u1@example.com"),
        metadata=actor(BUYER),
    )
    assert not ent.check("u1@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS).allowed
    ent.assign(sub, "u2@example.com")
    assert ent.check("u2@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS).allowed
    sub.stage = c.STAGE_CANCELLED
    ent.deliver(
        "subscription.refunded",
        account_id="acct-1",
        subscription_id="sub-1",
        subscription_refunded=events_pb2.SubscriptionRefunded(subscription=sub.snapshot()),
    )
    assert not ent.check("u2@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS).allowed
    reasons = [
        (e.seat_unassigned.user_email, e.seat_unassigned.reason)
        for e in ent.outbox("entitlement.seat_unassigned")
    ]
    assert reasons == [("u1@example.com", "unassigned"), ("u2@example.com", "refunded")]


def test_duplicate_event_is_applied_once_and_unknown_subscription(ent):
    sub = Sub("sub-1", "acct-1")
    assert ent.created(sub).duplicate is False
    again = ent.deliver(
        "subscription.seats_added",
        event_id="ev-1",
        account_id="acct-1",
        subscription_id="sub-1",
    )
    assert again.duplicate is False
    assert ent.deliver("subscription.seats_added", event_id="ev-1").duplicate is True
    with pytest.raises(grpc.RpcError) as e:
        ent.assign(Sub("nope", "acct-1"), "u@example.com")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(e.value) == "ERROR_REASON_SUBSCRIPTION_NOT_FOUND"


def test_list_assignments_pages(ent):
    sub = Sub("sub-1", "acct-1", seats=5)
    ent.created(sub)
    for i in range(5):
        ent.assign(sub, f"u{i}@example.com")
    seen, token = [], ""
    while True:
        r = ent.stub.ListAssignments(
            pb.ListAssignmentsRequest(account_id="acct-1", page_size=2, page_token=token)
        )
        seen += [a.user_email for a in r.assignments]
        assert len(r.assignments) <= 2
        token = r.next_page_token
        if not token:
            break
    assert seen == [f"u{i}@example.com" for i in range(5)]
    with pytest.raises(grpc.RpcError) as e:
        ent.stub.ListAssignments(pb.ListAssignmentsRequest(account_id="acct-1", page_token="!!"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_usage_report_counts_activations_and_is_refused_outside_active(ent):
    sub = Sub("sub-1", "acct-1")
    ent.created(sub)
    ent.assign(sub, "u1@example.com")
    ent.assign(sub, "u2@example.com")
    for rid in ("a", "b", "b"):  # the repeated request id counts once
        r = ent.stub.RecordActivation(
            pb.RecordActivationRequest(request_id=rid, user_email="u1@example.com", product_code="ACDLT"),
            metadata=PRODUCT,
        )
    assert (r.subscription_id, r.activations) == ("sub-1", 2)
    # the user may record their own activation (a request id of their own: no clash with the product's)
    r = ent.stub.RecordActivation(
        pb.RecordActivationRequest(request_id="a", user_email="u1@example.com", product_code="ACDLT"),
        metadata=actor("u1@example.com"),
    )
    assert r.activations == 3
    with pytest.raises(grpc.RpcError) as e:
        ent.stub.RecordActivation(
            pb.RecordActivationRequest(request_id="x", user_email="z@example.com", product_code="ACDLT"),
            metadata=PRODUCT,
        )
    assert reason_of(e.value) == "ERROR_REASON_NO_PRODUCT_ACCESS"

    rows = ent.stub.GetSeatUsageReport(
        pb.GetSeatUsageReportRequest(account_id="acct-1"), metadata=actor(BUYER)
    ).rows
    assert [
        (x.user_email, x.product_code, x.activations, x.HasField("last_activation_time")) for x in rows
    ] == [
        ("u1@example.com", "ACDLT", 3, True),
        ("u2@example.com", "ACDLT", 0, False),
    ]
    with pytest.raises(grpc.RpcError) as e:
        ent.stub.GetSeatUsageReport(
            pb.GetSeatUsageReportRequest(account_id="acct-1"), metadata=actor("u1@example.com")
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    ent.stage(sub, c.STAGE_EXPIRED)
    for req in (
        pb.GetSeatUsageReportRequest(account_id="acct-1"),
        pb.GetSeatUsageReportRequest(subscription_id="sub-1"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            ent.stub.GetSeatUsageReport(req, metadata=actor(BUYER))
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(e.value) == "ERROR_REASON_REPORT_NOT_ACTIVE"


def test_concurrent_hand_overs_and_last_seat_races(ent):
    from concurrent.futures import ThreadPoolExecutor

    sub = Sub("sub-1", "acct-1", seats=1)
    ent.created(sub)

    def hand_over(email):
        try:
            assign_role(ent, BUYER, email, c.ROLE_PRIMARY_ADMIN)
            return "ok"
        except grpc.RpcError as e:
            return reason_of(e)

    def take_seat(i):
        try:
            ent.assign(sub, f"racer{i}@example.com")
            return "ok"
        except grpc.RpcError as e:
            return reason_of(e)

    with ThreadPoolExecutor(6) as pool:
        handed = list(pool.map(hand_over, [f"admin{i}@example.com" for i in range(4)]))
        seats = list(pool.map(take_seat, range(6)))
    assert handed.count("ok") == 1
    assert set(handed) - {"ok"} == {"ERROR_REASON_SECONDARY_ADMIN_CANNOT_NAME_ADMINS"}
    assert len(members(ent, role=c.ROLE_PRIMARY_ADMIN)) == 1
    assert seats.count("ok") == 1
    assert set(seats) - {"ok"} == {"ERROR_REASON_SEAT_LIMIT_REACHED"}
