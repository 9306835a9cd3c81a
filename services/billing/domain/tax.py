"""Tax from the billing address: a rate table kept as data, applied per line, rounded half up once per line.

Which rate applies (rules §5 Tax), in this order:
1. a tax-exempt customer with a valid certificate pays none (`Exempt`);
2. a buyer in the seller's country pays its rate whatever its VAT id (Norway: MVA 25 %);
3. a business in a reverse-charge (EU) country with a valid VAT id of that country accounts for the VAT
   itself: 0 % and the legal note on the invoice (`Reverse charge`);
4. a country the table does not list is outside the VAT area: an export at 0 % (`Export`);
5. otherwise the buyer country's (and region's) rate.
The countries, rates and the seller's country are data (`tax_rates.json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.billing.domain.model import TaxStatus
from services.billing.domain.vat import vat_id_valid
from shared.errors import InvalidInput
from shared.money import round_money, to_decimal

RATES_FILE = Path(__file__).with_name("tax_rates.json")

#: the tax names an invoice keeps for the schemes that charge nothing (the document reads them back)
EXEMPT = "Exempt"
REVERSE_CHARGE = "Reverse charge"
EXPORT = "Export"


class Scheme(StrEnum):
    """Why an invoice carries the tax it does; the document prints each one's legal note."""

    STANDARD = "standard"
    EXEMPT = "exempt"
    REVERSE_CHARGE = "reverse_charge"
    EXPORT = "export"


def scheme_of(tax_name: str, tax_exempt: bool) -> Scheme:
    """The scheme of a stored invoice, from the tax name and exempt flag it was issued with."""
    if tax_exempt or tax_name == EXEMPT:
        return Scheme.EXEMPT
    if tax_name == REVERSE_CHARGE:
        return Scheme.REVERSE_CHARGE
    if tax_name == EXPORT:
        return Scheme.EXPORT
    return Scheme.STANDARD


@dataclass(frozen=True, slots=True)
class VatStatus(TaxStatus):
    """A billing profile's tax status with its VAT id (what reverse charge needs)."""

    tax_id: str = ""


@dataclass(frozen=True, slots=True)
class TaxRate:
    """The rate of one jurisdiction; `jurisdiction` is `NO` or `US-CA`."""

    jurisdiction: str
    rate: Decimal
    name: str


@dataclass(frozen=True, slots=True)
class TaxDecision:
    """What applies to one invoice: a rate, or a valid exemption (rate 0)."""

    rate: Decimal
    name: str
    jurisdiction: str
    exempt: bool = False
    scheme: Scheme = Scheme.STANDARD


class TaxTable:
    """Rates by country, and by region for countries that need one (US states, Canadian provinces)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        default = data.get("default", {"rate": "0", "name": EXPORT})
        self._default = (_rate(default["rate"]), default.get("name", EXPORT))
        self._countries: dict[str, dict[str, Any]] = {k.upper(): v for k, v in data["countries"].items()}
        vat = data.get("vat", {})
        #: where the seller is VAT-registered ("" when the table says nothing: no domestic rule)
        self.seller_country: str = str(vat.get("seller_country", "")).upper()
        #: where a business with a valid VAT id of its own country accounts for the VAT itself
        self.reverse_charge_countries: frozenset[str] = frozenset(
            str(c).upper() for c in vat.get("reverse_charge_countries", ())
        )

    @classmethod
    def from_file(cls, path: Path = RATES_FILE) -> TaxTable:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def countries(self) -> list[str]:
        return sorted(self._countries)

    def lists(self, country_code: str) -> bool:
        """Whether the table has a rate for this country (one it does not list is an export)."""
        return (country_code or "").strip().upper() in self._countries

    def lookup(self, country_code: str, region: str = "") -> TaxRate:
        country = (country_code or "").strip().upper()
        if len(country) != 2 or not country.isalpha():
            raise InvalidInput(
                f"billing country must be an ISO 3166-1 alpha-2 code, got {country_code!r}",
                field="address.country_code",
            )
        entry = self._countries.get(country)
        if entry is None:
            rate, name = self._default
            return TaxRate(country, rate, name)
        regions = entry.get("regions")
        if regions:
            code = (region or "").strip().upper()
            if code.startswith(country + "-"):
                code = code[len(country) + 1 :]
            if not code:
                if entry.get("requires_region"):
                    raise InvalidInput(
                        f"a billing address in {country} needs a state or province to compute tax",
                        field="address.region",
                        reason="TAX_REGION_REQUIRED",
                    )
            elif code in regions:
                r = regions[code]
                return TaxRate(f"{country}-{code}", _rate(r["rate"]), r.get("name", entry.get("name", "Tax")))
            else:
                raise InvalidInput(
                    f"unknown region {region!r} for {country}",
                    field="address.region",
                    reason="TAX_REGION_REQUIRED",
                )
        return TaxRate(country, _rate(entry["rate"]), entry.get("name", "Tax"))


def _rate(value: str) -> Decimal:
    rate = to_decimal(value)
    if rate < 0 or rate >= 1:
        raise ValueError(f"tax rate out of range: {value}")
    return rate


@lru_cache(maxsize=1)
def default_table() -> TaxTable:
    return TaxTable.from_file()


def decide_tax(status: TaxStatus, on: date, table: TaxTable | None = None) -> TaxDecision:
    """The tax that applies to an invoice issued on `on` for a profile with this address and status.

    A tax-exempt profile with a certificate that is valid on that day pays none; the rest follows the
    order in this module's docstring. A VAT id counts only from a `VatStatus` (the profile's).
    """
    table = table or default_table()
    found = table.lookup(status.address.country_code, status.address.region)
    country = found.jurisdiction.split("-", 1)[0]
    if status.exemption_valid_on(on):
        return TaxDecision(Decimal(0), EXEMPT, found.jurisdiction, exempt=True, scheme=Scheme.EXEMPT)
    if country == table.seller_country:
        return TaxDecision(found.rate, found.name, found.jurisdiction)
    tax_id = status.tax_id if isinstance(status, VatStatus) else ""
    if country in table.reverse_charge_countries and tax_id and vat_id_valid(country, tax_id):
        return TaxDecision(Decimal(0), REVERSE_CHARGE, found.jurisdiction, scheme=Scheme.REVERSE_CHARGE)
    if not table.lists(country):
        return TaxDecision(found.rate, EXPORT, found.jurisdiction, scheme=Scheme.EXPORT)
    return TaxDecision(found.rate, found.name, found.jurisdiction)


def line_tax(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """Tax of one line: amount × rate, rounded half up to the minor unit once.

    Norway, 25 % on 737.84 -> 184.46.
    """
    return round_money(to_decimal(amount) * rate, currency)
