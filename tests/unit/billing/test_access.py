import pytest

from services.billing.domain.access import Actor, require_account_role, require_trusted
from shared.errors import NotAllowed

ACCOUNT = dict(buyer_email="kari@fjordbygg.no", payer_emails=["ap@fjordbygg.no"])


def test_buyer_does_everything_payers_see_and_pay_others_are_refused():
    require_account_role(Actor("Kari@Fjordbygg.no"), **ACCOUNT, payers_may=False, action="add payers")
    require_account_role(Actor("ap@fjordbygg.no"), **ACCOUNT, payers_may=True, action="pay invoices")
    with pytest.raises(NotAllowed) as e:
        require_account_role(Actor("ap@fjordbygg.no"), **ACCOUNT, payers_may=False, action="add payers")
    assert "only the buyer" in e.value.message
    with pytest.raises(NotAllowed):
        require_account_role(Actor("admin@fjordbygg.no"), **ACCOUNT, payers_may=True, action="see invoices")


def test_services_and_operators_are_trusted():
    require_account_role(Actor("x@y.z", "operator"), **ACCOUNT, payers_may=False, action="x")
    require_trusted(Actor(role="service"), "issuing invoices")
    with pytest.raises(NotAllowed):
        require_trusted(Actor("kari@fjordbygg.no"), "issuing invoices")
    with pytest.raises(NotAllowed):
        require_trusted(Actor(), "issuing invoices")
