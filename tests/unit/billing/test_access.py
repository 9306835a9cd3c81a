import pytest

from services.billing.domain.access import Caller, buyer_after_profile, require_role, sees_amounts
from shared.errors import NotAllowed, NotFound, RuleViolation

KARI = Caller(email="kari@fjordbygg.no")
OPERATOR = Caller(actor="operator:support@tenure.example")


def test_an_account_with_a_buyer_keeps_it_whoever_upserts_the_profile():
    assert buyer_after_profile("kari@fjordbygg.no", "", KARI) == "kari@fjordbygg.no"
    assert buyer_after_profile("kari@fjordbygg.no", " Kari@Fjordbygg.NO ", KARI) == "kari@fjordbygg.no"
    assert buyer_after_profile("kari@fjordbygg.no", "", OPERATOR) == "kari@fjordbygg.no"
    for caller in (KARI, OPERATOR):
        with pytest.raises(RuleViolation) as e:
            buyer_after_profile("kari@fjordbygg.no", "ola@fjordbygg.no", caller)
        assert e.value.reason == "BUYER_CHANGE_NOT_ALLOWED"
        assert "ChangeBuyer" in e.value.message


def test_a_person_opens_an_account_as_its_buyer_an_operator_may_name_anyone():
    assert buyer_after_profile("", "", KARI) == "kari@fjordbygg.no"
    assert buyer_after_profile("", "KARI@fjordbygg.no", KARI) == "kari@fjordbygg.no"
    with pytest.raises(NotAllowed) as e:
        buyer_after_profile("", "ola@fjordbygg.no", KARI)
    assert "only an operator" in e.value.message
    assert buyer_after_profile("", "Ola@Fjordbygg.no", OPERATOR) == "ola@fjordbygg.no"
    assert buyer_after_profile("", "", OPERATOR) == ""  # a profile without a buyer opens nothing


def test_a_latecomer_to_an_opened_account_gets_the_tables_answer():
    require_role({"BUYER"}, ("BUYER",), "acct-1", "change the billing profile")
    require_role({"PAYER"}, ("BUYER", "PAYER"), "acct-1", "add payment methods")
    with pytest.raises(NotFound) as e:
        require_role(set(), ("BUYER",), "acct-1", "change the billing profile")
    assert e.value.reason == "BILLING_PROFILE_NOT_FOUND"
    with pytest.raises(NotAllowed) as e:
        require_role({"PAYER"}, ("BUYER",), "acct-1", "change the billing profile")
    assert "(payer)" in e.value.message


def test_amounts_are_for_the_buyer_payers_operators_and_services():
    assert sees_amounts(True, {"BUYER", "SECONDARY_ADMIN"})
    assert sees_amounts(True, {"PAYER"})
    assert sees_amounts(False, set())
    assert not sees_amounts(True, {"PRIMARY_ADMIN"})
    assert not sees_amounts(True, {"SECONDARY_ADMIN", "USER"})
