import io
from datetime import date
from decimal import Decimal

from pypdf import PdfReader

from services.billing.adapters.invoice_pdf import render_invoice_pdf
from services.billing.domain.document import DocumentLine, InvoiceDocument
from services.billing.domain.model import Address, MethodType

D = Decimal


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_invoice_pdf_shows_number_lines_total_due_date_po_and_instructions():
    doc = InvoiceDocument(
        invoice_number="INV-2024-000017",
        issue_date=date(2024, 12, 1),
        due_date=date(2024, 12, 31),
        currency="NOK",
        buyer_name="Fjordbygg AS",
        buyer_email="innkjop@fjordbygg.no",
        buyer_address=Address("NO", "", "Bergen", "5003", "Bryggen 1"),
        lines=(
            DocumentLine(
                "AutoCAD LT, 3 seats co-termed",
                3,
                D("470.00"),
                D("737.84"),
                D("184.46"),
                D("0.25"),
                date(2024, 12, 1),
                date(2025, 6, 10),
            ),
            DocumentLine("Autodesk Docs, 1 seat", 1, D("100.00"), D("100.00"), D("25.00"), D("0.25")),
        ),
        subtotal=D("837.84"),
        tax=D("209.46"),
        total=D("1047.30"),
        payment_method=MethodType.INVOICE,
        po_number="PO-4711",
        order_number="ORD-000123",
        tax_name="MVA",
        payers=("ap@fjordbygg.no",),
    )
    data = render_invoice_pdf(doc)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "INV-2024-000017" in text
    assert "AutoCAD LT, 3 seats co-termed" in text
    assert "Autodesk Docs, 1 seat" in text
    assert "NOK 737.84" in text
    assert "Total NOK 1,047.30" in text
    assert "31 Dec 2024" in text
    assert "PO-4711" in text
    assert "IBAN" in text
    assert "ap@fjordbygg.no" in text


def test_text_outside_latin1_prints_as_written_and_a_glyph_the_font_lacks_does_not_break_it():
    doc = InvoiceDocument(
        invoice_number="INV-2025-000001",
        issue_date=date(2025, 1, 1),
        due_date=date(2025, 1, 31),
        currency="EUR",
        buyer_name="Ärger – GmbH \u4e2d",
        buyer_email="a@b.de",
        buyer_address=Address("DE"),
        lines=(DocumentLine("Lizenz – Jahr", 1, D("10.00"), D("10.00"), D("1.90"), D("0.19")),),
        subtotal=D("10.00"),
        tax=D("1.90"),
        total=D("11.90"),
        status="paid",
        amount_paid=D("11.90"),
        payment_method=MethodType.CARD,
        payment_method_label="visa ending 4242",
    )
    text = pdf_text(render_invoice_pdf(doc))
    assert "Lizenz – Jahr" in text
    assert "Ärger" in text
    assert "Paid in full" in text
