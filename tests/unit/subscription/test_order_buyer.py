"""The buyer an order names, as its caller may name them (rules §7: only an operator may open an account
naming someone else as buyer)."""

from __future__ import annotations

import pytest

from services.subscription.permissions import order_buyer
from shared.auth.principal import Access, Kind, Principal
from shared.errors import NotAllowed

KARI = Access(Principal(Kind.PERSON, "kari", "kari@example.no"))
SUPPORT = Access(Principal(Kind.OPERATOR, "support@tenure.example"))


def test_a_person_orders_as_themselves():
    assert order_buyer(KARI, " Kari@Example.no ") == "Kari@Example.no"
    assert order_buyer(KARI, "") == "kari@example.no"  # no buyer named: the caller is it


def test_a_person_cannot_name_another_buyer():
    with pytest.raises(NotAllowed) as e:
        order_buyer(KARI, "per@example.no")
    assert e.value.reason == "PERMISSION_DENIED"
    assert "kari@example.no" in e.value.message and "per@example.no" in e.value.message


def test_an_operator_names_anyone():
    assert order_buyer(SUPPORT, "per@example.no") == "per@example.no"
    assert order_buyer(SUPPORT, "") == ""  # the order's own validation asks for the buyer
