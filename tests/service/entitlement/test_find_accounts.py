"""Operators find accounts by anyone's e-mail on the team or by a name (issue: lookups for operators)."""

from __future__ import annotations

import grpc
import pytest

from tenure.common.v1 import common_pb2
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tests.auth import person
from tests.service.entitlement.conftest import OPERATOR, Sub, reason_of


def _find(ent, **kw) -> pb.FindAccountsResponse:
    return ent.stub.FindAccounts(pb.FindAccountsRequest(**kw), metadata=OPERATOR)


def test_accounts_are_found_by_a_members_e_mail_or_name_and_paged(ent):
    ent.opened("acct-fjord", "kari@fjordbygg.no")  # Olga Opener is the buyer's name in these events
    ent.payer("acct-fjord", "ap@fjordbygg.no", by="kari@fjordbygg.no")
    ent.created(Sub("sub-f1", "acct-fjord", buyer_email="kari@fjordbygg.no"))
    ent.opened("acct-lac", "marie@lac.fr")
    ent.payer("acct-lac", "ap@fjordbygg.no", by="marie@lac.fr")  # the same payer on two accounts
    ent.opened("acct-other", "someone@else.example")

    by_buyer = _find(ent, email="KARI@fjordbygg.no").accounts
    assert [a.account_id for a in by_buyer] == ["acct-fjord"]
    fjord = by_buyer[0]
    assert fjord.buyer.email == "kari@fjordbygg.no" and common_pb2.ROLE_BUYER in fjord.buyer.roles
    assert [m.email for m in fjord.matched] == ["kari@fjordbygg.no"]
    assert (fjord.member_count, fjord.subscription_count) == (2, 1)

    by_payer = _find(ent, email="ap@fjordbygg.no").accounts
    assert [a.account_id for a in by_payer] == ["acct-fjord", "acct-lac"]
    assert [common_pb2.ROLE_PAYER in a.matched[0].roles for a in by_payer] == [True, True]

    assert [a.account_id for a in _find(ent, name="pat pay").accounts] == ["acct-fjord", "acct-lac"]
    assert [a.account_id for a in _find(ent, name="LAC").accounts] == ["acct-lac"]  # part of the id
    assert _find(ent, name="%%").accounts == []  # wildcards are characters, not a pattern
    assert [a.account_id for a in _find(ent, email="ap@fjordbygg.no", name="lac").accounts] == ["acct-lac"]

    first = _find(ent, name="opener", page_size=2)
    assert [a.account_id for a in first.accounts] == ["acct-fjord", "acct-lac"] and first.next_page_token
    rest = _find(ent, name="opener", page_size=2, page_token=first.next_page_token)
    assert [a.account_id for a in rest.accounts] == ["acct-other"] and not rest.next_page_token


def test_a_search_needs_something_to_search_by_and_people_may_not_search(ent):
    ent.opened("acct-fjord", "kari@fjordbygg.no")
    for kw, field in (({}, "email"), ({"name": "k"}, "name")):
        with pytest.raises(grpc.RpcError) as e:
            _find(ent, **kw)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, kw
        assert field in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        ent.stub.FindAccounts(
            pb.FindAccountsRequest(email="kari@fjordbygg.no"), metadata=person("kari@fjordbygg.no")
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(e.value)
