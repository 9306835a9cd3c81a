"""Rules §1: the demo catalog, the price book and the exchange-rate caps."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.subscription.domain.catalog import (
    ChannelGroup,
    ExchangeRate,
    adjust_rate,
    adjustment_period,
    channel_group,
    demo_catalog,
)
from services.subscription.domain.model import Channel, Plan, ProductKind, ShutoffPolicy, Term
from shared.errors import InvalidInput, NotFound, RuleViolation


def test_demo_catalog_has_the_spec_products():
    c = demo_catalog()
    assert {"ACDLT", "ACD", "AEC_COLLECTION", "DOCS"} <= set(c.products)
    assert c.product("ACDLT").kind is ProductKind.LT
    assert c.product("ACD").kind is ProductKind.FULL
    assert c.product("AEC_COLLECTION").kind is ProductKind.COLLECTION
    assert c.product("DOCS").shutoff_policy is ShutoffPolicy.IMMEDIATE
    assert c.product("ACDLT").shutoff_policy is ShutoffPolicy.STANDARD


def test_acdlt_usd_prices_are_the_seed_figures():
    c = demo_catalog()
    monthly = c.price("ACDLT", Plan.STANDARD, Term.MONTHLY, "USD", Channel.DIRECT_ONLINE)
    annual = c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "USD", Channel.DIRECT_ONLINE)
    three = c.price("ACDLT", Plan.STANDARD, Term.THREE_YEAR, "USD", Channel.DIRECT_ONLINE)
    assert (monthly.list_price, monthly.renewal_price) == (Decimal("60.00"), Decimal("60.00"))
    assert (annual.list_price, annual.renewal_price) == (Decimal("470.00"), Decimal("420.00"))
    assert (three.list_price, three.renewal_price) == (Decimal("1310.00"), Decimal("1179.00"))


def test_every_product_is_priced_in_the_four_currencies_and_monthly_renewal_equals_list():
    c = demo_catalog()
    assert c.currencies() == ["EUR", "NOK", "SEK", "USD"]
    prices = c.prices()
    assert len(prices) == len(c.products) * 2 * 3 * 4  # products x plans x terms x currencies
    for p in prices:
        assert p.list_price > 0 and p.renewal_price > 0
        assert p.renewal_price <= p.list_price
        if p.term is Term.MONTHLY:
            assert p.renewal_price == p.list_price
        assert p.list_price == p.list_price.quantize(Decimal("0.01"))


def test_local_prices_follow_the_rate_rounded_half_up():
    c = demo_catalog()
    eur = c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "EUR", Channel.DIRECT_ONLINE)
    assert eur.list_price == Decimal("432.40")  # 470.00 x 0.92
    assert eur.renewal_price == Decimal("386.40")  # 420.00 x 0.92


def test_upgrade_paths():
    c = demo_catalog()
    assert c.upgrades_to("ACDLT") == ["ACD"]
    assert c.upgrades_to("ACD") == ["AEC_COLLECTION"]
    assert c.upgrades_to("AEC_COLLECTION") == []


def test_unknown_product_and_price_are_not_found():
    c = demo_catalog()
    with pytest.raises(NotFound) as e:
        c.product("NOPE")
    assert e.value.reason == "PRODUCT_NOT_FOUND"
    with pytest.raises(NotFound) as e:
        c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "DKK", Channel.DIRECT_ONLINE)
    assert e.value.reason == "PRICE_NOT_FOUND"


def test_channel_groups():
    assert channel_group(Channel.DIRECT_ONLINE) == ChannelGroup.DIRECT
    assert channel_group(Channel.LEGACY) == ChannelGroup.DIRECT
    assert channel_group(Channel.PARTNER_QUOTE) == ChannelGroup.PARTNER
    assert channel_group(Channel.RESELLER) == ChannelGroup.PARTNER


def test_periods():
    assert adjustment_period(ChannelGroup.DIRECT, date(2024, 6, 30)) == "2024-06"
    assert adjustment_period(ChannelGroup.PARTNER, date(2024, 6, 30)) == "2024-Q2"
    assert adjustment_period(ChannelGroup.PARTNER, date(2024, 7, 1)) == "2024-Q3"


def test_direct_rate_moves_at_most_one_percent_per_month():
    eur = ExchangeRate("EUR", ChannelGroup.DIRECT, Decimal("0.92"))
    up = adjust_rate(eur, "1.00", date(2024, 6, 5))
    assert up.capped and up.applied.rate == Decimal("0.929200")
    assert up.applied.period == "2024-06"
    with pytest.raises(RuleViolation) as e:
        adjust_rate(up.applied, "0.93", date(2024, 6, 28))
    assert e.value.reason == "EXCHANGE_RATE_ALREADY_ADJUSTED"
    nxt = adjust_rate(up.applied, "0.93", date(2024, 7, 1))
    assert not nxt.capped and nxt.applied.rate == Decimal("0.930000")
    down = adjust_rate(eur, "0.80", date(2024, 6, 5))
    assert down.capped and down.applied.rate == Decimal("0.910800")


def test_partner_rate_moves_at_most_three_percent_per_quarter():
    nok = ExchangeRate("NOK", ChannelGroup.PARTNER, Decimal("10.80"))
    up = adjust_rate(nok, "12.00", date(2024, 4, 2))
    assert up.capped and up.applied.rate == Decimal("11.124000")
    with pytest.raises(RuleViolation):
        adjust_rate(up.applied, "11.00", date(2024, 6, 30))  # same quarter, another month
    small = adjust_rate(up.applied, "11.20", date(2024, 7, 1))
    assert not small.capped and small.applied.rate == Decimal("11.200000")


def test_catalog_prices_use_the_adjusted_rate_for_the_channel_group_only():
    c = demo_catalog()
    adj = adjust_rate(c.rates[("EUR", ChannelGroup.DIRECT)], "1.00", date(2024, 6, 5))
    c.rates[("EUR", ChannelGroup.DIRECT)] = adj.applied
    direct = c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "EUR", Channel.DIRECT_ONLINE)
    partner = c.price("ACDLT", Plan.STANDARD, Term.ANNUAL, "EUR", Channel.RESELLER)
    assert direct.list_price == Decimal("436.72")  # 470.00 x 0.9292 = 436.724
    assert partner.list_price == Decimal("432.40")


def test_bad_rates_are_refused():
    eur = ExchangeRate("EUR", ChannelGroup.DIRECT, Decimal("0.92"))
    for bad in ("-1", "0", "abc"):
        with pytest.raises(InvalidInput):
            adjust_rate(eur, bad, date(2024, 6, 5))
    with pytest.raises(RuleViolation) as e:
        adjust_rate(ExchangeRate("USD", ChannelGroup.DIRECT, Decimal(1)), "1.01", date(2024, 6, 5))
    assert e.value.reason == "EXCHANGE_RATE_REFERENCE_CURRENCY"
