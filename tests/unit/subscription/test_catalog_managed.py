"""Rules §10: the catalog as the vendor's data. Prices from an effective date (a purchase on its order date,
a renewal on its renewal date, never the running term), the operators' checks of products and prices, the
price-book version on every order, and the demo catalog file with every IMMEDIATE offering of seed 004."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.subscription import handlers
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import (
    Catalog,
    Product,
    add_product,
    catalog_data,
    change_product,
    demo_catalog,
    schedule_price,
    with_price,
)
from services.subscription.domain.model import Channel, Plan, ProductKind, ShutoffPolicy, Term
from shared.errors import AlreadyExists, InvalidInput, NotFound, RuleViolation
from tests.unit.subscription.factory import at, bought, order
from tests.unit.subscription.fakes import FakeBilling, FakeDatabase, peers

ACDLT_ANNUAL = ("ACDLT", Plan.STANDARD, Term.ANNUAL)
RAISE_FROM = date(2025, 1, 1)


def raised(catalog: Catalog | None = None) -> Catalog:
    """The demo catalog with ACDLT annual raised from 2025-01-01: list 470.00 -> 500.00, renewal 420.00 ->
    450.00 (scheduled on 2024-11-01)."""
    c = catalog or demo_catalog()
    usd = schedule_price(c, ACDLT_ANNUAL, Decimal("500.00"), Decimal("450.00"), RAISE_FROM, date(2024, 11, 1))
    return replace(with_price(c, ACDLT_ANNUAL, usd), version=c.version + 1)


# -- prices from an effective date ----------------------------------------------------------------------


def test_the_price_on_a_day_is_the_latest_in_effect_on_it():
    c = raised()
    on = lambda d: c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "USD", Channel.DIRECT_ONLINE, d)  # noqa: E731
    assert (on(date(2024, 12, 31)).list_price, on(date(2024, 12, 31)).renewal_price) == (
        Decimal("470.00"),
        Decimal("420.00"),
    )
    assert on(date(2024, 12, 31)).effective_date is None
    assert (on(RAISE_FROM).list_price, on(RAISE_FROM).renewal_price) == (Decimal("500.00"), Decimal("450.00"))
    assert on(RAISE_FROM).effective_date == RAISE_FROM
    # local currencies follow: 500.00 x 10.80 NOK
    nok = c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "NOK", Channel.DIRECT_ONLINE, date(2025, 6, 10))
    assert nok.list_price == Decimal("5400.00")
    # another key is untouched
    assert c.price(
        "ACDLT", Plan.STANDARD, Term.THREE_YEAR, "USD", Channel.DIRECT_ONLINE, RAISE_FROM
    ).list_price == (Decimal("1310.00"))


def test_a_purchase_on_2024_12_31_pays_the_old_price_and_on_2025_01_01_the_new_one():
    c = raised()
    before = ops.create(order(start_date=None), c, "sub-a", at(date(2024, 12, 31), hour=23))
    after = ops.create(order(start_date=None), c, "sub-b", at(RAISE_FROM, hour=0))
    assert before.subscription.unit_price == Decimal("470.00") and before.lines[0].amount == Decimal("470.00")
    assert after.subscription.unit_price == Decimal("500.00") and after.lines[0].amount == Decimal("500.00")


def test_a_raise_from_2025_01_01_prices_the_2025_06_10_renewal_and_not_the_current_term():
    c = raised()
    sub = bought(c, seats=2)  # 2024-06-10, annual, at 470.00 (before the raise)
    assert sub.unit_price == Decimal("470.00")
    # seats added mid-term on 2025-02-01 (after the raise) keep the term's 470.00
    added = ops.add_seats(sub, 1, c, at(date(2025, 2, 1)))
    assert added.subscription.unit_price == Decimal("470.00")
    assert added.lines[0].unit_price == Decimal("470.00")
    assert added.lines[0].amount == Decimal("166.11")  # 470.00 x 129 / 365 days left = 166.1096
    renewal = ops.renew_term(added.subscription, c, at(date(2025, 6, 10)))
    (line,) = renewal.lines
    assert line.period_start_date == date(2025, 6, 10)
    assert (line.unit_price, line.quantity, line.amount) == (Decimal("450.00"), 3, Decimal("1350.00"))
    assert renewal.subscription.unit_price == Decimal("450.00")


def test_a_renewal_before_the_effective_date_keeps_the_old_renewal_price():
    c = raised()
    sub = bought(c, start_date=date(2023, 12, 10))  # renews 2024-12-10, before the raise
    renewal = ops.renew_term(sub, c, at(date(2024, 12, 10)))
    assert renewal.lines[0].unit_price == Decimal("420.00")
    # ... and the one after it (2025-12-10) pays the raised renewal price
    again = ops.renew_term(renewal.subscription, c, at(date(2025, 12, 10)))
    assert again.lines[0].unit_price == Decimal("450.00")


def test_a_product_priced_only_from_a_later_day_has_no_price_before_it():
    c = demo_catalog()
    p = add_product(c, Product("NEWBIE", "Newbie", ProductKind.FULL))
    c.products[p.code] = p
    key = ("NEWBIE", Plan.STANDARD, Term.ANNUAL)
    usd = schedule_price(c, key, Decimal("100.00"), Decimal("90.00"), date(2025, 3, 1), date(2025, 1, 1))
    c = with_price(c, key, usd)
    with pytest.raises(NotFound) as e:
        c.price("NEWBIE", Plan.STANDARD, Term.ANNUAL, "USD", Channel.DIRECT_ONLINE, date(2025, 2, 28))
    assert e.value.reason == "PRICE_NOT_FOUND" and "2025-02-28" in str(e.value)
    assert c.price(
        "NEWBIE", Plan.STANDARD, Term.ANNUAL, "USD", Channel.DIRECT_ONLINE, date(2025, 3, 1)
    ).list_price == (Decimal("100.00"))
    assert not [x for x in c.prices("NEWBIE", "USD", on=date(2025, 2, 28))]
    assert [x.list_price for x in c.prices("NEWBIE", "USD", on=date(2025, 3, 1))] == [Decimal("100.00")]


# -- the operators' checks ------------------------------------------------------------------------------


def test_bad_prices_are_refused_with_a_reason():
    c = demo_catalog()
    today = date(2024, 11, 1)
    with pytest.raises(NotFound) as nf:
        schedule_price(c, ("NOPE", Plan.STANDARD, Term.ANNUAL), Decimal(1), Decimal(1), RAISE_FROM, today)
    assert nf.value.reason == "PRODUCT_NOT_FOUND"
    with pytest.raises(InvalidInput) as neg:
        schedule_price(c, ACDLT_ANNUAL, Decimal("-470.00"), Decimal("420.00"), RAISE_FROM, today)
    assert neg.value.reason == "PRICE_NEGATIVE"
    with pytest.raises(InvalidInput) as neg2:
        schedule_price(c, ACDLT_ANNUAL, Decimal("470.00"), Decimal("-0.01"), RAISE_FROM, today)
    assert neg2.value.reason == "PRICE_NEGATIVE"
    with pytest.raises(InvalidInput):
        schedule_price(c, ACDLT_ANNUAL, Decimal("470.00"), Decimal("470.01"), RAISE_FROM, today)
    with pytest.raises(RuleViolation) as past:
        schedule_price(c, ACDLT_ANNUAL, Decimal("500.00"), Decimal("450.00"), date(2024, 10, 31), today)
    assert past.value.reason == "PRICE_EFFECTIVE_DATE_PASSED"
    # today itself is allowed
    assert (
        schedule_price(c, ACDLT_ANNUAL, Decimal("500.00"), Decimal("450.00"), today, today).effective_date
        == today
    )


def test_a_second_price_for_the_same_key_and_day_is_refused_another_day_or_key_is_not():
    c = raised()
    with pytest.raises(AlreadyExists) as e:
        schedule_price(c, ACDLT_ANNUAL, Decimal("510.00"), Decimal("460.00"), RAISE_FROM, date(2024, 11, 2))
    assert e.value.reason == "PRICE_EFFECTIVE_DATE_TAKEN"
    later = schedule_price(
        c, ACDLT_ANNUAL, Decimal("520.00"), Decimal("470.00"), date(2025, 7, 1), date(2024, 11, 2)
    )
    c2 = with_price(c, ACDLT_ANNUAL, later)
    assert [p.effective_date for p in c2.history(ACDLT_ANNUAL)] == [None, RAISE_FROM, date(2025, 7, 1)]
    assert c2.price(*ACDLT_ANNUAL, "USD", Channel.DIRECT_ONLINE, date(2025, 6, 30)).list_price == Decimal(
        "500.00"
    )
    assert c2.price(*ACDLT_ANNUAL, "USD", Channel.DIRECT_ONLINE, date(2025, 7, 1)).list_price == Decimal(
        "520.00"
    )
    other = ("ACDLT", Plan.PREMIUM, Term.ANNUAL)
    assert schedule_price(c, other, Decimal("600.00"), Decimal("550.00"), RAISE_FROM, date(2024, 11, 2))


def test_a_monthly_price_renews_at_its_list_price():
    c = demo_catalog()
    usd = schedule_price(
        c, ("ACDLT", Plan.STANDARD, Term.MONTHLY), Decimal("65.00"), Decimal("10.00"), RAISE_FROM, RAISE_FROM
    )
    assert (usd.list_price, usd.renewal_price) == (Decimal("65.00"), Decimal("65.00"))


def test_products_are_added_and_changed_with_their_references_checked():
    c = demo_catalog()
    lt = Product("INVLT", "Inventor LT", ProductKind.LT, release_year=2022, full_product="ACD")
    assert add_product(c, lt) == lt
    with pytest.raises(AlreadyExists) as dup:
        add_product(c, replace(lt, code="ACDLT"))
    assert dup.value.reason == "PRODUCT_ALREADY_EXISTS"
    with pytest.raises(NotFound) as missing:
        add_product(c, replace(lt, full_product="NOPE"))
    assert missing.value.reason == "PRODUCT_NOT_FOUND"
    with pytest.raises(InvalidInput):
        add_product(c, replace(lt, full_product="AEC_COLLECTION"))  # not a FULL product
    with pytest.raises(InvalidInput):
        add_product(c, replace(lt, code="inv lt"))
    with pytest.raises(InvalidInput):
        add_product(c, replace(lt, name=" "))
    with pytest.raises(InvalidInput):
        add_product(c, replace(lt, release_year=0))
    with pytest.raises(InvalidInput):
        add_product(c, Product("BUNDLE", "Bundle", ProductKind.FULL, contains=("ACD",)))
    suite = Product("S2", "Suite", ProductKind.SUITE, contains=("ACD",), upgrade_paths=("ACD",))
    with pytest.raises(InvalidInput):
        add_product(c, suite)  # ACD is not a collection

    docs = c.product("DOCS")
    renamed = change_product(c, replace(docs, name="Autodesk Docs", supported=False))
    assert renamed.name == "Autodesk Docs" and renamed.shutoff_policy is ShutoffPolicy.IMMEDIATE
    with pytest.raises(RuleViolation) as kind:
        change_product(c, replace(docs, kind=ProductKind.COLLECTION))
    assert kind.value.reason == "PRODUCT_KIND_FIXED"
    with pytest.raises(NotFound):
        change_product(c, replace(docs, code="NOPE"))
    with pytest.raises(RuleViolation) as same:
        change_product(c, docs)
    assert same.value.reason == "NOTHING_TO_CHANGE"


# -- the demo catalog file ------------------------------------------------------------------------------

# Seed 004: "the shutoff process does not apply to the following offerings; they lose product access when
# they expire" (the Norwegian help page's list, names in English).
SEED_004_IMMEDIATE = (
    "Docs",
    "Autodesk Build 550",
    "Autodesk Build 5000",
    "Autodesk Build Unlimited",
    "Autodesk BIM Collaborate",
    "Autodesk BIM Collaborate Pro",
    "BuildingConnected",
    "BuildingConnected Pro",
    "BuildingConnected Bid Board Pro",
    "BuildingConnected TradeTapp",
    "Autodesk Takeoff",
    "Construction Ops Bundle",
    "Construction Ops Bundle with PlanGrid Crane",
    "Construction Ops Bundle with BIM 360",
    "Precon Bundle",
    "VDC Bundle",
    "ACC Connect",
    "PlanGrid Nailgun",
    "PlanGrid Dozer",
    "PlanGrid Crane",
    "Build with PlanGrid Nailgun",
    "Build with PlanGrid Dozer",
    "Build with PlanGrid Crane",
    "Build 550 with BIM 360",
    "Build 5000 with BIM 360",
    "Build Unlimited with BIM 360",
    "Autodesk Workshop XR",
)


def test_the_demo_catalog_file_lists_every_immediate_offering_of_seed_004_priced():
    c = demo_catalog()
    by_name = {p.name: p for p in c.products.values()}
    assert len(SEED_004_IMMEDIATE) == 27
    for name in SEED_004_IMMEDIATE:
        assert name in by_name, name
        p = by_name[name]
        assert p.shutoff_policy is ShutoffPolicy.IMMEDIATE, name
        for plan in Plan:
            for term in Term:
                assert c.price(p.code, plan, term, "SEK", Channel.DIRECT_ONLINE).list_price > 0
    immediate = {p.name for p in c.products.values() if p.shutoff_policy is ShutoffPolicy.IMMEDIATE}
    assert immediate == set(SEED_004_IMMEDIATE)
    # the standard products of rules §1 stay as they were
    assert c.product("AEC_COLLECTION").contains == ("ACD", "DOCS")
    assert c.upgrades_to("ACDLT") == ["ACD"] and c.upgrades_to("DC_SUITE") == ["AEC_COLLECTION"]


def test_a_catalog_document_is_checked_like_an_operators_change():
    usd = {
        "monthly": "10.00",
        "annual_list": "100.00",
        "annual_renewal": "90.00",
        "three_year_list": "300.00",
        "three_year_renewal": "270.00",
    }
    good = {
        "premium_factor": "1.5",
        "rates": {"EUR": "0.9"},
        "products": [
            {
                "code": "LT",
                "name": "Lite",
                "kind": "LT",
                "release_year": 2020,
                "full_product": "FULL",
                "usd": usd,
            },
            {"code": "FULL", "name": "Full", "kind": "FULL", "release_year": 2020, "usd": usd},
        ],
    }
    data = catalog_data(good)
    c = data.catalog()
    assert c.upgrades_to("LT") == ["FULL"]
    assert c.price("LT", Plan.PREMIUM, Term.ANNUAL, "EUR", Channel.RESELLER).list_price == Decimal("135.00")
    dup = {**good, "products": [good["products"][1], good["products"][1]]}
    with pytest.raises(AlreadyExists):
        catalog_data(dup)
    with pytest.raises(NotFound):
        catalog_data({**good, "products": [good["products"][0]]})  # names FULL, which is not listed
    with pytest.raises(InvalidInput):
        catalog_data({**good, "products": [{**good["products"][1], "usd": {**usd, "monthly": "-1.00"}}]})
    with pytest.raises(InvalidInput):
        catalog_data(
            {**good, "products": [{**good["products"][1], "usd": {**usd, "annual_renewal": "100.01"}}]}
        )
    with pytest.raises(InvalidInput):
        catalog_data({**good, "products": [{**good["products"][1], "kind": "GADGET"}]})


# -- every order records the price-book version ---------------------------------------------------------


def test_an_order_records_the_price_book_version_it_was_priced_from():
    db, billing = FakeDatabase(datetime(2025, 1, 1, 9, 0, tzinfo=UTC)), FakeBilling()
    db.store.catalog = raised(replace(demo_catalog(), version=6))
    with db.unit_of_work() as uow:
        r = handlers.create_subscription(uow, peers(billing), order(start_date=None), "r-v7")
    (o,) = db.orders
    assert o.price_book_version == 7
    assert r.subscription.unit_price == Decimal("500.00")  # priced from version 7's raise
