"""Renders an invoice document as a PDF with fpdf2 (core fonts, so text is kept to Latin-1)."""

from __future__ import annotations

from decimal import Decimal

from fpdf import FPDF

from services.billing.domain.document import InvoiceDocument

_REPLACEMENTS = {
    "\u2013": "-",
    "\u2014": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u20ac": "EUR",
    "\u00a0": " ",
    "\u2022": "-",
}


def latin1(text: str) -> str:
    """Text that the core PDF fonts can show; characters outside Latin-1 become close ASCII or '?'."""
    for k, v in _REPLACEMENTS.items():
        text = text.replace(k, v)
    return text.encode("latin-1", "replace").decode("latin-1")


def amount(value: Decimal, currency: str) -> str:
    return f"{value:,.{max(-value.as_tuple().exponent, 0)}f} {currency}"


def _period(doc_line) -> str:
    if doc_line.period_start and doc_line.period_end:
        return f"{doc_line.period_start.isoformat()} - {doc_line.period_end.isoformat()}"
    return ""


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(latin1(f"Invoice {doc.invoice_number}"))
    pdf.set_author(latin1(doc.seller.name))
    pdf.set_creator("Tenure billing")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def text(s: str, size: int = 10, style: str = "", h: float = 5, align: str = "L") -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(width, h, latin1(s), align=align, new_x="LMARGIN", new_y="NEXT")

    text(doc.seller.name, 14, "B", 7)
    for ln in doc.seller.address_lines:
        text(ln, 9)
    text(f"VAT {doc.seller.tax_id}  |  {doc.seller.email}", 9)
    pdf.ln(4)
    text(f"INVOICE {doc.invoice_number}", 16, "B", 8)
    text(f"Issue date: {doc.issue_date.isoformat()}    Due date: {doc.due_date.isoformat()}")
    if doc.order_number:
        text(f"Order number: {doc.order_number}")
    if doc.installment:
        text(doc.installment)
    text(f"PO number: {doc.po_number or '-'}")
    text(f"Status: {doc.status.upper()}")
    pdf.ln(3)

    text("Bill to", 11, "B", 6)
    text(doc.buyer_name or doc.buyer_email)
    a = doc.buyer_address
    for ln in (a.line1, a.line2, " ".join(x for x in (a.postal_code, a.city) if x)):
        if ln:
            text(ln)
    text(" ".join(x for x in (a.region, a.country_code) if x))
    text(doc.buyer_email)
    if doc.buyer_tax_id:
        text(f"Tax id: {doc.buyer_tax_id}")
    if doc.payers:
        text("Payers: " + ", ".join(doc.payers))
    pdf.ln(3)

    pdf.set_font("Helvetica", size=9)
    with pdf.table(
        col_widths=(46, 8, 16, 22, 16, 16),
        text_align=("LEFT", "RIGHT", "RIGHT", "LEFT", "RIGHT", "RIGHT"),
        line_height=5,
    ) as table:
        head = table.row()
        for h in ("Description", "Qty", "Unit price", "Period", "Tax", "Amount"):
            head.cell(h)
        for ln in doc.lines:
            row = table.row()
            row.cell(latin1(ln.description))
            row.cell(str(ln.quantity))
            row.cell(amount(ln.unit_price, doc.currency))
            row.cell(_period(ln))
            row.cell(amount(ln.tax, doc.currency))
            row.cell(amount(ln.amount, doc.currency))
    pdf.ln(3)

    tax_label = "Tax exempt" if doc.tax_exempt else f"{doc.tax_name}"
    text(f"Subtotal: {amount(doc.subtotal, doc.currency)}", align="R")
    text(f"{tax_label}: {amount(doc.tax, doc.currency)}", align="R")
    text(f"Total: {amount(doc.total, doc.currency)}", 12, "B", 7, align="R")
    if doc.amount_paid:
        text(f"Paid: {amount(doc.amount_paid, doc.currency)}", align="R")
        text(f"Amount due: {amount(doc.total - doc.amount_paid, doc.currency)}", align="R")
    pdf.ln(3)

    text("Payment instructions", 11, "B", 6)
    for ln in doc.payment_instructions():
        text(ln)
    if doc.notes:
        pdf.ln(2)
        text("Notes", 11, "B", 6)
        text(doc.notes)
    return bytes(pdf.output())
