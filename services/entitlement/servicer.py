"""The gRPC servicer of tenure.entitlement.v1.EntitlementService: decode, call the handler,
encode. The actor is the call's verified principal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.entitlement import handlers
from services.entitlement.codec import (
    LEVEL_PB,
    PLAN_PB,
    POLICY_PB,
    REASON_PB,
    ROLE_PB,
    STAGE_PB,
    capabilities_pb,
    capability_of,
    role_of,
    ts,
)
from services.entitlement.domain.model import Actor
from services.entitlement.permissions import hidden
from shared.auth.policy import ADMINS, BUYER
from shared.auth.principal import current, current_principal
from shared.clock import Clock
from shared.db import Database
from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.entitlement.v1 import entitlement_pb2_grpc

if TYPE_CHECKING:  # the cache is built in app.py and handed to the handlers
    from services.entitlement.adapters.cache import AccessCache

_UNSPECIFIED_STAGE = common_pb2.STAGE_UNSPECIFIED


def actor_of(context) -> Actor:
    """The verified caller of this RPC (the interceptor checked the token and the permission table)."""
    p = current_principal()
    if p is None:
        return Actor(None)
    return Actor(p.email or None, operator=p.is_operator)


def own_assignments_only(request) -> str:
    """The person whose assignments alone the caller may list ("" when any): a person who is neither
    the buyer nor an admin of the account (the table let them in about themselves) sees only their
    own, and one on no team of the account is told it does not exist."""
    access = current()
    if access is None or not access.principal.is_person or access.has(BUYER, *ADMINS):
        return ""
    if access.account_id and not access.roles:
        raise hidden(request)
    return access.principal.email


def member_pb(m: handlers.MemberResult) -> pb.Member:
    return pb.Member(
        account_id=m.account_id,
        email=m.email,
        name=m.name,
        language=m.language,
        roles=[ROLE_PB[r] for r in m.roles],
    )


def assignment_pb(a: handlers.AssignmentResult) -> pb.Assignment:
    row, view = a.row, a.view
    return pb.Assignment(
        account_id=row.account_id,
        subscription_id=row.subscription_id,
        product_code=view.product_code,
        product_name=view.product_name,
        user_email=row.user_email,
        user_name=row.user_name,
        language=row.language,
        assign_time=ts(row.assign_time),
        stage=STAGE_PB[view.stage],
        access_until_time=ts(view.access_until_time),
        assigned_by_email=row.assigned_by_email,
    )


class EntitlementServicer(entitlement_pb2_grpc.EntitlementServiceServicer):
    def __init__(self, db: Database, clock: Clock, cache: AccessCache) -> None:
        self.db = db
        self.clock = clock
        self.cache = cache

    # --- teams -----------------------------------------------------------------------------

    def ListMembers(self, request, context):
        role = role_of(request.role, required=False)
        members, token = handlers.list_members(
            self.db, request.account_id, role, request.page_size, request.page_token
        )
        return pb.ListMembersResponse(members=[member_pb(m) for m in members], next_page_token=token)

    def FindAccounts(self, request, context):
        found, token = handlers.find_accounts(
            self.db, request.email, request.name, request.page_size, request.page_token
        )
        return pb.FindAccountsResponse(
            accounts=[
                pb.AccountSummary(
                    account_id=a.account_id,
                    buyer=member_pb(a.buyer) if a.buyer else None,
                    matched=[member_pb(m) for m in a.matched],
                    member_count=a.member_count,
                    subscription_count=a.subscription_count,
                )
                for a in found
            ],
            next_page_token=token,
        )

    def AssignRole(self, request, context):
        actor = actor_of(context)

        def work(uow):
            m = handlers.assign_role(
                uow,
                actor,
                request.account_id,
                request.email,
                role_of(request.role, required=False),
                request.name,
                request.language,
            )
            return pb.AssignRoleResponse(member=member_pb(m))

        return self.db.run_idempotent("AssignRole", request, pb.AssignRoleResponse, work)

    def RevokeRole(self, request, context):
        actor = actor_of(context)

        def work(uow):
            m = handlers.revoke_role(
                uow, actor, request.account_id, request.email, role_of(request.role, required=False)
            )
            return pb.RevokeRoleResponse(member=member_pb(m))

        return self.db.run_idempotent("RevokeRole", request, pb.RevokeRoleResponse, work)

    def ChangeBuyer(self, request, context):
        actor = actor_of(context)

        def work(uow):
            m = handlers.change_buyer(
                uow, actor, request.account_id, request.email, request.name, request.language
            )
            return pb.ChangeBuyerResponse(member=member_pb(m))

        return self.db.run_idempotent("ChangeBuyer", request, pb.ChangeBuyerResponse, work)

    # --- seats -----------------------------------------------------------------------------

    def AssignSeat(self, request, context):
        actor = actor_of(context)

        def work(uow):
            a = handlers.assign_seat(
                uow,
                self.cache,
                actor,
                request.subscription_id,
                request.user_email,
                request.user_name,
                request.language,
            )
            return pb.AssignSeatResponse(assignment=assignment_pb(a))

        return self.db.run_idempotent("AssignSeat", request, pb.AssignSeatResponse, work)

    def UnassignSeat(self, request, context):
        actor = actor_of(context)

        def work(uow):
            a = handlers.unassign_seat(uow, self.cache, actor, request.subscription_id, request.user_email)
            return pb.UnassignSeatResponse(assignment=assignment_pb(a))

        return self.db.run_idempotent("UnassignSeat", request, pb.UnassignSeatResponse, work)

    def ListAssignments(self, request, context):
        only_user = own_assignments_only(request)
        results, token = handlers.list_assignments(
            self.db,
            request.account_id,
            request.subscription_id,
            request.user_email,
            request.page_size,
            request.page_token,
            only_user=only_user,
        )
        return pb.ListAssignmentsResponse(
            assignments=[assignment_pb(a) for a in results], next_page_token=token
        )

    # --- access ----------------------------------------------------------------------------

    def CheckAccess(self, request, context):
        d = handlers.check_access(
            self.cache,
            self.clock.now(),
            request.user_email,
            request.product_code,
            capability_of(request.capability),
        )
        return pb.CheckAccessResponse(
            allowed=d.allowed,
            level=LEVEL_PB[d.level],
            stage=STAGE_PB[d.stage] if d.stage is not None else _UNSPECIFIED_STAGE,
            subscription_id=d.subscription_id,
            reason=REASON_PB[d.reason],
            access_until_time=ts(d.access_until_time),
        )

    def GetUserEntitlements(self, request, context):
        items = handlers.user_entitlements(self.cache, self.clock.now(), request.user_email)
        return pb.GetUserEntitlementsResponse(
            entitlements=[
                pb.Entitlement(
                    product_code=g.product_code,
                    subscription_id=g.subscription_id,
                    stage=STAGE_PB[g.stage],
                    capabilities=capabilities_pb(matrix),
                    account_id=g.account_id,
                    plan=PLAN_PB[g.plan],
                    access_until_time=ts(g.access_until_time),
                    product_name=g.product_name,
                )
                for g, matrix in items
            ]
        )

    def GetSubscriptionAccess(self, request, context):
        a = handlers.subscription_access(self.db, request.subscription_id)
        v = a.view
        return pb.GetSubscriptionAccessResponse(
            stage=STAGE_PB[v.stage],
            capabilities=capabilities_pb(a.capabilities),
            subscription_id=v.subscription_id,
            account_id=v.account_id,
            product_code=v.product_code,
            plan=PLAN_PB[v.plan],
            shutoff_policy=POLICY_PB[v.shutoff_policy],
            seats=v.seats,
            assigned_seats=a.assigned_seats,
            access_until_time=ts(v.access_until_time),
            upgraded_to_subscription_id=v.upgraded_to_subscription_id or "",
            upgraded_from_subscription_id=v.upgraded_from_subscription_id or "",
        )

    # --- usage -----------------------------------------------------------------------------

    def RecordActivation(self, request, context):
        def work(uow):
            row = handlers.record_activation(uow, request.user_email, request.product_code)
            return pb.RecordActivationResponse(
                subscription_id=row.subscription_id,
                activations=row.activations,
                activation_time=ts(row.last_activation_time),
            )

        return self.db.run_idempotent("RecordActivation", request, pb.RecordActivationResponse, work)

    def GetSeatUsageReport(self, request, context):
        actor = actor_of(context)
        rows = handlers.seat_usage_report(self.db, actor, request.account_id, request.subscription_id)
        return pb.GetSeatUsageReportResponse(
            rows=[
                pb.SeatUsageRow(
                    user_email=r.user_email,
                    product_code=r.product_code,
                    activations=r.activations,
                    last_activation_time=ts(r.last_activation_time),
                    subscription_id=r.subscription_id,
                )
                for r in rows
            ]
        )
