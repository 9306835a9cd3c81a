"""Rules §3 and §6: orders and changes on a subscription, with the rules' numbers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import Catalog, Product, demo_catalog
from services.subscription.domain.model import Channel, PaymentMethodType, Plan, ProductKind, Stage, Term
from shared.errors import InvalidInput, RuleViolation

from .factory import OSLO, at, bought, order


@pytest.fixture
def catalog() -> Catalog:
    return demo_catalog()


# -- create -------------------------------------------------------------------------------------------


def test_new_annual_purchase_pays_the_list_price(catalog):
    out = ops.create(order(seats=2), catalog, "sub-1", at(date(2024, 6, 10)))
    sub = out.subscription
    assert sub.stage is Stage.ACTIVE and sub.auto_renew
    assert sub.unit_price == Decimal("470.00")
    assert [(line.quantity, line.amount) for line in out.lines] == [(2, Decimal("940.00"))]
    assert (out.lines[0].period_start_date, out.lines[0].period_end_date) == (
        date(2024, 6, 10),
        date(2025, 6, 10),
    )
    assert out.transitions[0].to_stage is Stage.ACTIVE


def test_new_three_year_purchase_pays_1310(catalog):
    out = ops.create(order(term=Term.THREE_YEAR), catalog, "sub-1", at(date(2024, 6, 10)))
    assert out.lines[0].amount == Decimal("1310.00")
    assert out.subscription.renewal_date == date(2027, 6, 10)


def test_three_year_terms_from_2024_09_16_are_billed_in_three_installments(catalog):
    before = bought(catalog, term=Term.THREE_YEAR, start_date=date(2024, 9, 15))
    after = bought(catalog, term=Term.THREE_YEAR, start_date=date(2024, 9, 16))
    annual = bought(catalog, term=Term.ANNUAL, start_date=date(2024, 9, 16))
    assert (before.installments, after.installments, annual.installments) == (1, 3, 1)


def test_create_validates_input_and_changes_nothing(catalog):
    now = at(date(2024, 6, 10))
    with pytest.raises(InvalidInput) as e:
        ops.create(order(seats=0), catalog, "s", now)
    assert e.value.field_violations[0][0] == "seats"
    with pytest.raises(InvalidInput):
        ops.create(order(time_zone="Nowhere/Land"), catalog, "s", now)
    with pytest.raises(InvalidInput):
        ops.create(order(start_date=date(2024, 6, 11)), catalog, "s", now)
    with pytest.raises(InvalidInput):
        ops.create(order(currency="XXX"), catalog, "s", now)
    with pytest.raises(InvalidInput):
        ops.create(order(channel=Channel.RESELLER, partner_name=""), catalog, "s", now)


def test_start_date_defaults_to_today_in_the_zone(catalog):
    # 23:30 UTC on June 9 is already June 10 in Oslo.
    from datetime import UTC, datetime

    now = datetime(2024, 6, 9, 23, 30, tzinfo=UTC)
    sub = ops.create(order(start_date=None), catalog, "s", now).subscription
    assert sub.start_date == date(2024, 6, 10)


# -- add seats ----------------------------------------------------------------------------------------


def test_three_seats_added_on_1_december_are_co_termed_and_cost_737_84(catalog):
    sub = bought(catalog, seats=2)
    out = ops.add_seats(sub, 3, catalog, at(date(2024, 12, 1)))
    (line,) = out.lines
    assert line.amount == Decimal("737.84")
    assert (line.prorated_days, line.term_days) == (191, 365)
    assert line.period_end_date == date(2025, 6, 10)
    assert out.subscription.seats == 5 and out.subscription.renewal_seats == 5
    assert out.subscription.renewal_date == date(2025, 6, 10)
    assert sub.seats == 2  # the input is not modified


def test_reseller_subscription_cannot_add_seats_and_the_reason_names_the_partner(catalog):
    sub = bought(catalog, channel=Channel.RESELLER, partner_name="Acme CAD AS")
    with pytest.raises(RuleViolation) as e:
        ops.add_seats(sub, 1, catalog, at(date(2024, 12, 1)))
    assert e.value.reason == "SELF_SERVICE_PARTNER"
    assert "Acme CAD AS" in e.value.message and "contact" in e.value.message
    assert e.value.metadata["partner_name"] == "Acme CAD AS"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"channel": Channel.PARTNER_QUOTE, "partner_name": "Nordic CAD"}, "SELF_SERVICE_PARTNER"),
        ({"channel": Channel.LEGACY}, "SELF_SERVICE_LEGACY"),
        ({"country_code": "JP", "time_zone": "Asia/Tokyo"}, "SELF_SERVICE_REGION"),
        ({"start_date": date(2015, 12, 31)}, "SELF_SERVICE_PURCHASE_YEAR"),
    ],
)
def test_self_service_is_refused_outside_its_scope_with_whom_to_contact(catalog, kw, reason):
    sub = bought(catalog, **kw)
    with pytest.raises(RuleViolation) as e:
        ops.change_term(sub, Term.THREE_YEAR, catalog, at(sub.start_date + timedelta(days=10), sub.time_zone))
    assert e.value.reason == reason
    assert "contact" in e.value.message


@pytest.mark.parametrize("country", ["US", "CA", "AU", "NO", "DE", "GB", "SE", "FR"])
def test_self_service_is_open_in_the_us_canada_europe_and_australia(catalog, country):
    sub = bought(catalog, country_code=country)
    assert ops.add_seats(sub, 1, catalog, at(date(2024, 7, 1))).subscription.seats == 2


def test_self_service_is_refused_for_a_retired_product():
    c = demo_catalog()
    sub = bought(c)
    c.products["ACDLT"] = replace(c.products["ACDLT"], supported=False)
    with pytest.raises(RuleViolation) as e:
        ops.add_seats(sub, 1, c, at(date(2024, 7, 1)))
    assert e.value.reason == "SELF_SERVICE_PRODUCT_RETIRED"
    with pytest.raises(RuleViolation) as e:
        ops.create(order(), c, "s2", at(date(2024, 7, 1)))
    assert e.value.reason == "PRODUCT_NOT_SUPPORTED"


def test_seats_cannot_be_added_after_the_renewal_instant_or_while_expired(catalog):
    sub = bought(catalog)
    with pytest.raises(RuleViolation) as e:
        ops.add_seats(sub, 1, catalog, sub.renewal_time)
    assert e.value.reason == "RENEWAL_PASSED"
    with pytest.raises(RuleViolation) as e:
        ops.add_seats(replace(sub, stage=Stage.EXPIRED), 1, catalog, at(date(2024, 7, 1)))
    assert e.value.reason == "STAGE_NOT_ALLOWED"


# -- renewal seats, term, auto-renew ------------------------------------------------------------------


def test_renewal_seats_never_below_the_users_assigned(catalog):
    sub = bought(catalog, seats=5)
    now = at(date(2024, 9, 1))
    with pytest.raises(RuleViolation) as e:
        ops.set_renewal_seats(sub, 2, 3, catalog, now)
    assert e.value.reason == "SEATS_BELOW_ASSIGNED"
    out = ops.set_renewal_seats(sub, 3, 3, catalog, now)
    assert (out.subscription.seats, out.subscription.renewal_seats) == (5, 3)
    renewed = ops.renew_term(out.subscription, catalog, sub.renewal_time).subscription
    assert renewed.seats == 3


def test_change_term_takes_effect_at_renewal(catalog):
    sub = bought(catalog)
    changed = ops.change_term(sub, Term.THREE_YEAR, catalog, at(date(2024, 9, 1))).subscription
    assert changed.term is Term.ANNUAL and changed.pending_term is Term.THREE_YEAR
    with pytest.raises(RuleViolation) as e:
        ops.change_term(changed, Term.THREE_YEAR, catalog, at(date(2024, 9, 1)))
    assert e.value.reason == "NOTHING_TO_CHANGE"
    back = ops.change_term(changed, Term.ANNUAL, catalog, at(date(2024, 9, 2))).subscription
    assert back.pending_term is None


def test_switching_annual_to_three_year_before_expiry_renews_at_1179(catalog):
    sub = bought(catalog)
    sub = ops.change_term(sub, Term.THREE_YEAR, catalog, at(date(2025, 4, 1))).subscription
    out = ops.renew(sub, catalog, at(date(2025, 5, 1)))
    assert out.lines[0].unit_price == Decimal("1179.00")
    assert out.lines[0].amount == Decimal("1179.00")
    new = out.subscription
    assert new.term is Term.THREE_YEAR and new.pending_term is None
    assert (new.current_period_start_date, new.renewal_date) == (date(2025, 6, 10), date(2028, 6, 10))
    assert new.installments == 3


def test_annual_on_time_renewal_pays_the_renewal_price_and_monthly_pays_list(catalog):
    annual = ops.renew_term(bought(catalog), catalog, at(date(2025, 6, 10))).lines[0]
    assert annual.unit_price == Decimal("420.00")
    monthly_sub = bought(catalog, term=Term.MONTHLY, start_date=date(2024, 6, 10))
    monthly = ops.renew(monthly_sub, catalog, at(date(2024, 7, 1))).lines[0]
    assert monthly.unit_price == Decimal("60.00")


def test_cancelled_subscription_cannot_be_renewed_buy_new_at_list(catalog):
    sub = replace(bought(catalog), stage=Stage.CANCELLED)
    with pytest.raises(RuleViolation) as e:
        ops.renew(sub, catalog, at(date(2025, 8, 1)))
    assert e.value.reason == "SUBSCRIPTION_CANCELLED"
    assert "list price" in e.value.message


def test_manual_renewal_opens_90_days_before_the_renewal_instant(catalog):
    sub = bought(catalog)  # renews 2025-06-10; the window opens 2025-03-12
    with pytest.raises(RuleViolation) as e:
        ops.renew(sub, catalog, at(date(2025, 3, 11)))
    assert e.value.reason == "RENEWAL_WINDOW_NOT_OPEN"
    out = ops.renew(sub, catalog, at(date(2025, 3, 12)))
    assert out.subscription.renewal_date == date(2026, 6, 10)
    assert out.subscription.current_period_start_date == date(2025, 6, 10)


def test_auto_renew_off_any_time_before_the_renewal_instant(catalog):
    sub = bought(catalog)
    off = ops.set_auto_renew(sub, False, catalog, sub.expiry_time).subscription
    assert not off.auto_renew and off.stage is Stage.ACTIVE
    with pytest.raises(RuleViolation) as e:
        ops.set_auto_renew(off, True, catalog, off.renewal_time)
    assert e.value.reason == "RENEWAL_PASSED"


def test_turning_auto_renew_on_while_expired_reinstates_from_the_original_renewal_instant(catalog):
    sub = replace(bought(catalog, auto_renew=False), stage=Stage.EXPIRED)
    out = ops.set_auto_renew(sub, True, catalog, at(date(2025, 6, 20)))
    new = out.subscription
    assert new.stage is Stage.ACTIVE and new.auto_renew
    assert (new.current_period_start_date, new.renewal_date) == (date(2025, 6, 10), date(2026, 6, 10))
    assert out.lines[0].unit_price == Decimal("420.00")
    assert [(t.from_stage, t.to_stage, t.reason) for t in out.transitions] == [
        (Stage.EXPIRED, Stage.ACTIVE, "reinstated")
    ]


def test_suspended_subscription_can_be_renewed(catalog):
    sub = replace(bought(catalog, auto_renew=False), stage=Stage.SUSPENDED)
    out = ops.renew(sub, catalog, at(date(2025, 7, 5)))
    assert out.subscription.stage is Stage.ACTIVE
    assert out.subscription.renewal_date == date(2026, 6, 10)


# -- alignment ----------------------------------------------------------------------------------------


def test_align_extends_to_the_latest_renewal_date_at_a_prorated_price(catalog):
    a = bought(catalog, sid="a", seats=2, start_date=date(2024, 6, 10))
    b = bought(catalog, sid="b", seats=1, start_date=date(2024, 9, 1))
    out = ops.align([a, b], "acct-1", catalog, at(date(2024, 10, 1)))
    assert out.target_date == date(2025, 9, 1)
    new_a, new_b = out.subscriptions
    assert new_a.renewal_date == new_b.renewal_date == date(2025, 9, 1)
    (line,) = out.lines
    # 83 extra days of 2 seats at 470.00 over a 365-day term: 940 x 83 / 365 = 213.7534...
    assert (line.subscription_id, line.prorated_days, line.amount) == ("a", 83, Decimal("213.75"))
    # The aligned subscription now renews on b's anniversary, term after term.
    nxt = ops.renew_term(new_a, catalog, new_a.renewal_time).subscription
    assert nxt.renewal_date == date(2026, 9, 1)


def test_align_refuses_paypal_different_terms_and_payment_methods(catalog):
    now = at(date(2024, 10, 1))
    a = bought(catalog, sid="a")
    b = bought(catalog, sid="b", start_date=date(2024, 9, 1))
    with pytest.raises(RuleViolation) as e:
        ops.align([a, replace(b, payment_method_type=PaymentMethodType.PAYPAL)], "acct-1", catalog, now)
    assert e.value.reason == "ALIGN_PAYPAL"
    with pytest.raises(RuleViolation) as e:
        ops.align([a, replace(b, term=Term.MONTHLY)], "acct-1", catalog, now)
    assert e.value.reason == "ALIGN_TERM_MISMATCH"
    with pytest.raises(RuleViolation) as e:
        ops.align([a, replace(b, payment_method_id="pm-other")], "acct-1", catalog, now)
    assert e.value.reason == "ALIGN_PAYMENT_METHOD_MISMATCH"
    with pytest.raises(RuleViolation) as e:
        ops.align([a, replace(b, account_id="acct-2")], "acct-1", catalog, now)
    assert e.value.reason == "ALIGN_ACCOUNT_MISMATCH"
    with pytest.raises(InvalidInput):
        ops.align([a, a], "acct-1", catalog, now)
    with pytest.raises(RuleViolation) as e:
        ops.align([a, replace(b, renewal_date=a.renewal_date)], "acct-1", catalog, now)
    assert e.value.reason == "NOTHING_TO_CHANGE"


# -- upgrades -----------------------------------------------------------------------------------------


def test_upgrade_lt_to_full_credits_the_unused_value(catalog):
    sub = bought(catalog, seats=2)  # ACDLT annual at 470.00, 2024-06-10 -> 2025-06-10
    now = at(date(2024, 12, 1))
    out = ops.upgrade(sub, catalog, now, "sub-2", target_product_code="ACD")
    # 2 x 1975.00 for the new annual term; credit 470 x 2 x 191 / 365 = 491.89
    assert [line.amount for line in out.lines] == [Decimal("3950.00"), Decimal("-491.89")]
    assert out.credit == Decimal("491.89")
    assert out.subtotal() == Decimal("3458.11")
    assert out.new.product_code == "ACD" and out.new.upgraded_from == "sub-1"
    assert (out.new.start_date, out.new.renewal_date) == (date(2024, 12, 1), date(2025, 12, 1))
    assert out.old.upgraded_to == "sub-2" and not out.old.auto_renew
    # The old product stays usable for 30 days from the order date, to local midnight.
    local = out.old_access_until.astimezone(ZoneInfo(OSLO))
    assert (local.date(), local.hour) == (date(2024, 12, 31), 0)
    assert out.old.access_until == out.old_access_until
    assert not out.serial_number_update_required and not out.reinstall_required
    with pytest.raises(RuleViolation) as e:
        ops.add_seats(out.old, 1, catalog, now)
    assert e.value.reason == "SUBSCRIPTION_UPGRADED"


def test_upgrade_from_a_2019_standalone_product_needs_a_serial_number_update(catalog):
    sub = bought(catalog, product_code="ACD")
    out = ops.upgrade(sub, catalog, at(date(2024, 7, 1)), "sub-2", target_product_code="AEC_COLLECTION")
    assert out.serial_number_update_required


def test_upgrade_off_an_expired_suite_needs_a_reinstall_and_earns_no_credit(catalog):
    sub = replace(bought(catalog, product_code="DC_SUITE"), stage=Stage.EXPIRED)
    out = ops.upgrade(sub, catalog, at(date(2025, 6, 15)), "sub-2", target_product_code="AEC_COLLECTION")
    assert out.reinstall_required and out.credit == 0
    assert out.new.product_code == "AEC_COLLECTION"


def test_a_plan_change_of_an_expired_collection_needs_no_reinstall(catalog):
    # A collection is not a suite, and a plan change does not move off the product.
    sub = replace(bought(catalog, product_code="AEC_COLLECTION"), stage=Stage.EXPIRED)
    out = ops.upgrade(sub, catalog, at(date(2025, 6, 15)), "sub-2", target_plan=Plan.PREMIUM)
    assert not out.reinstall_required and not out.serial_number_update_required and out.credit == 0
    assert out.new.plan is Plan.PREMIUM and out.new.product_code == "AEC_COLLECTION"


def test_upgrade_paths_are_enforced(catalog):
    sub = bought(catalog)
    now = at(date(2024, 7, 1))
    with pytest.raises(RuleViolation) as e:
        ops.upgrade(sub, catalog, now, "x", target_product_code="AEC_COLLECTION")
    assert e.value.reason == "UPGRADE_NOT_ALLOWED"
    with pytest.raises(RuleViolation):
        ops.upgrade(replace(sub, plan=Plan.PREMIUM), catalog, now, "x", target_plan=Plan.STANDARD)
    with pytest.raises(InvalidInput):
        ops.upgrade(sub, catalog, now, "x")
    premium = ops.upgrade(sub, catalog, now, "x", target_plan=Plan.PREMIUM)
    assert premium.new.unit_price == Decimal("587.50")  # 470.00 x 1.25


def test_credit_never_exceeds_the_new_order():
    c = Catalog(
        products={
            "LT": Product("LT", "Light", ProductKind.LT, full_product="FULL"),
            "FULL": Product("FULL", "Full", ProductKind.FULL),
        },
        usd_prices={},
    )
    from services.subscription.domain.catalog import UsdPrice

    c.usd_prices[("LT", Plan.STANDARD, Term.ANNUAL)] = UsdPrice(Decimal("500"), Decimal("450"))
    c.usd_prices[("FULL", Plan.STANDARD, Term.ANNUAL)] = UsdPrice(Decimal("100"), Decimal("90"))
    sub = bought(c, product_code="LT", currency="USD")
    out = ops.upgrade(sub, c, at(date(2024, 6, 11)), "n", target_product_code="FULL")
    assert out.credit == Decimal("100.00") and out.subtotal() == 0


# -- product switch -----------------------------------------------------------------------------------


def test_product_switch_needs_a_purchase_on_or_after_2024_09_16(catalog):
    sub = bought(catalog, start_date=date(2024, 9, 15))
    with pytest.raises(RuleViolation) as e:
        ops.schedule_product_switch(sub, "DOCS", catalog, at(date(2025, 8, 1)))
    assert e.value.reason == "PRODUCT_SWITCH_NOT_ELIGIBLE"


def test_product_switch_only_inside_the_90_days_before_renewal_and_effective_at_renewal(catalog):
    sub = bought(catalog, start_date=date(2024, 9, 16))  # renews 2025-09-16; window opens 2025-06-18
    with pytest.raises(RuleViolation) as e:
        ops.schedule_product_switch(sub, "DOCS", catalog, at(date(2025, 6, 17)))
    assert e.value.reason == "PRODUCT_SWITCH_OUTSIDE_WINDOW"
    out = ops.schedule_product_switch(sub, "DOCS", catalog, at(date(2025, 6, 18)))
    assert out.subscription.product_code == "ACDLT" and out.subscription.pending_product_code == "DOCS"
    renewed = ops.renew_term(out.subscription, catalog, out.subscription.renewal_time)
    assert renewed.subscription.product_code == "DOCS"
    assert renewed.lines[0].unit_price == Decimal("225.00")
    assert renewed.subscription.pending_product_code == ""


# -- trials -------------------------------------------------------------------------------------------


def test_trial_lasts_30_days_cannot_be_renewed_and_converts_without_a_new_subscription(catalog):
    out = ops.create(order(trial=True, payment_method_id=""), catalog, "t-1", at(date(2024, 6, 10)))
    trial = out.subscription
    assert out.lines == [] and trial.stage is Stage.TRIAL and not trial.auto_renew
    assert trial.trial_end_date == date(2024, 7, 9) and trial.renewal_date == date(2024, 7, 10)
    with pytest.raises(RuleViolation) as e:
        ops.renew(trial, catalog, at(date(2024, 6, 20)))
    assert e.value.reason == "TRIAL_NOT_RENEWABLE"
    with pytest.raises(RuleViolation) as e:
        ops.add_seats(trial, 1, catalog, at(date(2024, 6, 20)))
    assert e.value.reason == "TRIAL_NOT_RENEWABLE"
    with pytest.raises(RuleViolation):
        ops.set_auto_renew(trial, True, catalog, at(date(2024, 6, 20)))
    conv = ops.convert_trial(
        trial, Term.ANNUAL, 3, "pm-card", PaymentMethodType.CARD, catalog, at(date(2024, 6, 20))
    )
    paid = conv.subscription
    assert paid.subscription_id == "t-1" and paid.stage is Stage.ACTIVE
    assert conv.lines[0].amount == Decimal("1410.00")
    assert (paid.current_period_start_date, paid.renewal_date) == (date(2024, 6, 20), date(2025, 6, 20))
    assert conv.transitions[0].reason == "trial_converted"
    with pytest.raises(RuleViolation) as e:
        ops.convert_trial(paid, Term.ANNUAL, 1, "pm-card", None, catalog, at(date(2024, 6, 21)))
    assert e.value.reason == "NOT_A_TRIAL"


# -- refunds ------------------------------------------------------------------------------------------


def test_monthly_refund_granted_on_day_15_and_refused_on_day_16(catalog):
    sub = bought(catalog, term=Term.MONTHLY, start_date=date(2024, 6, 10))
    day15 = at(date(2024, 6, 24), hour=23)
    out = ops.refund(sub, catalog, day15)
    assert out.subscription.stage is Stage.CANCELLED and out.subscription.access_until == day15
    assert not out.subscription.auto_renew
    assert [(t.from_stage, t.to_stage, t.reason) for t in out.transitions] == [
        (Stage.ACTIVE, Stage.CANCELLED, "refunded")
    ]
    with pytest.raises(RuleViolation) as e:
        ops.refund(sub, catalog, at(date(2024, 6, 25), hour=0))
    assert e.value.reason == "REFUND_WINDOW_CLOSED"
    assert e.value.metadata["day"] == "16"


def test_annual_refund_granted_on_day_30_and_refused_on_day_31(catalog):
    sub = bought(catalog, term=Term.ANNUAL)
    assert ops.refund(sub, catalog, at(date(2024, 7, 9))).subscription.stage is Stage.CANCELLED
    with pytest.raises(RuleViolation) as e:
        ops.refund(sub, catalog, at(date(2024, 7, 10)))
    assert e.value.reason == "REFUND_WINDOW_CLOSED"


def test_refund_window_counts_from_the_renewal(catalog):
    sub = bought(catalog, term=Term.THREE_YEAR)
    renewed = ops.renew_term(sub, catalog, sub.renewal_time).subscription
    assert renewed.last_order_date == date(2027, 6, 10)
    assert ops.refund(renewed, catalog, at(date(2027, 7, 9))).subscription.stage is Stage.CANCELLED


def test_refund_only_for_direct_purchases(catalog):
    sub = bought(catalog, channel=Channel.RESELLER, partner_name="Acme CAD AS")
    with pytest.raises(RuleViolation) as e:
        ops.refund(sub, catalog, at(date(2024, 6, 12)))
    assert e.value.reason == "REFUND_NOT_DIRECT" and "Acme CAD AS" in e.value.message


# -- payment method -----------------------------------------------------------------------------------


def test_pay_by_invoice_needs_another_invoiced_subscription_or_a_quote(catalog):
    sub = bought(catalog)
    now = at(date(2024, 7, 1))
    with pytest.raises(RuleViolation) as e:
        ops.change_payment_method(sub, "pm-inv", PaymentMethodType.INVOICE, False, catalog, now)
    assert e.value.reason == "PAY_BY_INVOICE_NOT_ALLOWED"
    out = ops.change_payment_method(sub, "pm-inv", PaymentMethodType.INVOICE, True, catalog, now)
    assert out.subscription.payment_method_type is PaymentMethodType.INVOICE


# -- self-service options -----------------------------------------------------------------------------


def test_options_of_a_direct_annual_subscription(catalog):
    sub = bought(catalog)
    other = bought(catalog, sid="sub-2", start_date=date(2024, 9, 1))
    opts = {
        o.action: o for o in ops.self_service_options(sub, catalog, at(date(2024, 6, 20)), others=[other])
    }
    assert set(opts) == set(ops.ACTIONS)
    for action in (
        "ADD_SEATS",
        "SET_RENEWAL_SEATS",
        "CHANGE_TERM",
        "ALIGN_RENEWAL_DATES",
        "TURN_OFF_AUTO_RENEW",
        "UPGRADE",
        "REQUEST_REFUND",
    ):
        assert opts[action].available, action
    assert not opts["TURN_ON_AUTO_RENEW"].available
    assert not opts["RENEW"].available and opts["RENEW"].error_reason == "RENEWAL_WINDOW_NOT_OPEN"
    assert opts["SWITCH_PRODUCT"].error_reason == "PRODUCT_SWITCH_NOT_ELIGIBLE"
    assert opts["CONVERT_TRIAL"].error_reason == "NOT_A_TRIAL"
    assert opts["SWITCH_TO_PAY_BY_INVOICE"].error_reason == "PAY_BY_INVOICE_NOT_ALLOWED"
    later = {o.action: o for o in ops.self_service_options(sub, catalog, at(date(2024, 7, 20)))}
    assert later["REQUEST_REFUND"].error_reason == "REFUND_WINDOW_CLOSED"
    assert later["ALIGN_RENEWAL_DATES"].error_reason == "NOTHING_TO_CHANGE"


def test_options_of_a_reseller_subscription_point_to_the_partner(catalog):
    sub = bought(catalog, channel=Channel.RESELLER, partner_name="Acme CAD AS")
    opts = {o.action: o for o in ops.self_service_options(sub, catalog, at(date(2024, 6, 20)))}
    for action in (
        "ADD_SEATS",
        "CHANGE_TERM",
        "ALIGN_RENEWAL_DATES",
        "TURN_OFF_AUTO_RENEW",
        "RENEW",
        "UPGRADE",
    ):
        assert not opts[action].available
        assert opts[action].error_reason == "SELF_SERVICE_PARTNER"
        assert "Acme CAD AS" in opts[action].reason


def test_upgrade_credit_of_an_installment_term_counts_only_what_was_billed(catalog):
    # 3-year ACDLT bought 2024-10-01 (three installments of 1310 / 3); upgraded on 2025-04-01, when only the
    # first installment was billed: unused value 1310 x 913 / 1095 = 1092.26, minus the two unbilled
    # installments (436.66 each; the first, 436.68, carried the remainder) = 218.94.
    sub = bought(catalog, term=Term.THREE_YEAR, start_date=date(2024, 10, 1))
    assert sub.installments == 3 and sub.term_days == 1095
    today = date(2025, 4, 1)
    assert ops.unused_value(sub, today) == Decimal("218.94")
    # After the second anniversary every installment is billed: the plain prorated value.
    late = date(2026, 12, 1)
    days = (sub.renewal_date - late).days
    assert ops.unused_value(sub, late) == (Decimal("1310.00") * days / 1095).quantize(Decimal("0.01"))
    up = ops.upgrade(sub, catalog, at(today), "n", target_product_code="ACD")
    assert up.credit == Decimal("218.94")
