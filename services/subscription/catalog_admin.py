"""Operators manage the catalog (rules §10): add and change products, set prices from an effective date.

Each use case runs on the caller's unit of work (the servicer's `run_idempotent`, so a retried request
changes nothing twice), holds the catalog lock so changes are numbered one after another, checks the change
with the pure rules of `domain.catalog` on the catalog as it is now, writes it and numbers it: every change
is a new price-book version, which every order records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal

from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork
from services.subscription.domain.catalog import (
    REFERENCE_CURRENCY,
    Catalog,
    Price,
    Product,
    add_product,
    change_product,
    schedule_price,
)
from services.subscription.domain.model import Channel, Plan, Term
from shared.errors import InvalidInput

CATALOG_LOCK = "catalog"


@dataclass(frozen=True)
class ProductChange:
    product: Product
    upgrades_to: list[str]
    version: int


@dataclass(frozen=True)
class PriceChange:
    price: Price  # in USD, with its effective date
    version: int


def _catalog(uow: SubscriptionUnitOfWork) -> Catalog:
    uow.lock_key(CATALOG_LOCK)
    return uow.catalog.load()


def _answer(uow: SubscriptionUnitOfWork, p: Product, version: int) -> ProductChange:
    return ProductChange(p, uow.catalog.load().upgrades_to(p.code), version)


def create_product(uow: SubscriptionUnitOfWork, product: Product) -> ProductChange:
    p = add_product(_catalog(uow), product)
    version = uow.catalog.add_product(p, f"product {p.code} added", uow.now)
    return _answer(uow, p, version)


def update_product(uow: SubscriptionUnitOfWork, product: Product) -> ProductChange:
    p = change_product(_catalog(uow), product)
    version = uow.catalog.save_product(p, f"product {p.code} changed", uow.now)
    return _answer(uow, p, version)


def set_price(
    uow: SubscriptionUnitOfWork,
    product_code: str,
    plan: Plan,
    term: Term,
    list_price: tuple[Decimal, str],
    renewal_price: tuple[Decimal, str],
    effective_date: date | None,
) -> PriceChange:
    """`list_price`, `renewal_price`: (amount, currency); the price book is kept in USD."""
    for fld, (_, currency) in (("list_price", list_price), ("renewal_price", renewal_price)):
        if currency != REFERENCE_CURRENCY:
            raise InvalidInput(
                f"the price book is kept in USD; {currency} prices follow the exchange rates (rules §1)",
                field=f"{fld}.currency_code",
            )
    if effective_date is None:
        raise InvalidInput("effective_date is required", field="effective_date")
    key = (product_code, plan, term)
    today = uow.now.astimezone(UTC).date()
    usd = schedule_price(_catalog(uow), key, list_price[0], renewal_price[0], effective_date, today)
    change = f"price {product_code} {plan.value} {term.value} from {effective_date.isoformat()}"
    version = uow.catalog.add_price(key, usd, change, uow.now)
    price = Price(
        product_code,
        plan,
        term,
        REFERENCE_CURRENCY,
        Channel.DIRECT_ONLINE,
        usd.list_price,
        usd.renewal_price,
        usd.effective_date,
    )
    return PriceChange(price, version)
