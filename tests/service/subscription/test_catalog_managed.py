"""Rules §10 over gRPC on SQLite and PostgreSQL: operators set a price from an effective date and manage
products; a purchase is priced on its order date and a renewal on its renewal date; every order records
the price-book version it was priced from; bad input and people are refused and change nothing; a retried
request does nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import func, select

from tenure.common.v1 import common_pb2 as c
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import person

from .conftest import KARI, OPERATOR, day, error_info, money, rid

OSLO = ZoneInfo("Europe/Oslo")


def usd(amount: str):
    units, _, cents = amount.partition(".")
    return {"currency_code": "USD", "units": int(units), "nanos": int((cents or "0").ljust(9, "0"))}


def raise_acdlt(stack, request_id: str | None = None, **kw) -> pb.SetPriceResponse:
    """ACDLT Standard annual raised from 2025-01-01: list 470.00 -> 500.00, renewal 420.00 -> 450.00."""
    fields = dict(
        request_id=request_id or rid(),
        product_code="ACDLT",
        plan=c.PLAN_STANDARD,
        term=c.TERM_ANNUAL,
        list_price=usd("500.00"),
        renewal_price=usd("450.00"),
        effective_date=day(2025, 1, 1),
    )
    fields.update(kw)
    return stack.sub.SetPrice(pb.SetPriceRequest(**fields), metadata=OPERATOR)


def refused(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), error_info(e.value).reason


def version(stack) -> int:
    return stack.sub.ListPrices(
        pb.ListPricesRequest(product_code="ACDLT", currency_code="USD")
    ).price_book_version


def catalog_rows(stack) -> dict[str, int]:
    db = stack.sub_app.db
    with db.read() as s:
        return {
            t: s.execute(select(func.count()).select_from(db.metadata.tables[t])).scalar_one()
            for t in ("products", "usd_prices", "price_changes", "price_book_versions")
        }


def order_versions(stack) -> dict[str, int]:
    orders = stack.sub_app.db.metadata.tables["orders"]
    with stack.sub_app.db.read() as s:
        return dict(s.execute(select(orders.c.order_number, orders.c.price_book_version)).all())


def annual_acdlt(stack, on) -> Decimal:
    prices = stack.sub.ListPrices(
        pb.ListPricesRequest(product_code="ACDLT", currency_code="USD", effective_on=on)
    ).prices
    (p,) = [p for p in prices if p.plan == c.PLAN_STANDARD and p.term == c.TERM_ANNUAL]
    return money(p.list_price)


def test_a_raise_from_2025_01_01_prices_purchases_from_that_day_and_the_2025_06_10_renewal(stack):
    first = version(stack)
    assert first >= 1
    held = stack.buy(seats=2)  # 2024-06-10, before the change is even set
    assert money(held.subscription.unit_price) == Decimal("470.00")

    set_ = raise_acdlt(stack)
    assert set_.price_book_version == first + 1
    assert (money(set_.price.list_price), money(set_.price.renewal_price)) == (
        Decimal("500.00"),
        Decimal("450.00"),
    )
    assert set_.price.effective_date == day(2025, 1, 1)
    assert annual_acdlt(stack, day(2024, 12, 31)) == Decimal("470.00")
    assert annual_acdlt(stack, day(2025, 1, 1)) == Decimal("500.00")
    assert annual_acdlt(stack, None) == Decimal("470.00")  # today (2024-06-10)

    stack.clock.set(datetime(2024, 12, 31, 23, 0, tzinfo=OSLO).astimezone(UTC))
    old = stack.buy(account_id="acct-2")
    stack.clock.set(datetime(2025, 1, 1, 0, 30, tzinfo=OSLO).astimezone(UTC))
    new = stack.buy(account_id="acct-3")
    assert money(old.subscription.unit_price) == Decimal("470.00")
    assert money(new.subscription.unit_price) == Decimal("500.00")

    # the current term keeps its price: seats added after the change cost 470.00 prorated
    added = stack.sub.AddSeats(
        pb.AddSeatsRequest(request_id=rid(), subscription_id=held.subscription.subscription_id, seats=1)
    )
    assert money(added.subscription.unit_price) == Decimal("470.00")
    # 470.00 x 160 / 365 days left from 2025-01-01 = 206.027
    assert money(added.prorated_amount) == Decimal("206.03")

    stack.clock.set(datetime(2025, 5, 1, 9, 0, tzinfo=OSLO).astimezone(UTC))
    renewed = stack.sub.RenewSubscription(
        pb.RenewSubscriptionRequest(request_id=rid(), subscription_id=held.subscription.subscription_id)
    ).subscription
    assert renewed.current_period_start_date == day(2025, 6, 10)
    assert money(renewed.unit_price) == Decimal("450.00")  # the renewal price from 2025-01-01, 3 seats

    versions = order_versions(stack)
    assert versions[held.order_number] == first
    assert versions[old.order_number] == versions[new.order_number] == first + 1
    assert versions[added.order_number] == first + 1
    assert len(versions) == 5 and all(v >= first for v in versions.values())


def test_bad_prices_and_people_are_refused_with_a_reason_and_change_nothing(stack):
    raise_acdlt(stack)
    before, rows = version(stack), catalog_rows(stack)
    cases = {
        "unknown product": (dict(product_code="NOPE"), grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND"),
        "negative list price": (
            dict(list_price=usd("-500.00"), effective_date=day(2025, 2, 1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PRICE_NEGATIVE",
        ),
        "same key and day": ({}, grpc.StatusCode.ALREADY_EXISTS, "PRICE_EFFECTIVE_DATE_TAKEN"),
        "a past day": (
            dict(effective_date=day(2024, 6, 9)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "PRICE_EFFECTIVE_DATE_PASSED",
        ),
        "not USD": (
            dict(list_price={"currency_code": "EUR", "units": 460}, effective_date=day(2025, 2, 1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        "renewal above list": (
            dict(renewal_price=usd("500.01"), effective_date=day(2025, 2, 1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
    }
    for name, (kw, code, reason) in cases.items():
        assert refused(lambda kw=kw: raise_acdlt(stack, **kw)) == (code, f"ERROR_REASON_{reason}"), name
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.SetPrice(
            pb.SetPriceRequest(
                request_id=rid(),
                product_code="ACDLT",
                plan=c.PLAN_STANDARD,
                term=c.TERM_ANNUAL,
                list_price=usd("1.00"),
                renewal_price=usd("1.00"),
                effective_date=day(2025, 3, 1),
            ),
            metadata=person(KARI),
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    spec = pb.ProductSpec(product_code="NEWBIE", name="Newbie", kind=c.PRODUCT_KIND_FULL, release_year=2024)
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.CreateProduct(
            pb.CreateProductRequest(request_id=rid(), product=spec), metadata=person(KARI)
        )
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert version(stack) == before and catalog_rows(stack) == rows
    assert annual_acdlt(stack, day(2025, 2, 1)) == Decimal("500.00")


def test_a_retried_change_does_nothing_twice(stack):
    key = rid()
    first = raise_acdlt(stack, key)
    rows = catalog_rows(stack)
    again = raise_acdlt(stack, key)
    assert again == first and catalog_rows(stack) == rows
    spec = pb.ProductSpec(product_code="NEWBIE", name="Newbie", kind=c.PRODUCT_KIND_FULL, release_year=2024)
    req = pb.CreateProductRequest(request_id=rid(), product=spec)
    made = stack.sub.CreateProduct(req, metadata=OPERATOR)
    assert stack.sub.CreateProduct(req, metadata=OPERATOR) == made
    assert made.price_book_version == first.price_book_version + 1
    assert catalog_rows(stack)["products"] == rows["products"] + 1
    # a new request for the same code is refused
    assert refused(
        lambda: stack.sub.CreateProduct(
            pb.CreateProductRequest(request_id=rid(), product=spec), metadata=OPERATOR
        )
    ) == (grpc.StatusCode.ALREADY_EXISTS, "ERROR_REASON_PRODUCT_ALREADY_EXISTS")


def test_a_new_product_is_priced_and_sold_and_changed_but_never_changes_kind(stack):
    spec = pb.ProductSpec(
        product_code="INVLT",
        name="Inventor LT",
        kind=c.PRODUCT_KIND_LT,
        release_year=2022,
        full_product_code="ACD",
    )
    made = stack.sub.CreateProduct(pb.CreateProductRequest(request_id=rid(), product=spec), metadata=OPERATOR)
    assert made.product.upgrades_to == ["ACD"] and made.product.supported
    assert made.product.shutoff_policy == c.SHUTOFF_POLICY_STANDARD
    with pytest.raises(grpc.RpcError) as e:
        stack.buy(product_code="INVLT")
    assert error_info(e.value).reason == "ERROR_REASON_PRICE_NOT_FOUND"
    stack.sub.SetPrice(
        pb.SetPriceRequest(
            request_id=rid(),
            product_code="INVLT",
            plan=c.PLAN_STANDARD,
            term=c.TERM_ANNUAL,
            list_price=usd("300.00"),
            renewal_price=usd("270.00"),
            effective_date=day(2024, 6, 10),  # today
        ),
        metadata=OPERATOR,
    )
    bought = stack.buy(product_code="INVLT")
    assert money(bought.subscription.unit_price) == Decimal("300.00")
    assert refused(
        lambda: stack.sub.CreateProduct(
            pb.CreateProductRequest(
                request_id=rid(),
                product=pb.ProductSpec(
                    product_code="BROKEN",
                    name="Broken",
                    kind=c.PRODUCT_KIND_LT,
                    release_year=2022,
                    full_product_code="NOPE",
                ),
            ),
            metadata=OPERATOR,
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ERROR_REASON_PRODUCT_NOT_FOUND")
    changed = stack.sub.UpdateProduct(
        pb.UpdateProductRequest(
            request_id=rid(),
            product=pb.ProductSpec(
                product_code="INVLT",
                name="Inventor LT 2025",
                kind=c.PRODUCT_KIND_LT,
                release_year=2022,
                full_product_code="ACD",
                supported=False,
            ),
        ),
        metadata=OPERATOR,
    )
    assert changed.product.name == "Inventor LT 2025" and not changed.product.supported
    assert changed.price_book_version == made.price_book_version + 2
    with pytest.raises(grpc.RpcError) as e:
        stack.buy(product_code="INVLT")
    assert error_info(e.value).reason == "ERROR_REASON_PRODUCT_NOT_SUPPORTED"
    assert refused(
        lambda: stack.sub.UpdateProduct(
            pb.UpdateProductRequest(
                request_id=rid(),
                product=pb.ProductSpec(
                    product_code="INVLT", name="X", kind=c.PRODUCT_KIND_FULL, release_year=2022
                ),
            ),
            metadata=OPERATOR,
        )
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_PRODUCT_KIND_FIXED")


def test_the_demo_catalog_file_is_loaded_with_every_immediate_offering(stack):
    products = stack.sub.ListProducts(pb.ListProductsRequest()).products
    immediate = {p.name for p in products if p.shutoff_policy == c.SHUTOFF_POLICY_IMMEDIATE}
    assert {"Docs", "Autodesk Build 550", "BuildingConnected TradeTapp", "Autodesk Workshop XR"} <= immediate
    assert len(immediate) == 27
    prices = stack.sub.ListPrices(pb.ListPricesRequest(product_code="TAKEOFF", currency_code="NOK")).prices
    assert len(prices) == 6 and all(money(p.list_price) > 0 for p in prices)
