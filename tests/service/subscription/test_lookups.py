"""Operators look subscriptions up by a buyer's or a member's e-mail and by an order number (issue:
lookups for operators)."""

from __future__ import annotations

from tenure.subscription.v1 import subscription_pb2 as pb

from .conftest import KARI, OPERATOR


def _ids(stack, **kw) -> list[str]:
    """The subscriptions listed (sorted: orders placed at the same instant list in id order)."""
    r = stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(**kw), metadata=OPERATOR)
    return sorted(s.subscription_id for s in r.subscriptions)


def test_an_operator_finds_subscriptions_by_buyer_member_e_mail_and_order_number(stack):
    first = stack.buy("acct-1")
    second = stack.buy("acct-1")
    lars = pb.Buyer(email="lars@lac.example", name="Lars", language="sv")
    other = stack.buy("acct-2", buyer=lars)
    a, b, c = (r.subscription.subscription_id for r in (first, second, other))

    assert _ids(stack) == sorted([a, b, c])  # every account
    assert _ids(stack, email=KARI.upper()) == sorted([a, b])  # the buyer, in any case
    assert _ids(stack, email="lars@lac.example") == [c]
    assert _ids(stack, email="nobody@lac.example") == []
    assert _ids(stack, order_number=second.order_number) == [b]  # the number on the confirmation
    assert _ids(stack, order_number=second.order_number, email="lars@lac.example") == []
    assert _ids(stack, order_number="ORD-0000-NONE") == []
    assert _ids(stack, account_id="acct-2", email=KARI) == []
    page = stack.sub.ListSubscriptions(pb.ListSubscriptionsRequest(page_size=2), metadata=OPERATOR)
    assert len(page.subscriptions) == 2 and page.next_page_token
