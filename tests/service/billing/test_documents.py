"""Invoice PDFs through the real service: the buyer's language and VAT id decide what the PDF says."""

import io

import grpc
import pytest
from pypdf import PdfReader

from tenure.billing.v1 import billing_pb2 as pb
from tests.service.billing.helpers import dec, reason


def pdf_text(data: bytes) -> str:
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


def test_a_swedish_business_is_reverse_charged_and_its_invoice_says_so_in_swedish(billing):
    profile = billing.profile(
        account="acct-se",
        country="SE",
        name="Östra Bygg AB (Łódź branch)",
        tax_id="SE 556677-8899 01",
        language="sv",
    )
    assert profile.tax_id == "SE556677889901"
    pm = billing.card(account="acct-se")
    inv = billing.create_invoice(pm, account="acct-se", amount="5076.00", quantity=2, currency="SEK").invoice
    assert dec(inv.tax) == 0 and dec(inv.total) == dec(inv.subtotal) == 10152
    pdf = billing.GetInvoicePdf(pb.GetInvoicePdfRequest(invoice_id=inv.invoice_id))
    text = pdf_text(pdf.pdf)
    assert "FAKTURA" in text and "Östra Bygg AB (Łódź branch)" in text and "Sverige" in text
    assert "Omvänd skattskyldighet 0 % på 10 152,00 kr 0,00 kr" in text
    assert "artikel 196 i rådets direktiv 2006/112/EG" in text and "Momsreg.nr SE556677889901" in text
    assert "BETALD" in text  # charged to the card when issued


def test_a_norwegian_buyer_pays_mva_25_and_reads_norwegian(billing):
    billing.profile(account="acct-no", country="NO", language="nb")
    pm = billing.card(account="acct-no")
    inv = billing.create_invoice(pm, account="acct-no", amount="5076.00", quantity=3, currency="NOK").invoice
    text = pdf_text(billing.GetInvoicePdf(pb.GetInvoicePdfRequest(invoice_id=inv.invoice_id)).pdf)
    assert "MVA 25 % av 15 228,00 kr 3 807,00 kr" in text and "Totalt 19 035,00 kr" in text


def test_a_malformed_vat_id_is_refused_and_changes_nothing(billing):
    billing.profile(account="acct-bad", country="SE", language="sv")
    with pytest.raises(grpc.RpcError) as e:
        billing.profile(account="acct-bad", country="SE", tax_id="SE556677889801", name="Changed AB")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(e.value) == "ERROR_REASON_VAT_ID_INVALID"
    kept = billing.GetBillingProfile(pb.GetBillingProfileRequest(account_id="acct-bad")).profile
    assert kept.tax_id == "" and kept.name == "Fjordbygg AS"


def test_a_credit_note_reads_as_a_pdf_for_the_buyer_and_not_for_a_stranger(billing):
    from tests.auth import person

    billing.profile("acct-cn", "NO")
    paid = billing.create_invoice(billing.card("acct-cn"), account="acct-cn", currency="NOK").invoice
    note = billing.IssueCreditNote(
        pb.IssueCreditNoteRequest(request_id="cn-pdf", invoice_id=paid.invoice_id)
    ).credit_note
    got = billing.GetCreditNotePdf(
        pb.GetCreditNotePdfRequest(account_id="acct-cn", credit_note_id=note.credit_note_id),
        metadata=person("buyer@acct-cn.example"),
    )
    assert got.pdf.startswith(b"%PDF") and got.filename == f"{note.credit_note_number}.pdf"
    with pytest.raises(grpc.RpcError) as e:
        billing.GetCreditNotePdf(
            pb.GetCreditNotePdfRequest(account_id="acct-cn", credit_note_id=note.credit_note_id),
            metadata=person("stranger@other.example"),
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
