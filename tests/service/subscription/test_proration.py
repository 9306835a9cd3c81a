"""Rules §3 and §6 through a running subscription service and a real billing service, on SQLite and
PostgreSQL: seats added after an alignment (301.32), the alignment refund, the upgrade flags, and the
prorated lines that explain themselves."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest
from pypdf import PdfReader

from tenure.billing.v1 import billing_pb2
from tenure.common.v1 import common_pb2
from tenure.subscription.v1 import subscription_pb2 as pb

from .conftest import day, error_info, money, rid


def _date(d) -> tuple[int, int, int]:
    return (d.year, d.month, d.day)


def _aligned(stack, seats: int = 1):
    """ACDLT bought 2024-06-10 (annual, 470.00) and one bought 2024-09-01, aligned on 2024-10-01: the first
    renews on 2025-09-01 and paid 470 x seats x 83 / 365 for the extra days."""
    stack.clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    pm = stack.card("acct-1")
    a = stack.buy(pm=pm, seats=seats, start_date=day(2024, 6, 10)).subscription
    b = stack.buy(pm=pm, start_date=day(2024, 9, 1)).subscription
    r = stack.sub.AlignRenewalDates(
        pb.AlignRenewalDatesRequest(
            request_id=rid(), account_id="acct-1", subscription_ids=[a.subscription_id, b.subscription_id]
        )
    )
    return a.subscription_id, r


def _credit_notes(stack) -> list[billing_pb2.CreditNote]:
    return list(
        stack.billing.ListCreditNotes(billing_pb2.ListCreditNotesRequest(account_id="acct-1")).credit_notes
    )


def test_a_seat_added_after_an_alignment_costs_301_32_and_says_why(stack):
    sid, aligned = _aligned(stack)
    (ext,) = aligned.lines
    assert (ext.subscription_id, ext.prorated_days, ext.term_days, money(ext.amount)) == (
        sid,
        83,
        365,
        Decimal("106.88"),
    )
    stack.clock.set(datetime(2025, 1, 10, 9, 0, tzinfo=UTC))
    r = stack.sub.AddSeats(pb.AddSeatsRequest(request_id=rid(), subscription_id=sid, seats=1))
    assert money(r.prorated_amount) == Decimal("301.32")  # 470 x 234 / 365, not 470 x 234 / 448 = 245.49
    (line,) = r.lines
    assert (line.quantity, money(line.unit_price), line.prorated_days, line.term_days) == (
        1,
        Decimal("470.00"),
        234,
        365,
    )
    assert (_date(line.period_start_date), _date(line.period_end_date)) == ((2025, 1, 10), (2025, 9, 1))
    assert (_date(line.term_start_date), _date(line.term_end_date)) == ((2024, 6, 10), (2025, 6, 10))
    assert line.explanation == (
        "470.00 USD x 1 seat(s) x 234 day(s) (2025-01-10 to 2025-09-01) / 365 day(s) "
        "(2024-06-10 to 2025-06-10) = 301.32 USD"
    )
    invoice = stack.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=r.invoice_id)).invoice
    assert money(invoice.subtotal) == Decimal("301.32")
    # the invoice explains its line the same way, in the API and on the PDF
    assert [ln.explanation for ln in invoice.lines] == [line.explanation]
    pdf = stack.billing.GetInvoicePdf(billing_pb2.GetInvoicePdfRequest(invoice_id=r.invoice_id)).pdf
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "234 day(s) (2025-01-10 to 2025-09-01) / 365 day(s)" in text and "= 301.32 USD" in text
    # The quote says the same.
    q = stack.sub.QuoteOrder(pb.QuoteOrderRequest(add_seats=pb.AddSeatsRequest(subscription_id=sid, seats=1)))
    assert money(q.subtotal) == Decimal("301.32") and q.lines[0].explanation == line.explanation


def test_a_refund_request_after_an_alignment_credits_the_alignment_once(stack):
    sid, aligned = _aligned(stack, seats=2)  # 470 x 2 x 83 / 365 = 213.75 for the extra days
    (alignment_invoice,) = aligned.invoice_ids
    paid = stack.billing.GetInvoice(billing_pb2.GetInvoiceRequest(invoice_id=alignment_invoice)).invoice
    assert money(paid.subtotal) == Decimal("213.75")
    stack.clock.set(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))  # the 30-day refund window closed long ago
    req = pb.RequestRefundRequest(request_id=rid(), subscription_id=sid, reason="we align elsewhere")
    r = stack.sub.RequestRefund(req)
    assert money(r.refunded_amount) == money(paid.total)
    (cn_id,) = r.credit_note_ids
    (line,) = r.lines
    assert (money(line.amount), line.quantity, line.prorated_days, line.term_days) == (
        Decimal("-213.75"),
        2,
        83,
        365,
    )
    sub = r.subscription
    assert sub.stage == common_pb2.STAGE_ACTIVE and not sub.auto_renew
    assert _date(sub.renewal_date) == (2025, 6, 10)  # the term as bought
    # A retry answers the same; turning automatic renewal off afterwards credits nothing more.
    assert stack.sub.RequestRefund(req) == r
    off = stack.sub.SetAutoRenew(
        pb.SetAutoRenewRequest(request_id=rid(), subscription_id=sid, auto_renew=False)
    )
    assert not off.credit_note_ids and not off.lines
    notes = _credit_notes(stack)
    assert [(n.credit_note_id, n.invoice_id, money(n.amount)) for n in notes] == [
        (cn_id, alignment_invoice, money(paid.total))
    ]
    with pytest.raises(grpc.RpcError) as e:
        stack.sub.RequestRefund(pb.RequestRefundRequest(request_id=rid(), subscription_id=sid))
    assert error_info(e.value).reason == "ERROR_REASON_REFUND_WINDOW_CLOSED"


def test_turning_automatic_renewal_off_after_an_alignment_refunds_it(stack):
    sid, aligned = _aligned(stack)
    (alignment_invoice,) = aligned.invoice_ids
    stack.clock.set(datetime(2025, 2, 1, 9, 0, tzinfo=UTC))
    req = pb.SetAutoRenewRequest(request_id=rid(), subscription_id=sid, auto_renew=False)
    r = stack.sub.SetAutoRenew(req)
    assert [money(ln.amount) for ln in r.lines] == [Decimal("-106.88")]  # 470 x 83 / 365
    assert len(r.credit_note_ids) == 1 and money(r.refunded_amount) > Decimal("106.88") - Decimal("0.01")
    assert not r.subscription.auto_renew and _date(r.subscription.renewal_date) == (2025, 6, 10)
    assert stack.sub.SetAutoRenew(req) == r
    assert [n.invoice_id for n in _credit_notes(stack)] == [alignment_invoice]


@pytest.mark.parametrize(
    ("product", "target", "plan", "serial"),
    [
        ("ACD", "AEC_COLLECTION", common_pb2.PLAN_UNSPECIFIED, True),  # ACD: release year 2019
        ("ACDLT", "ACD", common_pb2.PLAN_UNSPECIFIED, False),  # ACDLT: 2021
        ("ACD", "", common_pb2.PLAN_PREMIUM, False),  # a plan change
    ],
)
def test_upgrade_flags(stack, product, target, plan, serial):
    old = stack.buy(product_code=product).subscription
    stack.clock.set(datetime(2024, 7, 1, 9, 0, tzinfo=UTC))
    up = stack.sub.UpgradeSubscription(
        pb.UpgradeSubscriptionRequest(
            request_id=rid(),
            subscription_id=old.subscription_id,
            target_product_code=target,
            target_plan=plan,
        )
    )
    assert up.serial_number_update_required is serial
    assert not up.reinstall_required
    credit = [ln for ln in up.lines if money(ln.amount) < 0]
    assert money(credit[0].amount) == -money(up.credit) and credit[0].term_days == 365
    assert credit[0].prorated_days == 344  # 2024-07-01 to 2025-06-10


def test_the_legacy_suite_is_in_the_catalog_and_upgrades_to_the_collection(stack):
    products = {p.product_code: p for p in stack.sub.ListProducts(pb.ListProductsRequest()).products}
    suite = products["DC_SUITE"]
    assert suite.kind == common_pb2.PRODUCT_KIND_SUITE
    assert list(suite.upgrades_to) == ["AEC_COLLECTION"]
    assert (products["ACD"].release_year, products["ACDLT"].release_year) == (2019, 2021)
