"""The rules of partner quotes (rules §9), with their numbers, on the pure domain."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.subscription.domain import quotes as q
from services.subscription.domain.catalog import demo_catalog
from services.subscription.domain.model import Channel, Stage, Term
from shared.errors import InvalidInput, NotFound, RuleViolation
from tests.unit.subscription.factory import OSLO, at, bought

ACME = "ACME Reseller AS"
CAT = demo_catalog()


def _draft(line: q.LineSpec, buyer: str = "kari@example.no") -> q.Quote:
    return q.draft("Q-1", ACME, "acct-1", q.Contacts(buyer), "USD", "NO", OSLO, [line], at(date(2024, 10, 1)))


def _partner_sub(start: date, **kw):
    return bought(
        CAT, start_date=start, now=at(start), channel=Channel.PARTNER_QUOTE, partner_name=ACME, seats=2, **kw
    )


def _renewal(sub) -> q.LineSpec:
    return q.LineSpec(q.LineKind.RENEWAL, subscription_id=sub.subscription_id)


def test_an_issued_quote_is_valid_for_30_days_and_then_expired():
    d = _draft(q.LineSpec(q.LineKind.NEW_SUBSCRIPTION, product_code="ACDLT", term=Term.THREE_YEAR, seats=1))
    issued = q.issue(d, [], Decimal("1310.00"), Decimal(0), Decimal("1310.00"), date(2024, 10, 1))
    assert issued.valid_until == date(2024, 10, 31)
    assert issued.status_on(date(2024, 10, 31)) is q.QuoteStatus.ISSUED
    assert issued.status_on(date(2024, 11, 1)) is q.QuoteStatus.EXPIRED
    q.check_accept(issued, 1, "KARI@example.no", date(2024, 10, 31))
    with pytest.raises(RuleViolation) as e:
        q.check_accept(issued, 1, "kari@example.no", date(2024, 11, 1))
    assert e.value.reason == "QUOTE_EXPIRED" and "2024-10-31" in str(e.value)


def test_changing_the_contacts_reissues_and_the_old_version_cannot_be_accepted():
    d = _draft(
        q.LineSpec(q.LineKind.NEW_SUBSCRIPTION, product_code="ACDLT", term=Term.ANNUAL, seats=1), "k@typo"
    )
    v1 = q.issue(d, [], Decimal(1), Decimal(0), Decimal(1), date(2024, 10, 1))
    old, v2 = q.revise(v1, q.Contacts("kari@example.no"), None)
    assert (old.version, old.status, v2.version, v2.status) == (
        1,
        q.QuoteStatus.SUPERSEDED,
        2,
        q.QuoteStatus.DRAFT,
    )
    v2 = q.issue(v2, [], Decimal(1), Decimal(0), Decimal(1), date(2024, 10, 2))
    with pytest.raises(RuleViolation) as e:
        q.check_accept(v2, 1, "kari@example.no", date(2024, 10, 2))
    assert e.value.reason == "QUOTE_SUPERSEDED"
    with pytest.raises(RuleViolation) as e:
        q.check_accept(v2, 2, "k@typo", date(2024, 10, 2))
    assert e.value.reason == "QUOTE_NOT_YOUR_QUOTE"
    with pytest.raises(NotFound):
        q.require_partner(v2, "Other Partner", "change the quote")
    assert not q.visible_to(v2, operator=False, partner="Other Partner", email="ole@other.example")
    assert q.visible_to(v2, operator=False, partner="", email="kari@example.no")


def test_a_new_subscription_quote_prices_the_list_price_on_the_partner_channel():
    d = _draft(q.LineSpec(q.LineKind.NEW_SUBSCRIPTION, product_code="ACDLT", term=Term.THREE_YEAR, seats=2))
    out = q.order_of(d, None, CAT, at(date(2024, 10, 1)), subscription_id="sub-9")
    s = out.subscription
    assert (s.channel, s.partner_name, s.installments) == (Channel.PARTNER_QUOTE, ACME, 3)
    (line,) = out.lines
    assert line.amount == Decimal("2620.00") and line.description.startswith("Quote Q-1 v1: ")


def test_a_renewal_is_quoted_from_90_days_before_the_renewal_date():
    sub = _partner_sub(date(2024, 10, 1))  # renews 2025-10-01
    d = replace(_draft(_renewal(sub)), lines=[_renewal(sub)])
    with pytest.raises(RuleViolation) as e:
        q.order_of(d, sub, CAT, at(date(2025, 7, 2)))  # 91 days before
    assert e.value.reason == "RENEWAL_WINDOW_NOT_OPEN" and "2025-07-03" in str(e.value)
    out = q.order_of(d, sub, CAT, at(date(2025, 7, 4)))  # 89 days before
    s = out.subscription
    assert s.current_period_start_date == date(2025, 10, 1) and s.renewal_date == date(2026, 10, 1)
    assert s.unit_price == Decimal("420.00") and out.lines[0].amount == Decimal("840.00")


def test_a_renewal_with_another_term_and_seats_takes_them_from_the_renewal_instant():
    sub = _partner_sub(date(2024, 10, 1))
    line = q.LineSpec(q.LineKind.RENEWAL, subscription_id=sub.subscription_id, term=Term.THREE_YEAR, seats=3)
    out = q.order_of(replace(_draft(line)), sub, CAT, at(date(2025, 9, 1)))
    s = out.subscription
    assert (s.term, s.seats, s.renewal_date) == (Term.THREE_YEAR, 3, date(2028, 10, 1))
    assert out.lines[0].amount == Decimal("3537.00")  # 3 x the 3-year renewal price 1179.00


def test_a_renewal_quoted_while_expired_reinstates_at_the_old_anniversary():
    sub = replace(_partner_sub(date(2024, 10, 1)), stage=Stage.EXPIRED, auto_renew=False)
    out = q.order_of(_draft(_renewal(sub)), sub, CAT, at(date(2025, 10, 11)))
    s = out.subscription
    assert s.stage is Stage.ACTIVE and s.auto_renew
    assert (s.current_period_start_date, s.renewal_date) == (date(2025, 10, 1), date(2026, 10, 1))
    assert [(t.from_stage, t.to_stage) for t in out.transitions] == [(Stage.EXPIRED, Stage.ACTIVE)]


def test_a_product_switch_needs_a_term_from_2024_09_16():
    for start, ok in ((date(2024, 10, 1), True), (date(2024, 9, 15), False), (date(2024, 9, 16), True)):
        sub = _partner_sub(start)
        line = q.LineSpec(q.LineKind.PRODUCT_SWITCH, subscription_id=sub.subscription_id, product_code="ACD")
        now = at(
            sub.renewal_date.replace(day=1) if sub.renewal_date.day > 1 else sub.renewal_date.replace(month=8)
        )
        if not ok:
            with pytest.raises(RuleViolation) as e:
                q.order_of(_draft(line), sub, CAT, now)
            assert e.value.reason == "PRODUCT_SWITCH_NOT_ELIGIBLE"
            continue
        s = q.order_of(_draft(line), sub, CAT, now).subscription
        assert s.product_code == "ACD" and s.current_period_start_date == sub.renewal_date


def test_added_seats_are_co_termed_and_prorated():
    sub = _partner_sub(date(2024, 6, 10))  # annual, 470.00 per seat, renews 2025-06-10 (365 days)
    line = q.LineSpec(q.LineKind.ADDED_SEATS, subscription_id=sub.subscription_id, seats=3)
    out = q.order_of(_draft(line), sub, CAT, at(date(2024, 12, 1)))  # 191 days left
    assert out.lines[0].amount == Decimal("737.84") and out.subscription.seats == 5


def test_a_quote_names_its_buyer_and_one_line():
    with pytest.raises(InvalidInput):
        _draft(
            q.LineSpec(q.LineKind.NEW_SUBSCRIPTION, product_code="ACDLT", term=Term.ANNUAL, seats=1), "nobody"
        )
    with pytest.raises(InvalidInput):
        q.draft("Q-2", "", "acct-1", q.Contacts("k@x.no"), "USD", "NO", OSLO, [], at(date(2024, 10, 1)))
