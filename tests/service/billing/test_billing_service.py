"""BillingService over gRPC on a real server (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import grpc
import pytest
from pypdf import PdfReader

from shared.money import to_proto
from tenure.billing.v1 import billing_pb2 as pb
from tenure.common.v1 import common_pb2
from tests.auth import person
from tests.service.billing.helpers import day, dec, reason


def test_preview_tax_norwegian_vat_and_exempt_profile(billing):
    billing.profile("acct-no", "NO")
    line = pb.InvoiceLineInput(
        description="3 seats co-termed",
        quantity=3,
        unit_price=to_proto(Decimal("470.00"), "NOK"),
        amount=to_proto(Decimal("737.84"), "NOK"),
    )
    r = billing.PreviewTax(pb.PreviewTaxRequest(account_id="acct-no", currency_code="NOK", lines=[line]))
    assert (dec(r.subtotal), dec(r.tax), dec(r.total)) == (
        Decimal("737.84"),
        Decimal("184.46"),
        Decimal("922.30"),
    )
    assert r.tax_rate == "0.25" and r.tax_name == "MVA"

    billing.profile("acct-ex", "NO", tax_exempt=True, exemption_certificate="FRITAK-2024-9")
    r = billing.PreviewTax(pb.PreviewTaxRequest(account_id="acct-ex", currency_code="NOK", lines=[line]))
    assert dec(r.tax) == 0 and dec(r.total) == Decimal("737.84")

    with pytest.raises(grpc.RpcError) as e:
        billing.profile("acct-us", "US")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(e.value) == "ERROR_REASON_TAX_REGION_REQUIRED"


def test_sixth_payer_is_refused_and_payers_are_listed_on_invoices(billing):
    billing.profile()
    for n in range(5):
        billing.AddPayer(pb.AddPayerRequest(account_id="acct-1", email=f"ap{n}@fjordbygg.no", name=f"AP {n}"))
    with pytest.raises(grpc.RpcError) as e:
        billing.AddPayer(pb.AddPayerRequest(account_id="acct-1", email="sixth@fjordbygg.no"))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason(e.value) == "ERROR_REASON_PAYER_LIMIT_REACHED"
    assert "at most 5 payers" in e.value.details()
    assert len(billing.ListPayers(pb.ListPayersRequest(account_id="acct-1")).payers) == 5

    billing.RemovePayer(pb.RemovePayerRequest(account_id="acct-1", email="ap4@fjordbygg.no"))
    inv = billing.create_invoice(billing.card()).invoice
    assert [p.email for p in inv.payers] == [f"ap{n}@fjordbygg.no" for n in range(4)]


def test_card_invoice_is_charged_at_once_and_a_retry_never_charges_twice(billing):
    billing.profile()
    pm = billing.card()
    first = billing.create_invoice(
        pm, request_id="order-1:invoice", subscription_id="sub-1", quantity=2, amount="470.00"
    )
    inv = first.invoice
    assert first.payment.status == pb.PAYMENT_STATUS_SUCCEEDED
    assert inv.status == pb.INVOICE_STATUS_PAID
    assert inv.invoice_number == "INV-2024-000001"
    assert (dec(inv.subtotal), dec(inv.tax), dec(inv.total)) == (
        Decimal("940.00"),
        Decimal("235.00"),
        Decimal("1175.00"),
    )
    assert inv.due_date == day(date(2024, 7, 10))  # net 30 from 10 June 2024
    again = billing.create_invoice(
        pm, request_id="order-1:invoice", subscription_id="sub-1", quantity=2, amount="470.00"
    )
    assert again == first
    listed = billing.ListInvoices(pb.ListInvoicesRequest(account_id="acct-1")).invoices
    assert len(listed) == 1
    assert billing.events() == ["billing.account_opened", "billing.invoice_issued", "billing.invoice_paid"]


def test_declined_card_leaves_the_invoice_open_with_the_reason(billing):
    billing.profile()
    declined = billing.card(number="4000000000000002")
    r = billing.create_invoice(declined)
    assert r.payment.status == pb.PAYMENT_STATUS_DECLINED
    assert r.payment.decline_reason == "card_declined"
    assert r.invoice.status == pb.INVOICE_STATUS_OPEN
    assert r.invoice.decline_reason == "card_declined"
    assert dec(r.invoice.amount_due) == dec(r.invoice.total)

    poor = billing.card(number="4000000000009995")
    paid = billing.PayInvoice(
        pb.PayInvoiceRequest(
            request_id="pay-1", invoice_id=r.invoice.invoice_id, payment_method_id=poor.payment_method_id
        )
    )
    assert paid.payment.decline_reason == "insufficient_funds"
    assert paid.invoice.status == pb.INVOICE_STATUS_OPEN

    good = billing.card()
    paid = billing.PayInvoice(
        pb.PayInvoiceRequest(
            request_id="pay-2", invoice_id=r.invoice.invoice_id, payment_method_id=good.payment_method_id
        )
    )
    assert paid.payment.status == pb.PAYMENT_STATUS_SUCCEEDED
    assert paid.invoice.status == pb.INVOICE_STATUS_PAID
    assert billing.events() == [
        "billing.account_opened",
        "billing.invoice_issued",
        "billing.payment_failed",
        "billing.payment_failed",
        "billing.invoice_paid",
    ]
    with pytest.raises(grpc.RpcError) as e:
        billing.PayInvoice(pb.PayInvoiceRequest(request_id="pay-3", invoice_id=r.invoice.invoice_id))
    assert reason(e.value) == "ERROR_REASON_INVOICE_NOT_OPEN"


def test_non_luhn_card_is_bad_input(billing):
    with pytest.raises(grpc.RpcError) as e:
        billing.card(number="4242424242424241")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(e.value) == "ERROR_REASON_CARD_NUMBER_INVALID"
    # The refused card opened no account: to its would-be buyer it still does not exist.
    with pytest.raises(grpc.RpcError) as e:
        billing.ListPaymentMethods(pb.ListPaymentMethodsRequest(account_id="acct-1"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert billing.events() == []
    billing.profile()
    assert billing.ListPaymentMethods(pb.ListPaymentMethodsRequest(account_id="acct-1")).payment_methods == []


def test_pay_by_invoice_rules(billing):
    billing.profile()
    inv_pm = billing.invoice_method()
    with pytest.raises(grpc.RpcError) as e:
        billing.create_invoice(inv_pm, channel=common_pb2.CHANNEL_DIRECT_ONLINE)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(e.value) == "ERROR_REASON_PAY_BY_INVOICE_NOT_ALLOWED"
    check = billing.CheckPaymentMethod(
        pb.CheckPaymentMethodRequest(account_id="acct-1", type=common_pb2.PAYMENT_METHOD_TYPE_INVOICE)
    )
    assert not check.allowed and check.reason == "ERROR_REASON_PAY_BY_INVOICE_NOT_ALLOWED"

    quoted = billing.create_invoice(inv_pm, channel=common_pb2.CHANNEL_PARTNER_QUOTE, subscription_id="sub-q")
    assert quoted.payment.status == pb.PAYMENT_STATUS_PENDING
    assert quoted.invoice.status == pb.INVOICE_STATUS_OPEN
    # Now the account already pays a subscription by invoice: a direct order may too.
    billing.create_invoice(inv_pm, channel=common_pb2.CHANNEL_DIRECT_ONLINE, subscription_id="sub-d")

    billing.MarkPrepayOnly(
        pb.MarkPrepayOnlyRequest(account_id="acct-1", reason="sub-q cancelled for non-payment")
    )
    with pytest.raises(grpc.RpcError) as e:
        billing.create_invoice(inv_pm, channel=common_pb2.CHANNEL_PARTNER_QUOTE)
    assert reason(e.value) == "ERROR_REASON_ACCOUNT_PREPAY_ONLY"
    assert billing.create_invoice(billing.card()).invoice.status == pb.INVOICE_STATUS_PAID
    assert billing.GetBillingProfile(pb.GetBillingProfileRequest(account_id="acct-1")).profile.prepay_only


def test_three_year_term_is_invoiced_in_three_installments_by_the_sweep(billing, clock):
    clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    billing.profile("acct-3y", "US", "OR")  # no sales tax in Oregon
    pm = billing.card("acct-3y")
    r = billing.create_invoice(
        pm,
        account="acct-3y",
        subscription_id="sub-3y",
        kind=pb.INVOICE_KIND_RENEWAL,
        amount="1179.00",
        quantity=2,
        term=common_pb2.TERM_THREE_YEAR,
        term_start_date=day(date(2024, 10, 1)),
        time_zone="America/Los_Angeles",
        description="AutoCAD LT, 3-year term, 2 seats",
    )
    assert [dec(i.amount) for i in r.installments] == [Decimal("786.00")] * 3
    assert [i.due_date for i in r.installments] == [
        day(date(2024, 10, 1)),
        day(date(2025, 10, 1)),
        day(date(2026, 10, 1)),
    ]
    assert dec(r.invoice.total) == Decimal("786.00")
    assert r.invoice.lines[0].description == "AutoCAD LT, 3-year term, 2 seats (installment 1 of 3)"
    assert r.invoice.installment_sequence == 1

    before = billing.sweep(datetime(2025, 10, 1, 6, 59, tzinfo=UTC))
    assert before.issued == 0  # still 30 Sept in Los Angeles
    # the sweep names the next instant it has work: the second installment, at midnight in Los Angeles
    assert before.next_due_time.ToDatetime(tzinfo=UTC) == datetime(2025, 10, 1, 7, 0, tzinfo=UTC)
    first = billing.sweep(datetime(2025, 10, 1, 7, 0, tzinfo=UTC))
    assert (first.issued, first.paid) == (1, 1)
    assert first.next_due_time.ToDatetime(tzinfo=UTC) == datetime(2026, 10, 1, 7, 0, tzinfo=UTC)
    assert billing.sweep(datetime(2025, 10, 2, tzinfo=UTC)).issued == 0
    assert billing.sweep(datetime(2026, 10, 2, tzinfo=UTC)).issued == 1
    last = billing.sweep(datetime(2027, 10, 2, tzinfo=UTC))
    assert last.issued == 0 and not last.HasField("next_due_time")  # nothing left to do

    plan = billing.ListInstallments(pb.ListInstallmentsRequest(subscription_id="sub-3y")).installments
    assert [i.status for i in plan] == [pb.INSTALLMENT_STATUS_PAID] * 3
    invoices = billing.ListInvoices(
        pb.ListInvoicesRequest(account_id="acct-3y", subscription_id="sub-3y")
    ).invoices
    assert sorted(i.installment_sequence for i in invoices) == [1, 2, 3]
    assert sum(dec(i.subtotal) for i in invoices) == Decimal("2358.00")
    with pytest.raises(grpc.RpcError) as e:
        billing.RunBillingSweep(pb.RunBillingSweepRequest(), metadata=person("buyer@acct-3y.example"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_new_three_year_purchase_splits_1310_with_the_remainder_first(billing, clock):
    clock.set(datetime(2024, 9, 16, 12, 0, tzinfo=UTC))
    billing.profile("acct-n", "US", "OR")
    r = billing.create_invoice(
        billing.card("acct-n"), account="acct-n", amount="1310.00", term=common_pb2.TERM_THREE_YEAR
    )
    assert [dec(i.amount) for i in r.installments] == [
        Decimal("436.68"),
        Decimal("436.66"),
        Decimal("436.66"),
    ]
    billing.CancelInstallments(pb.CancelInstallmentsRequest(subscription_id=r.invoice.subscription_id))
    assert billing.sweep(datetime(2027, 1, 1, tzinfo=UTC)).issued == 0


def test_credit_notes_never_exceed_what_was_paid_and_the_balance(billing):
    billing.profile("acct-c", "NO")
    paid = billing.create_invoice(
        billing.card("acct-c"), account="acct-c", amount="100.00", currency="NOK"
    ).invoice
    assert dec(paid.total) == Decimal("125.00")
    with pytest.raises(grpc.RpcError) as e:
        billing.IssueCreditNote(
            pb.IssueCreditNoteRequest(
                request_id="cn-0", invoice_id=paid.invoice_id, amount=to_proto(Decimal("125.01"), "NOK")
            )
        )
    assert reason(e.value) == "ERROR_REASON_CREDIT_EXCEEDS_PAID"
    cn = billing.IssueCreditNote(
        pb.IssueCreditNoteRequest(
            request_id="cn-1", invoice_id=paid.invoice_id, amount=to_proto(Decimal("25.00"), "NOK")
        )
    ).credit_note
    assert cn.credit_note_number.startswith("CN-2024-") and cn.settlement == pb.CREDIT_NOTE_SETTLEMENT_REFUND
    assert cn.refund_id
    rest = billing.IssueCreditNote(
        pb.IssueCreditNoteRequest(request_id="cn-2", invoice_id=paid.invoice_id, reason="refund")
    )
    assert dec(rest.credit_note.amount) == Decimal("100.00")
    with pytest.raises(grpc.RpcError):
        billing.IssueCreditNote(pb.IssueCreditNoteRequest(request_id="cn-3", invoice_id=paid.invoice_id))

    inv_pm = billing.invoice_method("acct-c")
    open_inv = billing.create_invoice(
        inv_pm, account="acct-c", amount="40.00", currency="NOK", quote=True
    ).invoice
    b = billing.GetBalance(pb.GetBalanceRequest(account_id="acct-c")).balance
    assert b.currency_code == "NOK"
    assert dec(b.open_amount) == Decimal("50.00") and b.open_invoices == 1
    assert dec(b.paid_amount) == Decimal("125.00")
    assert dec(b.credited_amount) == dec(b.refunded_amount) == Decimal("125.00")
    notes = billing.ListCreditNotes(pb.ListCreditNotesRequest(account_id="acct-c")).credit_notes
    assert len(notes) == 2
    assert "billing.credit_note_issued" in billing.events()

    # A bank transfer is recorded; its credit note becomes cash balance.
    billing.PayInvoice(pb.PayInvoiceRequest(request_id="bt-1", invoice_id=open_inv.invoice_id))
    billing.IssueCreditNote(pb.IssueCreditNoteRequest(request_id="cn-4", invoice_id=open_inv.invoice_id))
    b = billing.GetBalance(pb.GetBalanceRequest(account_id="acct-c", currency_code="NOK")).balance
    assert dec(b.cash_balance) == Decimal("50.00") and dec(b.open_amount) == 0


def test_unpaid_invoice_is_marked_overdue_at_its_due_date(billing, clock):
    billing.profile()
    inv = billing.create_invoice(billing.invoice_method(), quote=True, time_zone="Europe/Oslo").invoice
    assert inv.due_date == day(date(2024, 7, 10))
    early = billing.sweep(datetime(2024, 7, 9, 21, 59, tzinfo=UTC))
    assert early.overdue == 0
    assert early.next_due_time.ToDatetime(tzinfo=UTC) == datetime(2024, 7, 9, 22, 0, tzinfo=UTC)
    assert billing.sweep(datetime(2024, 7, 9, 22, 0, tzinfo=UTC)).overdue == 1  # midnight in Oslo
    assert billing.sweep(datetime(2024, 7, 20, tzinfo=UTC)).overdue == 0
    got = billing.GetInvoice(pb.GetInvoiceRequest(invoice_id=inv.invoice_id)).invoice
    assert got.overdue_time.ToDatetime(tzinfo=UTC) == datetime(2024, 7, 9, 22, 0, tzinfo=UTC)
    assert billing.events()[-1] == "billing.invoice_overdue"
    clock.set(datetime(2024, 7, 11, tzinfo=UTC))
    b = billing.GetBalance(pb.GetBalanceRequest(account_id="acct-1")).balance
    assert dec(b.overdue_amount) == dec(inv.total)


def test_invoice_pdf_and_po_details_for_the_next_invoice(billing):
    billing.profile(name="Fjordbygg AS")
    pm = billing.card()
    billing.create_invoice(pm, subscription_id="sub-po")  # the subscription's first invoice
    d = billing.UpdateInvoiceDetails(
        pb.UpdateInvoiceDetailsRequest(
            request_id="d-1",
            subscription_id="sub-po",
            po_number="PO-4711",
            notes="Attn. accounts payable",
            attachments=[
                pb.Attachment(filename="po-4711.pdf", content_type="application/pdf", content=b"%PDF-1.4 po")
            ],
        )
    ).details
    assert d.po_number == "PO-4711" and len(d.attachments) == 1
    r = billing.create_invoice(
        pm,
        subscription_id="sub-po",
        kind=pb.INVOICE_KIND_RENEWAL,
        description="AutoCAD LT renewal, 3 seats",
        quantity=3,
        amount="420.00",
    )
    inv = r.invoice
    assert inv.po_number == "PO-4711" and [a.filename for a in inv.attachments] == ["po-4711.pdf"]
    pdf = billing.GetInvoicePdf(pb.GetInvoicePdfRequest(invoice_id=inv.invoice_id))
    assert pdf.filename == f"{inv.invoice_number}.pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.pdf)).pages)
    assert inv.invoice_number in text
    assert "AutoCAD LT renewal, 3 seats" in text
    assert "Total USD 1,575.00" in text  # 1 260.00 + 25 % MVA
    assert "PO-4711" in text

    with pytest.raises(grpc.RpcError) as e:
        billing.UpdateInvoiceDetails(
            pb.UpdateInvoiceDetailsRequest(request_id="d-2", invoice_id=inv.invoice_id, po_number="PO-2")
        )
    assert reason(e.value) == "ERROR_REASON_INVOICE_NOT_OPEN"
    with pytest.raises(grpc.RpcError) as e:
        billing.UpdateInvoiceDetails(
            pb.UpdateInvoiceDetailsRequest(
                request_id="d-3",
                subscription_id="sub-po",
                attachments=[
                    pb.Attachment(
                        filename="x.pdf", content_type="application/pdf", content=b"x" * (5 * 1024 * 1024 + 1)
                    )
                ],
            )
        )
    assert reason(e.value) == "ERROR_REASON_ATTACHMENT_TOO_LARGE"


def test_list_invoices_pages_and_filters(billing):
    billing.profile()
    pm, bad = billing.card(), billing.card(number="4000000000000002")
    for _ in range(3):
        billing.create_invoice(pm)
    billing.create_invoice(bad)
    page = billing.ListInvoices(pb.ListInvoicesRequest(account_id="acct-1", page_size=2))
    assert len(page.invoices) == 2 and page.next_page_token
    rest = billing.ListInvoices(
        pb.ListInvoicesRequest(account_id="acct-1", page_size=2, page_token=page.next_page_token)
    )
    assert len(rest.invoices) == 2 and not rest.next_page_token
    numbers = {i.invoice_number for i in [*page.invoices, *rest.invoices]}
    assert numbers == {f"INV-2024-00000{n}" for n in range(1, 5)}
    open_ = billing.ListInvoices(
        pb.ListInvoicesRequest(account_id="acct-1", status=pb.INVOICE_STATUS_OPEN)
    ).invoices
    assert len(open_) == 1 and open_[0].decline_reason == "card_declined"
    with pytest.raises(grpc.RpcError) as e:
        billing.ListInvoices(pb.ListInvoicesRequest(account_id="acct-1", page_token="garbage"))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_void_an_open_invoice(billing):
    billing.profile()
    inv = billing.create_invoice(billing.invoice_method(), quote=True).invoice
    voided = billing.VoidInvoice(
        pb.VoidInvoiceRequest(request_id="v-1", invoice_id=inv.invoice_id, reason="cancelled")
    )
    assert voided.invoice.status == pb.INVOICE_STATUS_VOID
    assert billing.GetBalance(pb.GetBalanceRequest(account_id="acct-1")).balance.open_invoices == 0


def test_an_order_without_a_billing_profile_uses_the_order_country(billing):
    line = pb.InvoiceLineInput(
        description="AutoCAD LT", quantity=1, unit_price=to_proto(Decimal("470.00"), "USD")
    )
    r = billing.PreviewTax(
        pb.PreviewTaxRequest(account_id="new", currency_code="USD", lines=[line], country_code="SE")
    )
    assert dec(r.tax) == Decimal("117.50")
    with pytest.raises(grpc.RpcError) as e:
        billing.PreviewTax(
            pb.PreviewTaxRequest(account_id="new", currency_code="USD", lines=[line], country_code="US")
        )
    assert reason(e.value) == "ERROR_REASON_TAX_REGION_REQUIRED"
    with pytest.raises(grpc.RpcError) as e:
        billing.PreviewTax(pb.PreviewTaxRequest(account_id="new", currency_code="USD", lines=[line]))
    assert reason(e.value) == "ERROR_REASON_BILLING_PROFILE_NOT_FOUND"
    billing.buyers["new"] = "buyer@example.se"
    pm = billing.card("new")  # the buyer's first card opens the account, with no address yet
    inv = billing.create_invoice(pm, account="new", country_code="SE", buyer_email="Buyer@Example.se").invoice
    assert dec(inv.tax) == Decimal("117.50") and inv.buyer_email == "buyer@example.se"
    profile = billing.GetBillingProfile(pb.GetBillingProfileRequest(account_id="new")).profile
    assert profile.address.country_code == "SE"


def test_installment_invoices_are_dated_when_the_sweep_issues_them(billing, clock):
    clock.set(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    billing.profile("acct-d", "NO")
    billing.create_invoice(
        billing.card("acct-d"),
        account="acct-d",
        subscription_id="sub-d",
        amount="1310.00",
        currency="NOK",
        term=common_pb2.TERM_THREE_YEAR,
        time_zone="Europe/Oslo",
    )
    clock.set(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    assert billing.sweep(clock.now()).issued == 1
    second = billing.ListInvoices(pb.ListInvoicesRequest(account_id="acct-d", page_size=1)).invoices[0]
    assert second.invoice_number == "INV-2026-000001"  # numbering restarts each year
    assert second.issue_date == day(date(2026, 3, 1)) and second.due_date == day(date(2026, 3, 31))
    assert second.kind == pb.INVOICE_KIND_INSTALLMENT and second.installment_sequence == 2
    assert (dec(second.subtotal), dec(second.tax)) == (Decimal("436.66"), Decimal("109.17"))


def test_one_broken_installment_does_not_hold_back_the_others(billing, clock):
    from sqlalchemy import update

    from services.billing.adapters.tables import InstallmentRow

    clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    billing.profile("acct-b", "US", "OR")
    pm = billing.card("acct-b")
    for sub in ("sub-ok", "sub-broken"):
        billing.create_invoice(
            pm, account="acct-b", subscription_id=sub, amount="1310.00", term=common_pb2.TERM_THREE_YEAR
        )
    with billing.app.db.unit_of_work() as uow:
        uow.session.execute(
            update(InstallmentRow)
            .where(InstallmentRow.subscription_id == "sub-broken")
            .values(lines_json="not json")
        )
    result = billing.sweep(datetime(2025, 10, 2, tzinfo=UTC))
    assert result.issued == 1
    broken = billing.ListInstallments(pb.ListInstallmentsRequest(subscription_id="sub-broken")).installments
    assert [i.status for i in broken][1:] == [pb.INSTALLMENT_STATUS_SCHEDULED] * 2
    ok = billing.ListInstallments(pb.ListInstallmentsRequest(subscription_id="sub-ok")).installments
    assert ok[1].status == pb.INSTALLMENT_STATUS_PAID


def test_po_documents_on_an_open_invoice_can_be_replaced(billing):
    billing.profile()
    inv = billing.create_invoice(billing.invoice_method(), quote=True).invoice
    doc = pb.Attachment(filename="po.pdf", content_type="application/pdf", content=b"%PDF-1.4 a")
    r = billing.UpdateInvoiceDetails(
        pb.UpdateInvoiceDetailsRequest(
            request_id="u1", invoice_id=inv.invoice_id, po_number="PO-1", attachments=[doc] * 5
        )
    )
    assert len(r.invoice.attachments) == 5 and r.invoice.po_number == "PO-1"
    with pytest.raises(grpc.RpcError) as e:
        billing.UpdateInvoiceDetails(
            pb.UpdateInvoiceDetailsRequest(request_id="u2", invoice_id=inv.invoice_id, attachments=[doc])
        )
    assert reason(e.value) == "ERROR_REASON_TOO_MANY_ATTACHMENTS"
    first = r.invoice.attachments[0].attachment_id
    r = billing.UpdateInvoiceDetails(
        pb.UpdateInvoiceDetailsRequest(
            request_id="u3",
            invoice_id=inv.invoice_id,
            remove_attachment_ids=[first],
            attachments=[doc],
            notes="n",
        )
    )
    assert len(r.invoice.attachments) == 5 and first not in {a.attachment_id for a in r.invoice.attachments}
    assert (r.invoice.po_number, r.invoice.notes) == ("PO-1", "n")
