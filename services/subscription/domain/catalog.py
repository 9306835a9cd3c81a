"""Catalog and price book (rules §1, §10).

Prices are kept per seat per term in USD (the reference currency) for each (product, plan, term); a
local-currency price is the USD price times the exchange rate of the currency for the sale's channel
group, rounded half up to the currency's minor unit. Exchange rates move by at most 1 % per month for
direct sales and 3 % per quarter for partner sales (see `adjust_rate`).

Operators manage the catalog (rules §10): products are added and changed, and a price is set from an
**effective date**. A price key (product, plan, term) has a base price (in effect since the catalog began)
and any number of changes, each from its own date; the price on a day is the latest one in effect on it.
A new purchase is priced on its order date, a renewal on its renewal date, so a change never reaches a
term already running. Every change raises the price-book version (`Catalog.version`), which every order
records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from services.subscription.domain.model import Channel, Plan, ProductKind, ShutoffPolicy, Term
from shared.errors import AlreadyExists, InvalidInput, NotFound, RuleViolation
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
    """List and renewal price per seat per term, in USD, in effect from `effective_date` (None: since the
    catalog began) until the next change of the same key."""

    list_price: Decimal
    renewal_price: Decimal
    effective_date: date | None = None


PriceKey = tuple[str, Plan, Term]


@dataclass(frozen=True, slots=True)
class Price:
    product_code: str
    plan: Plan
    term: Term
    currency: str
    channel: Channel
    list_price: Decimal
    renewal_price: Decimal
    effective_date: date | None = None  # when the USD price it comes from took effect (None: always)


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
    usd_prices: dict[PriceKey, UsdPrice]  # the base prices, in effect since the catalog began
    rates: dict[tuple[str, str], ExchangeRate] = field(default_factory=dict)
    # price changes from an effective date, per key, oldest first (rules §10)
    price_changes: dict[PriceKey, tuple[UsdPrice, ...]] = field(default_factory=dict)
    version: int = 0  # the price-book version: raised by every change of products or prices

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

    def history(self, key: PriceKey) -> tuple[UsdPrice, ...]:
        """Every USD price of a key, oldest first: the base price (if any), then its changes."""
        base = self.usd_prices.get(key)
        return ((base,) if base is not None else ()) + self.price_changes.get(key, ())

    def usd_price(self, product_code: str, plan: Plan, term: Term, on: date | None = None) -> UsdPrice:
        """The USD price of a key in effect on `on` (a purchase's order date, a renewal's renewal date);
        without a day, the newest price the book holds."""
        self.product(product_code)
        history = self.history((product_code, plan, term))
        if on is not None:
            history = tuple(p for p in history if p.effective_date is None or p.effective_date <= on)
        if not history:
            when = "" if on is None else f" on {on.isoformat()}"
            raise NotFound(
                f"the price book has no {plan.value} {term.value} price for {product_code}{when}",
                reason="PRICE_NOT_FOUND",
            )
        return history[-1]

    def price(
        self,
        product_code: str,
        plan: Plan,
        term: Term,
        currency: str,
        channel: Channel,
        on: date | None = None,
    ) -> Price:
        """The price per seat per term in `currency` on the day `on` (rules §10; see `usd_price`)."""
        usd = self.usd_price(product_code, plan, term, on)
        rate = self.rate(currency, channel)
        list_price = round_money(usd.list_price * rate, currency)
        renewal = list_price if term is Term.MONTHLY else round_money(usd.renewal_price * rate, currency)
        return Price(product_code, plan, term, currency, channel, list_price, renewal, usd.effective_date)

    def price_keys(self) -> list[PriceKey]:
        keys = set(self.usd_prices) | set(self.price_changes)
        return sorted(keys, key=lambda k: (k[0], k[1].value, k[2].months))

    def prices(
        self,
        product_code: str = "",
        currency: str = "",
        channel: Channel = Channel.DIRECT_ONLINE,
        on: date | None = None,
    ) -> list[Price]:
        """The price book on the day `on` (keys without a price yet on that day are left out)."""
        if product_code:
            self.product(product_code)
        currencies = [currency] if currency else self.currencies()
        out = []
        for code, plan, term in self.price_keys():
            if product_code and code != product_code:
                continue
            if on is not None and not any(
                p.effective_date is None or p.effective_date <= on for p in self.history((code, plan, term))
            ):
                continue
            for cur in currencies:
                out.append(self.price(code, plan, term, cur, channel, on))
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


# -- managing the catalog (rules §10) ------------------------------------------------------------------

PRODUCT_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,39}$")
FIRST_RELEASE_YEAR = 1982  # the first AutoCAD release: no licensed version is older


def _check_product(catalog: Catalog, p: Product) -> None:
    """The fields of a product to add or change, and the products it names (which must exist)."""
    if not PRODUCT_CODE.match(p.code):
        raise InvalidInput(
            "a product code is 2 to 40 capital letters, digits or _ starting with a letter, such as ACDLT",
            field="product_code",
        )
    if not p.name.strip():
        raise InvalidInput("the product needs a name", field="name")
    if len(p.name) > 200:
        raise InvalidInput("a product name has at most 200 characters", field="name")
    if not FIRST_RELEASE_YEAR <= p.release_year <= 9999:
        raise InvalidInput(
            f"release_year is a year from {FIRST_RELEASE_YEAR}, such as 2021", field="release_year"
        )
    named = [("full_product_code", c) for c in ([p.full_product] if p.full_product else [])]
    named += [("contains", c) for c in p.contains] + [("upgrade_paths", c) for c in p.upgrade_paths]
    for fld, code in named:
        if code == p.code:
            raise InvalidInput(f"{p.code} cannot name itself in {fld}", field=fld)
        if code not in catalog.products:
            raise NotFound(
                f"{fld} names {code!r}, which is not in the catalog",
                reason="PRODUCT_NOT_FOUND",
                field_violations=[(fld, f"{code!r} is not in the catalog")],
            )
    if p.full_product and p.kind is not ProductKind.LT:
        raise InvalidInput(
            "only an LT product names the FULL product it upgrades to", field="full_product_code"
        )
    if p.full_product and catalog.products[p.full_product].kind is not ProductKind.FULL:
        raise InvalidInput(f"{p.full_product} is not a FULL product", field="full_product_code")
    if p.contains and p.kind not in (ProductKind.COLLECTION, ProductKind.SUITE):
        raise InvalidInput("only a collection or a suite contains other products", field="contains")
    if p.upgrade_paths and p.kind is not ProductKind.SUITE:
        raise InvalidInput("only a suite names the collections it upgrades to", field="upgrade_paths")
    for code in p.upgrade_paths:
        if catalog.products[code].kind is not ProductKind.COLLECTION:
            raise InvalidInput(f"{code} is not a collection", field="upgrade_paths")


def add_product(catalog: Catalog, p: Product) -> Product:
    """A new product (rules §10): a code not yet in the catalog, and only existing products named."""
    if p.code in catalog.products:
        raise AlreadyExists(f"the catalog already has a product {p.code}", reason="PRODUCT_ALREADY_EXISTS")
    _check_product(catalog, p)
    return p


def change_product(catalog: Catalog, p: Product) -> Product:
    """A product's new fields (rules §10). Its kind is fixed: subscriptions and upgrade paths rest on it."""
    old = catalog.product(p.code)
    if p.kind is not old.kind:
        raise RuleViolation(
            f"{p.code} is {old.kind.value}; a product's kind never changes (add a new product instead)",
            reason="PRODUCT_KIND_FIXED",
        )
    _check_product(catalog, p)
    if p == old:
        raise RuleViolation(f"{p.code} already has these fields", reason="NOTHING_TO_CHANGE")
    return p


def schedule_price(
    catalog: Catalog,
    key: PriceKey,
    list_price: Decimal,
    renewal_price: Decimal,
    effective_date: date,
    today: date,
) -> UsdPrice:
    """A USD price of (product, plan, term) from `effective_date` on (rules §10). It applies to purchases
    ordered on or after that day and to renewals whose renewal date is on or after it; terms already running
    keep their price. The day is today or later (a past day would reprice orders already placed), one
    price per key and day, list and renewal price not negative, and an on-time renewal never pays more than
    a new purchase (a monthly renewal pays the list price)."""
    code, plan, term = key
    catalog.product(code)
    for fld, amount in (("list_price", list_price), ("renewal_price", renewal_price)):
        if amount < 0:
            raise InvalidInput(
                f"a price is never negative ({fld} {amount})", field=fld, reason="PRICE_NEGATIVE"
            )
    if term is Term.MONTHLY:
        renewal_price = list_price  # rules §1: monthly terms have no renewal discount
    elif renewal_price > list_price:
        raise InvalidInput(
            f"the renewal price {renewal_price} is above the list price {list_price}", field="renewal_price"
        )
    if effective_date < today:
        raise RuleViolation(
            f"a price takes effect today ({today.isoformat()}) or later, not on {effective_date.isoformat()}:"
            " orders already placed keep the price they paid",
            reason="PRICE_EFFECTIVE_DATE_PASSED",
            field_violations=[("effective_date", "before today")],
        )
    if any(p.effective_date == effective_date for p in catalog.history(key)):
        raise AlreadyExists(
            f"{code} {plan.value} {term.value} already has a price from {effective_date.isoformat()}",
            reason="PRICE_EFFECTIVE_DATE_TAKEN",
            field_violations=[("effective_date", "a price of this key already starts on this day")],
        )
    return UsdPrice(list_price, renewal_price, effective_date)


def with_price(catalog: Catalog, key: PriceKey, price: UsdPrice) -> Catalog:
    """The catalog with one more price change (kept oldest first)."""
    changes = dict(catalog.price_changes)
    changes[key] = tuple(sorted((*changes.get(key, ()), price), key=lambda p: p.effective_date or date.min))
    return replace(catalog, price_changes=changes)


# -- the demo catalog: a data file (rules §10) ----------------------------------------------------------

DEMO_CATALOG_PACKAGE = "services.subscription.catalog"
DEMO_CATALOG_FILE = "demo_catalog.json"


@dataclass(frozen=True, slots=True)
class CatalogData:
    """A catalog as a data file describes it: products, base USD prices, starting exchange rates."""

    products: tuple[Product, ...]
    usd_prices: dict[PriceKey, UsdPrice]
    rates: tuple[ExchangeRate, ...]

    def catalog(self, rates: Iterable[ExchangeRate] | None = None) -> Catalog:
        return Catalog(
            products={p.code: p for p in self.products},
            usd_prices=dict(self.usd_prices),
            rates={(r.currency, r.group): r for r in (self.rates if rates is None else rates)},
        )


def _money_field(entry: Mapping[str, Any], name: str, where: str) -> Decimal:
    raw = entry.get(name)
    if not isinstance(raw, str):
        raise InvalidInput(f'{where}: {name} is a decimal string such as "470.00"')
    amount = to_decimal(raw)
    if amount < 0 or amount != round_money(amount, REFERENCE_CURRENCY):
        raise InvalidInput(f"{where}: {name} {raw} is not a USD amount of at least 0")
    return amount


def catalog_data(data: Mapping[str, Any]) -> CatalogData:
    """Reads a catalog document (the format of `demo_catalog.json`), checking it as an operator's changes
    are checked: codes unique, every product valid and naming only products of the document, prices not
    negative, renewal prices not above list prices."""
    built = Catalog(products={}, usd_prices={})
    products: list[Product] = []
    factor = to_decimal(str(data.get("premium_factor", "1")))
    prices: dict[PriceKey, UsdPrice] = {}
    for entry in data.get("products", []):
        code = str(entry.get("code", ""))
        where = f"product {code or '?'}"
        try:
            p = Product(
                code=code,
                name=str(entry.get("name", "")),
                kind=ProductKind(entry.get("kind", "")),
                shutoff_policy=ShutoffPolicy(entry.get("shutoff_policy", ShutoffPolicy.STANDARD.value)),
                release_year=int(entry.get("release_year", 0)),
                supported=bool(entry.get("supported", True)),
                full_product=str(entry.get("full_product", "")),
                contains=tuple(entry.get("contains", ())),
                upgrade_paths=tuple(entry.get("upgrade_paths", ())),
            )
        except ValueError as e:
            raise InvalidInput(f"{where}: {e}") from None
        if p.code in built.products:
            raise AlreadyExists(f"{where} is listed twice", reason="PRODUCT_ALREADY_EXISTS")
        built.products[p.code] = p
        products.append(p)
        usd = entry.get("usd", {})
        monthly = _money_field(usd, "monthly", where)
        standard = {
            Term.MONTHLY: (monthly, monthly),
            Term.ANNUAL: (
                _money_field(usd, "annual_list", where),
                _money_field(usd, "annual_renewal", where),
            ),
            Term.THREE_YEAR: (
                _money_field(usd, "three_year_list", where),
                _money_field(usd, "three_year_renewal", where),
            ),
        }
        for term, (lp, rp) in standard.items():
            if rp > lp:
                raise InvalidInput(f"{where}: the {term.value} renewal price is above the list price")
            prices[(p.code, Plan.STANDARD, term)] = UsdPrice(lp, rp)
            prices[(p.code, Plan.PREMIUM, term)] = UsdPrice(
                round_money(lp * factor, REFERENCE_CURRENCY), round_money(rp * factor, REFERENCE_CURRENCY)
            )
    for p in products:
        _check_product(built, p)
    rates = tuple(
        ExchangeRate(str(cur), group, to_decimal(str(rate)))
        for cur, rate in dict(data.get("rates", {})).items()
        for group in (ChannelGroup.DIRECT, ChannelGroup.PARTNER)
    )
    return CatalogData(tuple(products), prices, rates)


@lru_cache(maxsize=1)
def demo_data() -> CatalogData:
    """The demo catalog the service loads on first start: `services/subscription/catalog/demo_catalog.json`."""
    text = resources.files(DEMO_CATALOG_PACKAGE).joinpath(DEMO_CATALOG_FILE).read_text(encoding="utf-8")
    return catalog_data(json.loads(text))


def demo_rates() -> list[ExchangeRate]:
    return list(demo_data().rates)


def demo_catalog(rates: Iterable[ExchangeRate] | None = None) -> Catalog:
    """The demo catalog of rules §1 and §10 (a fresh copy each time)."""
    return demo_data().catalog(rates)
