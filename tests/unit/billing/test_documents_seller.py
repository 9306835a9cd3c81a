"""The seller's legal details come from settings; production refuses examples and gaps."""

import pytest

from services.billing.handlers.documents import seller_from
from shared.settings import BillingSettings

REAL = dict(
    seller_name="Fjellsoft AS",
    seller_address="Dronning Eufemias gate 16, 0191 Oslo",
    seller_country_code="NO",
    seller_tax_id="NO 923 609 016 MVA",
    seller_register="Foretaksregisteret",
    seller_email="faktura@fjellsoft.no",
    seller_bank_name="DNB Bank ASA",
    seller_iban="NO93 8601 1117 948",
    seller_bic="DNBANOKK",
)


def test_development_runs_on_the_example_seller_with_its_register_entry():
    seller = seller_from(BillingSettings())
    assert seller.register == "Foretaksregisteret" and seller.country_code == "NO"
    assert seller.address_lines == ("Karl Johans gate 1", "0154 Oslo")
    assert "name" in seller.missing() and "iban" in seller.missing()


def test_production_refuses_to_start_while_a_detail_is_an_example_or_missing():
    with pytest.raises(ValueError) as e:
        seller_from(BillingSettings(environment="production"))
    for field in ("name", "address", "tax_id", "email", "bank_name", "iban", "bic"):
        assert f"seller {field} is missing" in str(e.value)
    with pytest.raises(ValueError) as e:
        seller_from(BillingSettings(environment="production", **{**REAL, "seller_register": ""}))
    assert "seller register is missing" in str(e.value)


def test_production_refuses_a_vat_number_with_a_wrong_check_digit_or_another_home_country():
    with pytest.raises(ValueError) as e:
        seller_from(
            BillingSettings(environment="production", **{**REAL, "seller_tax_id": "NO 923 609 017 MVA"})
        )
    assert "not a valid VAT number of NO" in str(e.value)
    with pytest.raises(ValueError) as e:
        seller_from(
            BillingSettings(
                environment="production",
                **{**REAL, "seller_country_code": "SE", "seller_tax_id": "SE556677889901"},
            )
        )
    assert "is not the tax table's 'NO'" in str(e.value)


def test_production_starts_with_real_details():
    seller = seller_from(BillingSettings(environment="production", **REAL))
    assert seller.name == "Fjellsoft AS" and seller.address_lines == (
        "Dronning Eufemias gate 16",
        "0191 Oslo",
    )
    assert seller.missing() == []
