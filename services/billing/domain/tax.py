"""Tax from the billing address: a rate table kept as data, applied per line, rounded half up once per line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.billing.domain.model import TaxStatus
from shared.errors import InvalidInput
from shared.money import round_money, to_decimal

RATES_FILE = Path(__file__).with_name("tax_rates.json")


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


class TaxTable:
    """Rates by country, and by region for countries that need one (US states, Canadian provinces)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        default = data.get("default", {"rate": "0", "name": "No tax"})
        self._default = (_rate(default["rate"]), default.get("name", "No tax"))
        self._countries: dict[str, dict[str, Any]] = {k.upper(): v for k, v in data["countries"].items()}

    @classmethod
    def from_file(cls, path: Path = RATES_FILE) -> TaxTable:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def countries(self) -> list[str]:
        return sorted(self._countries)

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

    A tax-exempt profile with a certificate that is valid on that day pays none.
    """
    found = (table or default_table()).lookup(status.address.country_code, status.address.region)
    if status.exemption_valid_on(on):
        return TaxDecision(Decimal(0), "Exempt", found.jurisdiction, exempt=True)
    return TaxDecision(found.rate, found.name, found.jurisdiction)


def line_tax(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """Tax of one line: amount × rate, rounded half up to the minor unit once.

    Norway, 25 % on 737.84 -> 184.46.
    """
    return round_money(to_decimal(amount) * rate, currency)
