"""Catalog and price book (rules §1).

Prices are kept per seat per term in USD (the reference currency) for each (product, plan, term); a
local-currency price is the USD price times the exchange rate of the currency for the sale's channel
group, rounded half up to the currency's minor unit. Exchange rates move by at most 1 % per month for
direct sales and 3 % per quarter for partner sales (see `adjust_rate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from services.subscription.domain.model import Channel, Plan, ProductKind, ShutoffPolicy, Term
from shared.errors import InvalidInput, NotFound, RuleViolation
from shared.money import round_money, to_decimal

REFERENCE_CURRENCY = "USD"
RATE_PLACES = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str
    kind: ProductKind
    shutoff_policy: ShutoffPolicy = ShutoffPolicy.STANDARD
    release_year: int = 2020
    supported: bool = True
    full_product: str = ""  # for an LT product: the FULL product it upgrades to
    contains: tuple[str, ...] = ()  # for a collection or a suite: the products it contains
    upgrade_paths: tuple[str, ...] = ()  # for a suite: the collections it upgrades to


@dataclass(frozen=True, slots=True)
class UsdPrice:
    """List and renewal price per seat per term, in USD."""

    list_price: Decimal
    renewal_price: Decimal


@dataclass(frozen=True, slots=True)
class Price:
    product_code: str
    plan: Plan
    term: Term
    currency: str
    channel: Channel
    list_price: Decimal
    renewal_price: Decimal


class ChannelGroup:
    DIRECT = "DIRECT"
    PARTNER = "PARTNER"


def channel_group(channel: Channel) -> str:
    """Partner quotes and resellers are partner sales; direct online and legacy stores are direct."""
    return ChannelGroup.PARTNER if channel.is_partner else ChannelGroup.DIRECT


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    """Units of `currency` per USD for one channel group; `period` is when it was last adjusted."""

    currency: str
    group: str
    rate: Decimal
    period: str = ""


@dataclass
class Catalog:
    products: dict[str, Product]
    usd_prices: dict[tuple[str, Plan, Term], UsdPrice]
    rates: dict[tuple[str, str], ExchangeRate] = field(default_factory=dict)

    # -- products -------------------------------------------------------------------------------------
    def product(self, code: str) -> Product:
        try:
            return self.products[code]
        except KeyError:
            raise NotFound(f"product {code!r} is not in the catalog", reason="PRODUCT_NOT_FOUND") from None

    def upgrades_to(self, code: str) -> list[str]:
        """LT -> its FULL product; FULL -> every collection that contains it; a suite -> the collections of
        its upgrade paths; a collection -> nothing."""
        p = self.product(code)
        if p.kind is ProductKind.LT:
            return [p.full_product] if p.full_product in self.products else []
        if p.kind is ProductKind.SUITE:
            return sorted(
                c
                for c in p.upgrade_paths
                if c in self.products and self.products[c].kind is ProductKind.COLLECTION
            )
        if p.kind is ProductKind.FULL:
            return sorted(
                c.code
                for c in self.products.values()
                if c.kind is ProductKind.COLLECTION and code in c.contains
            )
        return []

    # -- prices ---------------------------------------------------------------------------------------
    def currencies(self) -> list[str]:
        return sorted({REFERENCE_CURRENCY} | {c for c, _ in self.rates})

    def rate(self, currency: str, channel: Channel) -> Decimal:
        if currency == REFERENCE_CURRENCY:
            return Decimal(1)
        try:
            return self.rates[(currency, channel_group(channel))].rate
        except KeyError:
            raise NotFound(f"the price book has no prices in {currency}", reason="PRICE_NOT_FOUND") from None

    def price(self, product_code: str, plan: Plan, term: Term, currency: str, channel: Channel) -> Price:
        self.product(product_code)
        try:
            usd = self.usd_prices[(product_code, plan, term)]
        except KeyError:
            raise NotFound(
                f"the price book has no {plan.value} {term.value} price for {product_code}",
                reason="PRICE_NOT_FOUND",
            ) from None
        rate = self.rate(currency, channel)
        list_price = round_money(usd.list_price * rate, currency)
        renewal = list_price if term is Term.MONTHLY else round_money(usd.renewal_price * rate, currency)
        return Price(product_code, plan, term, currency, channel, list_price, renewal)

    def prices(
        self, product_code: str = "", currency: str = "", channel: Channel = Channel.DIRECT_ONLINE
    ) -> list[Price]:
        if product_code:
            self.product(product_code)
        currencies = [currency] if currency else self.currencies()
        out = []
        for code, plan, term in sorted(self.usd_prices, key=lambda k: (k[0], k[1].value, k[2].months)):
            if product_code and code != product_code:
                continue
            for cur in currencies:
                out.append(self.price(code, plan, term, cur, channel))
        return out


# -- exchange-rate adjustment -------------------------------------------------------------------------

RATE_CAPS = {ChannelGroup.DIRECT: Decimal("0.01"), ChannelGroup.PARTNER: Decimal("0.03")}


def adjustment_period(group: str, today: date) -> str:
    """Direct sales adjust once a month (2024-06), partner sales once a quarter (2024-Q2)."""
    if group == ChannelGroup.PARTNER:
        return f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    return f"{today.year}-{today.month:02d}"


@dataclass(frozen=True, slots=True)
class RateAdjustment:
    previous: ExchangeRate
    applied: ExchangeRate
    requested: Decimal
    capped: bool


def adjust_rate(current: ExchangeRate, requested: Decimal | str, today: date) -> RateAdjustment:
    """Move `current` towards `requested`, by at most 1 % (direct) or 3 % (partner) of the current rate,
    once per month (direct) or quarter (partner)."""
    if current.currency == REFERENCE_CURRENCY:
        raise RuleViolation(
            "USD is the reference currency; its rate is always 1", reason="EXCHANGE_RATE_REFERENCE_CURRENCY"
        )
    try:
        req = to_decimal(requested)
    except TypeError:
        raise InvalidInput("the rate is a decimal string such as 10.85", field="rate") from None
    except InvalidInput:
        raise InvalidInput(f"the rate {requested!r} is not a decimal number", field="rate") from None
    if req <= 0:
        raise InvalidInput("the rate must be positive", field="rate")
    period = adjustment_period(current.group, today)
    if current.period == period:
        unit = "quarter" if current.group == ChannelGroup.PARTNER else "month"
        raise RuleViolation(
            f"the {current.currency} rate for {current.group.lower()} sales was already adjusted this {unit}"
            f" ({period}); the next adjustment is possible next {unit}",
            reason="EXCHANGE_RATE_ALREADY_ADJUSTED",
        )
    cap = RATE_CAPS[current.group]
    low = current.rate * (1 - cap)
    high = current.rate * (1 + cap)
    applied = min(max(req, low), high).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
    capped = req < low or req > high
    return RateAdjustment(current, replace(current, rate=applied, period=period), req, capped)


# -- the demo catalog ---------------------------------------------------------------------------------

PREMIUM_FACTOR = Decimal("1.25")

DEMO_PRODUCTS: tuple[Product, ...] = (
    Product("ACDLT", "AutoCAD LT", ProductKind.LT, release_year=2021, full_product="ACD"),
    Product("ACD", "AutoCAD", ProductKind.FULL, release_year=2019),
    Product(
        "AEC_COLLECTION",
        "Architecture, Engineering & Construction Collection",
        ProductKind.COLLECTION,
        release_year=2020,
        contains=("ACD", "DOCS"),
    ),
    Product("DOCS", "Docs", ProductKind.FULL, ShutoffPolicy.IMMEDIATE, release_year=2022),
    Product(
        "DC_SUITE",
        "Design & Creation Suite",
        ProductKind.SUITE,
        release_year=2017,
        contains=("ACD",),
        upgrade_paths=("AEC_COLLECTION",),
    ),
)

# USD per seat per term, Standard plan: (monthly, annual list, annual renewal, 3-year list, 3-year renewal).
DEMO_USD: dict[str, tuple[str, str, str, str, str]] = {
    "ACDLT": ("60.00", "470.00", "420.00", "1310.00", "1179.00"),
    "ACD": ("245.00", "1975.00", "1780.00", "5925.00", "5330.00"),
    "AEC_COLLECTION": ("415.00", "3330.00", "3000.00", "9990.00", "8990.00"),
    "DOCS": ("30.00", "250.00", "225.00", "750.00", "675.00"),
    "DC_SUITE": ("300.00", "2400.00", "2160.00", "7200.00", "6480.00"),
}

# Units of currency per USD at the start, the same for both channel groups.
DEMO_RATES: dict[str, str] = {"EUR": "0.92", "NOK": "10.80", "SEK": "10.60"}


def _usd_table() -> dict[tuple[str, Plan, Term], UsdPrice]:
    table: dict[tuple[str, Plan, Term], UsdPrice] = {}
    for code, (monthly, a_list, a_renew, t_list, t_renew) in DEMO_USD.items():
        standard = {
            Term.MONTHLY: (Decimal(monthly), Decimal(monthly)),
            Term.ANNUAL: (Decimal(a_list), Decimal(a_renew)),
            Term.THREE_YEAR: (Decimal(t_list), Decimal(t_renew)),
        }
        for term, (lp, rp) in standard.items():
            table[(code, Plan.STANDARD, term)] = UsdPrice(lp, rp)
            table[(code, Plan.PREMIUM, term)] = UsdPrice(
                round_money(lp * PREMIUM_FACTOR, REFERENCE_CURRENCY),
                round_money(rp * PREMIUM_FACTOR, REFERENCE_CURRENCY),
            )
    return table


def demo_rates() -> list[ExchangeRate]:
    return [
        ExchangeRate(cur, group, Decimal(rate))
        for cur, rate in DEMO_RATES.items()
        for group in (ChannelGroup.DIRECT, ChannelGroup.PARTNER)
    ]


def demo_catalog(rates: Iterable[ExchangeRate] | None = None) -> Catalog:
    """The catalog of rules §1 that the service loads on first start."""
    return Catalog(
        products={p.code: p for p in DEMO_PRODUCTS},
        usd_prices=_usd_table(),
        rates={(r.currency, r.group): r for r in (demo_rates() if rates is None else rates)},
    )
