"""Who may do what on subscriptions (rules §7, "Identity and tenancy"): a stranger finds nothing of another
account and changes nothing; a person opens an account only as its buyer, an operator for anyone; a
listing without an account is the caller's own accounts; request ids are the caller's own; an admin who
is not the buyer cannot order."""

from __future__ import annotations

import uuid

import grpc
import pytest
from sqlalchemy import func, select

from tenure.common.v1 import common_pb2 as c
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import channel, person, service

from .conftest import KARI, OPERATOR, Stack, error_info, money, rid

PER = "per@example.no"  # the buyer of another account
OLA = "ola@example.no"  # a secondary admin of Kari's account


def _counts(stack: Stack) -> dict[str, int]:
    """Rows of everything an order, a change or a refund writes, in both services."""
    out = {}
    for app, names in (
        (stack.sub_app, ("subscriptions", "orders", "lifecycle_transitions", "outbox", "account_members")),
        (stack.billing_app, ("invoices", "credit_notes", "payments")),
    ):
        tables = app.db.metadata.tables
        with app.db.read() as s:
            for n in names:
                out[n] = s.execute(select(func.count()).select_from(tables[n])).scalar_one()
    return out


def _refused(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code() == code, e.value.details()
    return error_info(e.value).reason


def _trial(account_id: str, buyer: str, **kw) -> pb.CreateSubscriptionRequest:
    """A 30-day trial of AutoCAD LT: no payment method, no invoice."""
    fields = dict(
        request_id=rid(),
        account_id=account_id,
        buyer=pb.Buyer(email=buyer, name="", language="nb"),
        product_code="ACDLT",
        plan=c.PLAN_STANDARD,
        term=c.TERM_ANNUAL,
        seats=2,
        currency_code="USD",
        country_code="NO",
        time_zone="Europe/Oslo",
        trial=True,
    )
    fields.update(kw)
    return pb.CreateSubscriptionRequest(**fields)


def test_a_stranger_finds_nothing_of_another_account_and_changes_nothing(stack):
    kari = stack.buy(seats=3).subscription  # acct-1, paid by card
    per = stack.buy("acct-2", buyer=pb.Buyer(email=PER, name="Per", language="nb")).subscription
    as_per = person(PER)
    sid = kari.subscription_id
    before = _counts(stack)

    for call in (
        lambda: stack.sub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid), metadata=as_per),
        lambda: stack.sub.AddSeats(
            pb.AddSeatsRequest(request_id=rid(), subscription_id=sid, seats=2), metadata=as_per
        ),
        lambda: stack.sub.RequestRefund(
            pb.RequestRefundRequest(request_id=rid(), subscription_id=sid, reason="mine now"), metadata=as_per
        ),
        lambda: stack.sub.SetAutoRenew(
            pb.SetAutoRenewRequest(request_id=rid(), subscription_id=sid, auto_renew=False), metadata=as_per
        ),
        # his own account, naming her subscription beside his own
        lambda: stack.sub.AlignRenewalDates(
            pb.AlignRenewalDatesRequest(
                request_id=rid(), account_id="acct-2", subscription_ids=[per.subscription_id, sid]
            ),
            metadata=as_per,
        ),
    ):
        # the same answer as for a subscription that does not exist
        assert _refused(call, grpc.StatusCode.NOT_FOUND) == "ERROR_REASON_SUBSCRIPTION_NOT_FOUND"
    assert _refused(
        lambda: stack.sub.ListSubscriptions(
            pb.ListSubscriptionsRequest(account_id="acct-1"), metadata=as_per
        ),
        grpc.StatusCode.NOT_FOUND,
    ) == ("ERROR_REASON_NOT_FOUND")

    assert _counts(stack) == before
    now = stack.sub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid)).subscription
    assert (now.seats, now.auto_renew, now.stage, now.etag) == (3, True, c.STAGE_ACTIVE, kari.etag)

    # a listing that names no account: each buyer's own subscriptions, every one for the operator
    mine = stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest()).subscriptions
    assert [(s.subscription_id, s.account_id) for s in mine] == [(sid, "acct-1")]
    his = stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=as_per).subscriptions
    assert [(s.subscription_id, s.account_id) for s in his] == [(per.subscription_id, "acct-2")]
    # a person's filter narrows their own list and never reaches past it
    assert not stack.sub.ListSubscriptions(
        pb.ListSubscriptionsRequest(email=KARI), metadata=as_per
    ).subscriptions
    every = stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=OPERATOR).subscriptions
    assert {s.subscription_id for s in every} == {sid, per.subscription_id}


def test_only_an_operator_opens_an_account_for_someone_else_and_an_admin_cannot_order(stack):
    sub = stack.sub
    before = _counts(stack)
    # Per may not make Kari the buyer of a new account, nor price an order as her
    reason = _refused(
        lambda: sub.CreateSubscription(_trial("acct-7", KARI), metadata=person(PER)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason == "ERROR_REASON_PERMISSION_DENIED"
    _refused(
        lambda: sub.QuoteOrder(pb.QuoteOrderRequest(create=_trial("acct-7", KARI)), metadata=person(PER)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert _counts(stack) == before

    # an order that names no buyer is the caller's own
    own = sub.CreateSubscription(_trial("acct-8", ""), metadata=person(PER)).subscription
    assert (own.account_id, own.buyer_email) == ("acct-8", PER)

    # the operator opens acct-7 for Kari: she is its buyer and primary admin at once
    opened = sub.CreateSubscription(_trial("acct-7", KARI), metadata=OPERATOR).subscription
    assert (opened.buyer_email, opened.stage, opened.seats) == (KARI, c.STAGE_TRIAL, 2)
    members = stack.sub_app.db.metadata.tables["account_members"]
    with stack.sub_app.db.read() as s:
        rows = s.execute(
            select(members.c.email, members.c.role).where(members.c.account_id == "acct-7").order_by("role")
        ).all()
    assert [tuple(r) for r in rows] == [(KARI, "BUYER"), (KARI, "PRIMARY_ADMIN")]
    sid = opened.subscription_id
    history = sub.GetLifecycleHistory(pb.GetLifecycleHistoryRequest(subscription_id=sid)).transitions
    assert [(t.to_stage, t.reason) for t in history] == [(c.STAGE_TRIAL, "created")]
    # Per, a stranger to acct-7 now that it has a team, cannot order on it
    _refused(
        lambda: sub.CreateSubscription(_trial("acct-7", PER), metadata=person(PER)), grpc.StatusCode.NOT_FOUND
    )

    # entitlement names Ola a secondary admin of acct-7: he sees the subscription, but cannot buy seats
    sink = events_pb2_grpc.EventSinkServiceStub(channel(stack.sub_app.addr, default=service("entitlement")))
    sink.Deliver(
        events_pb2.DeliverRequest(
            event=events_pb2.Event(
                event_id=str(uuid.uuid4()),
                event_type="entitlement.role_changed",
                source="entitlement",
                account_id="acct-7",
                role_changed=events_pb2.RoleChanged(
                    account_id="acct-7", email=OLA, role=c.ROLE_SECONDARY_ADMIN, granted=True
                ),
            )
        )
    )
    as_ola = person(OLA)
    seen = sub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid), metadata=as_ola).subscription
    assert seen.seats == 2
    before = _counts(stack)
    reason = _refused(
        lambda: sub.AddSeats(
            pb.AddSeatsRequest(request_id=rid(), subscription_id=sid, seats=1), metadata=as_ola
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert reason == "ERROR_REASON_PERMISSION_DENIED"
    assert _counts(stack) == before
    assert sub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=sid)).subscription.seats == 2


def test_request_ids_are_the_callers_own(stack):
    sub = stack.sub
    kari_order = _trial("acct-1", KARI, request_id="order-1")
    per_order = _trial("acct-2", PER, request_id="order-1", seats=5)
    kari = sub.CreateSubscription(kari_order)
    per = sub.CreateSubscription(per_order, metadata=person(PER))
    assert kari.subscription.subscription_id != per.subscription.subscription_id
    assert (per.subscription.account_id, per.subscription.seats) == ("acct-2", 5)
    # each repeat is its caller's own first answer
    assert sub.CreateSubscription(kari_order) == kari
    assert sub.CreateSubscription(per_order, metadata=person(PER)) == per
    # Per replaying Kari's very request gets nothing of hers
    _refused(lambda: sub.CreateSubscription(kari_order, metadata=person(PER)), grpc.StatusCode.NOT_FOUND)
    assert _counts(stack)["subscriptions"] == 2

    # 128 characters are allowed, 129 are not; the ids billing is asked with stay within what it stores
    bought = stack.buy(request_id="k" * 128)
    refund = sub.RequestRefund(
        pb.RequestRefundRequest(request_id="r" * 128, subscription_id=bought.subscription.subscription_id)
    )
    assert refund.subscription.stage == c.STAGE_CANCELLED
    assert money(refund.refunded_amount) == money(bought.total) > 0
    reason = _refused(
        lambda: sub.CreateSubscription(_trial("acct-1", KARI, request_id="k" * 129)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason == "ERROR_REASON_REQUEST_ID_TOO_LONG"
    assert _counts(stack)["subscriptions"] == 3
