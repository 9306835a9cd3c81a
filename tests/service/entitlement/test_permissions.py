"""Who may do what in entitlement (rules §7, "Identity and tenancy"): strangers are told nothing exists,
only an operator changes the buyer, a user sees only their own access, only a service delivers events;
and every role (payer, user, the buyer of an account opened in billing) is published to the other
services as `entitlement.role_changed`."""

from __future__ import annotations

import uuid

import grpc
import pytest
from sqlalchemy import func, select

from services.entitlement.adapters.tables import EntitlementModel
from tenure.common.v1 import common_pb2 as c
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests.auth import channel
from tests.service.entitlement.conftest import BUYER, OPERATOR, PRODUCT, Sub, actor, reason_of

OTHER_BUYER = "olav@b.example"  # buyer of acct-b, a stranger to acct-1
PAT = "pat@example.com"


def counts(ent) -> dict[str, int]:
    """Rows of every table a refused call could have touched."""
    db = ent.app.db
    tables = {**EntitlementModel.metadata.tables, **db.tables}
    with db.read() as s:
        return {
            name: s.execute(select(func.count()).select_from(tables[name])).scalar_one()
            for name in ("subscription_view", "member", "member_role", "assignment", "outbox", "inbox")
        }


def code_and_reason(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), reason_of(e.value)


def test_a_stranger_is_told_account_a_does_not_exist_and_changes_nothing(ent):
    sub = Sub("sub-a", "acct-1", seats=5)
    ent.created(sub)
    ent.created(Sub("sub-b", "acct-b", buyer_email=OTHER_BUYER))
    ent.assign(sub, "u1@example.com")
    stranger = actor(OTHER_BUYER)
    before = counts(ent)
    calls = {
        "ListMembers": lambda: ent.stub.ListMembers(
            pb.ListMembersRequest(account_id="acct-1"), metadata=stranger
        ),
        "AssignSeat": lambda: ent.stub.AssignSeat(
            pb.AssignSeatRequest(request_id="x", subscription_id="sub-a", user_email=OTHER_BUYER),
            metadata=stranger,
        ),
        "GetSubscriptionAccess": lambda: ent.stub.GetSubscriptionAccess(
            pb.GetSubscriptionAccessRequest(subscription_id="sub-a"), metadata=stranger
        ),
        "GetSeatUsageReport": lambda: ent.stub.GetSeatUsageReport(
            pb.GetSeatUsageReportRequest(account_id="acct-1"), metadata=stranger
        ),
        # about themselves, on an account they are not on: the same answer
        "ListAssignments": lambda: ent.stub.ListAssignments(
            pb.ListAssignmentsRequest(subscription_id="sub-a", user_email=OTHER_BUYER), metadata=stranger
        ),
    }
    for rpc, call in calls.items():
        assert code_and_reason(call)[0] == grpc.StatusCode.NOT_FOUND, rpc
    # exactly what a subscription that does not exist answers
    missing = lambda: ent.stub.GetSubscriptionAccess(  # noqa: E731
        pb.GetSubscriptionAccessRequest(subscription_id="sub-zz"), metadata=stranger
    )
    assert code_and_reason(calls["GetSubscriptionAccess"]) == code_and_reason(missing)
    assert code_and_reason(missing) == (grpc.StatusCode.NOT_FOUND, "ERROR_REASON_SUBSCRIPTION_NOT_FOUND")
    # naming their own account does not reveal account A's subscription either
    report = lambda sid: ent.stub.GetSeatUsageReport(  # noqa: E731
        pb.GetSeatUsageReportRequest(account_id="acct-b", subscription_id=sid), metadata=stranger
    )
    assert code_and_reason(lambda: report("sub-a")) == code_and_reason(lambda: report("sub-zz"))
    assert code_and_reason(lambda: report("sub-a"))[0] == grpc.StatusCode.NOT_FOUND
    assert counts(ent) == before
    # the buyer of account A sees it
    assert [m.email for m in ent.stub.ListMembers(pb.ListMembersRequest(account_id="acct-1")).members] == [
        BUYER,
        "u1@example.com",
    ]


def test_only_an_operator_changes_the_buyer(ent):
    ent.created(Sub("sub-1", "acct-1"))
    req = pb.ChangeBuyerRequest(request_id="cb", account_id="acct-1", email="new@example.com")
    before = counts(ent)
    # the buyer (also the primary admin) may not
    assert code_and_reason(lambda: ent.stub.ChangeBuyer(req, metadata=actor(BUYER))) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ERROR_REASON_PERMISSION_DENIED",
    )
    assert counts(ent) == before
    m = ent.stub.ChangeBuyer(req, metadata=OPERATOR).member
    assert (m.email, list(m.roles)) == ("new@example.com", [c.ROLE_BUYER])
    assert ent.role_changes()[-2:] == [
        ("acct-1", BUYER, "BUYER", False),
        ("acct-1", "new@example.com", "BUYER", True),
    ]


def test_a_user_sees_their_own_access_and_assignments_only(ent):
    sub = Sub("sub-1", "acct-1", seats=3)
    ent.created(sub)
    ent.assign(sub, "uma@example.com")
    ent.assign(sub, "ulf@example.com")
    uma = actor("uma@example.com")
    mine = ent.stub.GetUserEntitlements(
        pb.GetUserEntitlementsRequest(user_email="Uma@Example.com"), metadata=uma
    )
    assert [(e.subscription_id, e.product_code) for e in mine.entitlements] == [("sub-1", "ACDLT")]
    assert ent.check("uma@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS, as_=uma).allowed
    for call in (
        lambda: ent.stub.GetUserEntitlements(
            pb.GetUserEntitlementsRequest(user_email="ulf@example.com"), metadata=uma
        ),
        lambda: ent.check("ulf@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS, as_=uma),
        lambda: ent.stub.RecordActivation(
            pb.RecordActivationRequest(request_id="r", user_email="ulf@example.com", product_code="ACDLT"),
            metadata=uma,
        ),
        # the account's assignments are for the buyer and admins
        lambda: ent.stub.ListAssignments(pb.ListAssignmentsRequest(account_id="acct-1"), metadata=uma),
        lambda: ent.stub.ListAssignments(
            pb.ListAssignmentsRequest(account_id="acct-1", user_email="ulf@example.com"), metadata=uma
        ),
    ):
        assert code_and_reason(call)[0] == grpc.StatusCode.PERMISSION_DENIED
    own = ent.stub.ListAssignments(
        pb.ListAssignmentsRequest(account_id="acct-1", user_email="uma@example.com"), metadata=uma
    ).assignments
    assert [(a.user_email, a.subscription_id) for a in own] == [("uma@example.com", "sub-1")]
    # the buyer lists both; a product asks about anyone
    listed = ent.stub.ListAssignments(pb.ListAssignmentsRequest(account_id="acct-1")).assignments
    assert [a.user_email for a in listed] == ["ulf@example.com", "uma@example.com"]
    assert ent.check("ulf@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS, as_=PRODUCT).allowed


def test_only_a_service_delivers_events(ent):
    forged = events_pb2.DeliverRequest(
        event=events_pb2.Event(
            event_id=str(uuid.uuid4()),
            event_type="subscription.created",
            source="subscription",
            subscription_created=events_pb2.SubscriptionCreated(
                subscription=Sub("sub-x", "acct-x", seats=100, buyer_email="eve@example.com").snapshot()
            ),
        )
    )
    before = counts(ent)
    anonymous = events_pb2_grpc.EventSinkServiceStub(channel(ent.app.addr))
    with pytest.raises(grpc.RpcError) as e:
        anonymous.Deliver(forged)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for md in (actor("eve@example.com"), OPERATOR):
        with pytest.raises(grpc.RpcError) as e:
            ent.sink.Deliver(forged, metadata=md)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert counts(ent) == before  # no subscription, no team, no inbox entry
    r = ent.check("eve@example.com", "ACDLT", c.CAPABILITY_PRODUCT_ACCESS)
    assert (r.allowed, r.reason) == (False, pb.ACCESS_REASON_NO_SEAT)
    with pytest.raises(grpc.RpcError) as e:
        ent.stub.GetSubscriptionAccess(
            pb.GetSubscriptionAccessRequest(subscription_id="sub-x"), metadata=OPERATOR
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_payers_users_and_opened_accounts_are_published_as_role_changes(ent):
    # billing opened the account before any order: its buyer becomes buyer and primary admin
    ent.opened("acct-1", BUYER)
    assert ent.role_changes() == [("acct-1", BUYER, "BUYER", True), ("acct-1", BUYER, "PRIMARY_ADMIN", True)]
    # the first order names someone else: the account keeps its buyer
    sub = Sub("sub-1", "acct-1", buyer_email="late@example.com")
    ent.created(sub)
    assert len(ent.role_changes()) == 2

    # billing named a payer: a member, with the payer's role only
    ent.payer("acct-1", "Pat@Example.com")
    ent.payer("acct-1", PAT)  # named again (another event): nothing new
    assert ent.role_changes()[2:] == [("acct-1", PAT, "PAYER", True)]
    event = ent.outbox("entitlement.role_changed")[-1].role_changed
    assert (event.name, event.language, event.actor_email) == ("Pat Payer", "fr", BUYER)
    payers = ent.stub.ListMembers(pb.ListMembersRequest(account_id="acct-1", role=c.ROLE_PAYER)).members
    assert [(m.email, list(m.roles)) for m in payers] == [(PAT, [c.ROLE_PAYER])]
    members_as_pat = lambda: ent.stub.ListMembers(  # noqa: E731
        pb.ListMembersRequest(account_id="acct-1"), metadata=actor(PAT)
    )
    assert code_and_reason(members_as_pat)[0] == grpc.StatusCode.PERMISSION_DENIED  # a member now

    # USER follows the seats: granted with the first seat on the account, revoked with the last
    other = Sub("sub-2", "acct-1", product_code="ACD")
    ent.created(other)
    ent.assign(sub, "uma@example.com")
    ent.assign(other, "uma@example.com")
    assert ent.role_changes()[3:] == [("acct-1", "uma@example.com", "USER", True)]
    event = ent.outbox("entitlement.role_changed")[-1].role_changed
    assert (event.name, event.language, event.actor_email) == ("Uma", "sv", BUYER)

    def unassign(s):
        ent.stub.UnassignSeat(
            pb.UnassignSeatRequest(
                request_id=uuid.uuid4().hex, subscription_id=s.subscription_id, user_email="uma@example.com"
            ),
            metadata=actor(BUYER),
        )

    unassign(sub)
    assert len(ent.role_changes()) == 4  # still holds a seat of sub-2
    unassign(other)
    assert ent.role_changes()[4:] == [("acct-1", "uma@example.com", "USER", False)]

    # billing removed the payer: no longer on the team, so told the account does not exist
    ent.payer("acct-1", PAT, granted=False)
    assert ent.role_changes()[5:] == [("acct-1", PAT, "PAYER", False)]
    assert code_and_reason(members_as_pat)[0] == grpc.StatusCode.NOT_FOUND

    # an event that names no payer is refused with a reason (the relay retries it; nothing is applied)
    before = counts(ent)
    with pytest.raises(grpc.RpcError) as e:
        ent.payer("acct-1", "")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert counts(ent) == before
