from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.invoice import LineInput, price_lines, totals
from services.billing.domain.model import Address, TaxStatus
from services.billing.domain.tax import TaxTable, decide_tax, default_table, line_tax
from shared.errors import InvalidInput

D = Decimal
DAY = date(2024, 12, 1)


def test_norwegian_vat_on_the_prorated_seats_is_184_46():
    decision = decide_tax(TaxStatus(Address("NO")), DAY)
    assert decision.rate == D("0.25")
    assert decision.name == "MVA"
    assert line_tax(D("737.84"), decision.rate, "NOK") == D("184.46")


def test_exempt_profile_with_a_certificate_pays_no_tax():
    status = TaxStatus(Address("NO"), tax_exempt=True, exemption_certificate="CERT-2024-17")
    decision = decide_tax(status, DAY)
    assert decision.exempt
    lines = price_lines([LineInput("AutoCAD LT, 3 seats", 1, D("737.84"))], "NOK", decision)
    assert totals(lines).tax == D("0.00")
    assert totals(lines).total == D("737.84")


def test_exemption_without_certificate_or_after_its_expiry_is_not_valid():
    no_cert = TaxStatus(Address("NO"), tax_exempt=True)
    assert not decide_tax(no_cert, DAY).exempt
    expired = TaxStatus(
        Address("NO"), tax_exempt=True, exemption_certificate="C1", exemption_expiry_date=date(2024, 11, 30)
    )
    assert decide_tax(expired, DAY).rate == D("0.25")
    still = TaxStatus(Address("NO"), tax_exempt=True, exemption_certificate="C1", exemption_expiry_date=DAY)
    assert decide_tax(still, DAY).exempt


@pytest.mark.parametrize(
    ("country", "region", "rate"),
    [
        ("SE", "", "0.25"),
        ("FR", "", "0.20"),
        ("DE", "", "0.19"),
        ("GB", "", "0.20"),
        ("AU", "", "0.10"),
        ("US", "CA", "0.0725"),
        ("US", "NY", "0.04"),
        ("US", "OR", "0"),
        ("CA", "ON", "0.13"),
        ("CA", "QC", "0.14975"),
        ("CA", "AB", "0.05"),
        ("CA", "CA-BC", "0.12"),
    ],
)
def test_rates_come_from_the_table(country, region, rate):
    assert default_table().lookup(country, region).rate == D(rate)


def test_the_table_covers_the_countries_the_product_sells_in():
    countries = set(default_table().countries())
    assert {"US", "CA", "NO", "SE", "FR", "DE", "GB", "AU"} <= countries


def test_us_and_canada_need_a_region():
    with pytest.raises(InvalidInput) as e:
        default_table().lookup("US", "")
    assert e.value.reason == "TAX_REGION_REQUIRED"
    assert e.value.field_violations[0][0] == "address.region"
    with pytest.raises(InvalidInput):
        default_table().lookup("CA", "XX")


def test_a_country_outside_the_table_pays_the_default_rate_and_a_bad_code_is_refused():
    assert default_table().lookup("BR").rate == D("0")
    with pytest.raises(InvalidInput):
        default_table().lookup("Norway")


def test_tax_is_rounded_half_up_once_per_line():
    # 0.10 at 25 % is 0.025 -> 0.03 per line; two lines 0.06, where the sum 0.20 would give 0.05.
    decision = decide_tax(TaxStatus(Address("NO")), DAY)
    lines = price_lines([LineInput("a", 1, D("0.10")), LineInput("b", 1, D("0.10"))], "NOK", decision)
    assert [ln.tax for ln in lines] == [D("0.03"), D("0.03")]
    assert totals(lines).tax == D("0.06")


def test_a_table_given_as_data_is_used():
    table = TaxTable(
        {"default": {"rate": "0.01", "name": "X"}, "countries": {"NO": {"rate": "0.5", "name": "Y"}}}
    )
    assert table.lookup("NO").rate == D("0.5")
    assert table.lookup("SE").rate == D("0.01")
    status = TaxStatus(Address("NO"))
    assert decide_tax(status, DAY, table).rate == D("0.5")


@given(
    cents=st.lists(st.integers(min_value=1, max_value=10**8), min_size=1, max_size=8),
    country=st.sampled_from(["NO", "SE", "FR", "DE", "GB", "AU"]),
)
def test_invoice_tax_is_the_sum_of_per_line_half_up_taxes(cents, country):
    decision = decide_tax(TaxStatus(Address(country)), DAY)
    lines = price_lines([LineInput(f"l{i}", 1, D(c) / 100) for i, c in enumerate(cents)], "EUR", decision)
    t = totals(lines)
    for ln in lines:
        exact = ln.amount * decision.rate
        assert abs(ln.tax - exact) <= D("0.005")
        assert ln.tax == ln.tax.quantize(D("0.01"))
        if (exact * 1000) % 10 == 5 and (exact * 1000) == (exact * 1000).to_integral_value():
            assert ln.tax > exact  # an exact half cent rounds up
    assert t.tax == sum(ln.tax for ln in lines)
    assert t.total == t.subtotal + t.tax
