"""Partner quotes past their validity date (rules §9) and extension lines (§3 prices): the expiry instant,
the lifecycle sweep that records it once, and the alignment price of an extension."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.subscription import handlers, sweep
from services.subscription import quotes as uc
from services.subscription.domain import lifecycle
from services.subscription.domain import quotes as q
from services.subscription.domain.catalog import demo_catalog
from services.subscription.domain.model import Channel, Term
from shared.errors import InvalidInput, NotFound, RuleViolation
from tests.unit.subscription.factory import OSLO, at, bought, order
from tests.unit.subscription.fakes import FakeBilling, FakeDatabase, peers

ACME = "ACME Reseller AS"
CAT = demo_catalog()
MIDNIGHT_NOV_1_OSLO = datetime(2024, 10, 31, 23, 0, tzinfo=UTC)


def _issued(number: str = "Q-1", zone: str = OSLO) -> q.Quote:
    line = q.LineSpec(q.LineKind.NEW_SUBSCRIPTION, product_code="ACDLT", term=Term.THREE_YEAR, seats=1)
    d = q.draft(
        number,
        ACME,
        "acct-1",
        q.Contacts("kari@example.no"),
        "USD",
        "NO",
        zone,
        [line],
        at(date(2024, 10, 1)),
        partner_email="Sally@ACME.example",
        partner_language="nb",
    )
    return q.issue(d, [], Decimal("1310.00"), Decimal("327.50"), Decimal("1637.50"), date(2024, 10, 1))


def test_a_quote_expires_at_the_start_of_the_day_after_its_validity_date_in_its_zone():
    quote = _issued()
    assert (quote.partner_email, quote.partner_language) == ("sally@acme.example", "nb")
    assert quote.expiry_time == MIDNIGHT_NOV_1_OSLO
    assert q.expire(quote, MIDNIGHT_NOV_1_OSLO - timedelta(seconds=1)) is None
    assert q.expire(quote, MIDNIGHT_NOV_1_OSLO).status is q.QuoteStatus.EXPIRED
    assert _issued(zone="America/Los_Angeles").expiry_time == datetime(2024, 11, 1, 7, 0, tzinfo=UTC)
    accepted = q.Quote(**{**quote.__dict__, "status": q.QuoteStatus.ACCEPTED})
    assert accepted.expiry_time is None and q.expire(accepted, MIDNIGHT_NOV_1_OSLO) is None


def test_a_partner_language_outside_the_four_is_refused():
    with pytest.raises(InvalidInput) as e:
        q.draft(
            "Q-2",
            ACME,
            "acct-1",
            q.Contacts("kari@example.no"),
            "USD",
            "NO",
            OSLO,
            [q.LineSpec(q.LineKind.NEW_SUBSCRIPTION, product_code="ACDLT", term=Term.ANNUAL, seats=1)],
            at(date(2024, 10, 1)),
            partner_language="de",
        )
    assert e.value.field_violations[0][0] == "partner_language"


def test_the_sweep_expires_each_due_quote_once_and_the_clock_steps_to_the_next_expiry():
    db = FakeDatabase(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    first, later = _issued("Q-1"), _issued("Q-2")
    later = q.Quote(**{**later.__dict__, "valid_until": date(2024, 11, 15)})
    db.store.quotes = {("Q-1", 1): first, ("Q-2", 1): later}
    with db.reading() as uow:
        assert sweep.next_due(uow, db.clock.now()) == MIDNIGHT_NOV_1_OSLO
    db.clock.set(MIDNIGHT_NOV_1_OSLO)
    assert sweep.run(db, FakeBilling(), MIDNIGHT_NOV_1_OSLO).quotes_expired == 1  # type: ignore[arg-type]
    assert sweep.run(db, FakeBilling(), MIDNIGHT_NOV_1_OSLO).quotes_expired == 0  # type: ignore[arg-type]
    assert db.store.quotes[("Q-1", 1)].status is q.QuoteStatus.EXPIRED
    assert db.store.quotes[("Q-2", 1)].status is q.QuoteStatus.ISSUED
    told = [m for t, _, m in db.store.events if t == "subscription.quote_expired"]
    assert len(told) == 1
    assert (told[0].quote_number, told[0].partner_contact.email, told[0].partner_contact.language) == (
        "Q-1",
        "sally@acme.example",
        "nb",
    )
    with db.reading() as uow:  # Q-2's last valid day is 2024-11-15: it expires at Oslo midnight after it
        assert sweep.next_due(uow, db.clock.now()) == datetime(2024, 11, 15, 23, 0, tzinfo=UTC)


def _sub(start: date, **kw):
    return bought(
        CAT, start_date=start, now=at(start), channel=Channel.PARTNER_QUOTE, partner_name=ACME, seats=2, **kw
    )


def test_an_extension_is_priced_as_alignment_the_extra_days_of_all_seats_over_the_term():
    """2 seats at 470.00 from 2024-10-01 (365-day term), extended to 2025-12-01: 61 days = 157.10."""
    a = q.replace(_sub(date(2024, 10, 1)), subscription_id="sub-a")
    b = q.replace(_sub(date(2024, 12, 1)), subscription_id="sub-b")
    line = q.LineSpec(q.LineKind.EXTENSION, subscription_id=a.subscription_id, align_to=b.subscription_id)
    quote = q.draft(
        "Q-3",
        ACME,
        a.account_id,
        q.Contacts("kari@example.no"),
        "USD",
        "NO",
        OSLO,
        [line],
        at(date(2025, 2, 1)),
    )
    out = q.order_of(quote, a, CAT, at(date(2025, 2, 1)), align_to=b)
    (priced,) = out.lines
    assert (priced.unit_price, priced.quantity, priced.prorated_days, priced.term_days) == (
        Decimal("470.00"),
        2,
        61,
        365,
    )
    assert priced.amount == Decimal("157.10") and priced.description.startswith("Quote Q-3 v1: ")
    s = out.subscription
    assert s.renewal_date == date(2025, 12, 1) and s.current_period_start_date == date(2024, 10, 1)
    assert s.aligned_from_date == date(2025, 10, 1)
    back = q.replace(
        quote, lines=[q.LineSpec(q.LineKind.EXTENSION, b.subscription_id, align_to=a.subscription_id)]
    )
    with pytest.raises(RuleViolation) as e:
        q.order_of(back, b, CAT, at(date(2025, 2, 1)), align_to=a)
    assert e.value.reason == "NOTHING_TO_CHANGE"
    with pytest.raises(NotFound):
        q.order_of(quote, a, CAT, at(date(2025, 2, 1)), align_to=None)
    monthly = _sub(date(2024, 12, 15), term=Term.MONTHLY)
    with pytest.raises(RuleViolation) as e:
        q.order_of(
            quote,
            a,
            CAT,
            at(date(2025, 2, 1)),
            align_to=q.replace(monthly, subscription_id=b.subscription_id),
        )
    assert e.value.reason == "ALIGN_TERM_MISMATCH"


def test_an_extension_names_another_subscription_to_align_to():
    for align_to in ("", "sub-a"):
        with pytest.raises(InvalidInput) as e:
            q.valid_lines([q.LineSpec(q.LineKind.EXTENSION, subscription_id="sub-a", align_to=align_to)])
        assert e.value.field_violations[0][0] == "lines.align_to_subscription_id"


def test_a_renewal_quote_accepted_after_a_declined_renewal_voids_the_declined_invoice():
    """Sold by ACME with automatic renewal (1 seat, renews 2025-06-10 at 420.00); the renewal charge is
    declined and the subscription goes Expired with that invoice open. ACME's renewal quote, accepted on
    2025-06-15, renews the same period from 2025-06-10: the declined invoice is void, so the period is
    billed once."""

    db, billing = FakeDatabase(datetime(2024, 6, 10, 8, 0, tzinfo=UTC)), FakeBilling()
    with db.unit_of_work() as uow:
        req = order(channel=Channel.PARTNER_QUOTE, partner_name=ACME)
        sub = handlers.create_subscription(uow, peers(billing), req, "r-buy").subscription
    billing.decline.add(sub.payment_method_id)
    renewal_instant = datetime(2025, 6, 9, 22, 0, tzinfo=UTC)  # 2025-06-10 00:00 in Oslo
    db.clock.set(renewal_instant)
    sweep.run(db, billing, renewal_instant)  # type: ignore[arg-type]
    shut = handlers.get_subscription(db, sub.subscription_id)
    assert shut.shutoff_reason == lifecycle.PAYMENT_FAILED and shut.shutoff_invoice_id
    declined = shut.shutoff_invoice_id

    db.clock.set(datetime(2025, 6, 15, 9, 0, tzinfo=UTC))
    line = q.LineSpec(q.LineKind.RENEWAL, subscription_id=sub.subscription_id)
    with db.unit_of_work() as uow:
        quote = uc.create_quote(uow, ACME, "acct-1", q.Contacts("kari@example.no"), "USD", "NO", OSLO, [line])
        issued = uc.issue_quote(uow, peers(billing), ACME, quote.quote_number)
    assert issued.subtotal == Decimal("420.00")
    billing.decline.clear()  # Kari accepts with a card that pays
    with db.unit_of_work() as uow:
        done = uc.accept_quote(
            uow, peers(billing), uc.Caller(email="kari@example.no"), quote.quote_number, 0, "pm-new", "r-acc"
        )
    s = done.booked.sub
    assert (s.current_period_start_date, s.renewal_date) == (date(2025, 6, 10), date(2026, 6, 10))
    (void,) = billing.called("void_invoice")
    assert void["invoice_id"] == declined and quote.quote_number in void["reason"]
    renewal = db.store.renewals[(sub.subscription_id, date(2025, 6, 10))]
    assert renewal.status == "PAID" and renewal.invoice_id == done.booked.invoice_id != declined
