"""VAT ids checked offline, and which VAT an invoice carries (rules §5 Tax)."""

from datetime import date
from decimal import Decimal

import pytest

from services.billing.domain.invoice import LineInput, price_lines, totals
from services.billing.domain.model import Address, TaxStatus
from services.billing.domain.tax import (
    EXPORT,
    REVERSE_CHARGE,
    Scheme,
    TaxTable,
    VatStatus,
    decide_tax,
    default_table,
    scheme_of,
)
from services.billing.domain.vat import format_vat_id, normalize_vat_id, vat_id_valid
from shared.errors import InvalidInput

D = Decimal
DAY = date(2024, 6, 10)
SE_VAT = "SE556677889901"  # Swedish org.nr 556677-8899 (Luhn check digit 9) + 01


@pytest.mark.parametrize(
    ("country", "given", "stored"),
    [
        ("SE", "SE 556677-8899 01", SE_VAT),
        ("SE", "556677889901", SE_VAT),  # the prefix is the billing country's
        ("NO", "NO 923 609 016 MVA", "923609016MVA"),
        ("NO", "923609016", "923609016MVA"),  # a bare org.nr. takes MVA
        ("GR", "094259216", "EL094259216"),  # Greece's VAT prefix is EL
        ("PL", "PL 526-000-12-46", "PL5260001246"),
        ("US", "12-3456789", "12-3456789"),  # nothing to check a US id against: kept as given
        ("SE", "  ", ""),
    ],
)
def test_a_vat_id_is_kept_in_its_compact_form(country, given, stored):
    assert normalize_vat_id(country, given) == stored


@pytest.mark.parametrize(
    ("country", "given", "why"),
    [
        ("SE", "SE556677889801", "check digit"),  # 556677-8898: Luhn says 9
        ("NO", "923609017", "check digit"),  # mod 11 says 6
        ("SE", "SE55667788", "format"),  # too short
        ("SE", "DK13585628", "another country"),  # a valid Danish id on a Swedish address
        ("DE", "DE136695975", "check digit"),  # DE136695976 is valid
    ],
)
def test_a_malformed_vat_id_is_refused_with_the_field_and_reason(country, given, why):
    with pytest.raises(InvalidInput) as e:
        normalize_vat_id(country, given)
    assert e.value.reason == "VAT_ID_INVALID"
    assert e.value.field_violations[0][0] == "tax_id"
    assert not vat_id_valid(country, given)
    if why == "another country":
        assert "another country" in str(e.value)


def test_the_valid_german_neighbour_of_that_id_passes():
    assert vat_id_valid("DE", "DE136695976")


def test_documents_print_a_norwegian_vat_id_the_norwegian_way():
    assert format_vat_id("NO", "923609016MVA") == "NO 923 609 016 MVA"
    assert format_vat_id("SE", SE_VAT) == SE_VAT


def test_norway_is_domestic_25_percent_even_for_a_business_with_a_vat_id():
    d = decide_tax(VatStatus(Address("NO"), tax_id="923609016MVA"), DAY)
    assert (d.rate, d.name, d.scheme) == (D("0.25"), "MVA", Scheme.STANDARD)


def test_a_swedish_business_with_a_valid_vat_id_is_reverse_charged_at_0():
    d = decide_tax(VatStatus(Address("SE"), tax_id=SE_VAT), DAY)
    assert (d.rate, d.name, d.scheme) == (D("0"), REVERSE_CHARGE, Scheme.REVERSE_CHARGE)
    lines = price_lines([LineInput("AutoCAD LT, 2 seats", 2, D("5076.00"))], "SEK", d)
    assert totals(lines).tax == D("0.00") and totals(lines).total == D("10152.00")


def test_a_swedish_buyer_without_or_with_a_bad_vat_id_pays_swedish_moms():
    for status in (VatStatus(Address("SE")), VatStatus(Address("SE"), tax_id="SE556677889801")):
        d = decide_tax(status, DAY)
        assert (d.rate, d.name, d.scheme) == (D("0.25"), "Moms", Scheme.STANDARD)
    # a status without a VAT id at all (a preview without a profile) is a consumer too
    assert decide_tax(TaxStatus(Address("SE")), DAY).rate == D("0.25")


def test_a_country_outside_the_vat_area_and_the_table_is_an_export_at_0():
    d = decide_tax(VatStatus(Address("BR")), DAY)
    assert (d.rate, d.name, d.scheme) == (D("0"), EXPORT, Scheme.EXPORT)


def test_a_listed_country_outside_the_eu_keeps_its_rate_even_with_a_vat_id():
    d = decide_tax(VatStatus(Address("GB"), tax_id="GB980780684"), DAY)
    assert (d.rate, d.scheme) == (D("0.20"), Scheme.STANDARD)
    assert decide_tax(VatStatus(Address("US", "CA")), DAY).rate == D("0.0725")


def test_an_exemption_wins_over_reverse_charge():
    status = VatStatus(Address("SE"), tax_exempt=True, exemption_certificate="C-1", tax_id=SE_VAT)
    d = decide_tax(status, DAY)
    assert d.exempt and d.scheme == Scheme.EXEMPT and d.rate == 0


def test_the_rules_are_data_a_swedish_seller_charges_swedes_moms_whatever_their_vat_id():
    table = TaxTable(
        {
            "countries": {"SE": {"rate": "0.25", "name": "Moms"}, "DE": {"rate": "0.19", "name": "USt"}},
            "vat": {"seller_country": "SE", "reverse_charge_countries": ["SE", "DE"]},
        }
    )
    assert decide_tax(VatStatus(Address("SE"), tax_id=SE_VAT), DAY, table).rate == D("0.25")
    assert (
        decide_tax(VatStatus(Address("DE"), tax_id="DE136695976"), DAY, table).scheme == Scheme.REVERSE_CHARGE
    )
    assert default_table().seller_country == "NO"
    assert (
        "SE" in default_table().reverse_charge_countries
        and "NO" not in default_table().reverse_charge_countries
    )


def test_a_stored_invoice_tells_its_scheme_from_its_tax_name():
    assert scheme_of("Reverse charge", False) is Scheme.REVERSE_CHARGE
    assert scheme_of("Export", False) is Scheme.EXPORT
    assert scheme_of("MVA", True) is Scheme.EXEMPT
    assert scheme_of("MVA", False) is Scheme.STANDARD
