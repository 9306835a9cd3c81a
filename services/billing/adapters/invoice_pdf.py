"""Renders invoice and credit-note documents as PDFs (fpdf2) in the buyer's language.

Numbers, amounts, percentages, dates and country names come from Babel for the document language
(nb: `19 035,00 kr`, `25 %`, `10.06.2024`, `Sverige`); the words from `document_texts`. Text is set in
Helvetica, the PDF standard font, when every character is in Windows-1252, and otherwise in Roboto,
embedded (subset) from shared/fonts, so any Latin, Greek or Cyrillic name prints as written ('Łódź');
nothing needs to be installed on the machine (shared.fonts.render). Babel's no-break spaces are written as
plain spaces so the text a reader copies out (or extracts) is the text shown; the table's columns are
wide enough that an amount or a period never wraps.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from fpdf.fonts import FontFace

from services.billing.adapters.document_texts import TEXTS
from services.billing.domain.document import (
    CreditNoteDocument,
    InvoiceDocument,
    LineKind,
    PaymentCase,
    Seller,
    document_language,
)
from services.billing.domain.model import Address
from services.billing.domain.tax import Scheme
from services.billing.domain.vat import format_vat_id
from shared import fonts

FONT = fonts.FAMILY

#: date pattern per language: nb 10.06.2024, fr 10/06/2024, sv 2024-06-10, en 10 Jun 2024
_DATE_FORMAT = {"en": "d MMM y", "nb": "short", "fr": "short", "sv": "short"}
#: English amounts carry the ISO currency code in front (NOK 19,035.00, USD 1,575.00: "$" could be any dollar)
_MONEY_FORMAT = {"en": "¤¤\u00a0#,##0.00"}
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def _warm_up() -> None:
    """Load what the first document would otherwise load on its way (the subsetter, the four locales),
    so the first PDF of a process takes no longer than the next ones."""
    import fontTools.subset  # noqa: F401  (fpdf2 imports it on the first output)

    for language in TEXTS:
        locale = Locale.parse(language)
        format_currency(Decimal("1.00"), "NOK", locale=locale)
        format_date(date(2024, 1, 1), _DATE_FORMAT[language], locale=locale)
        format_percent(Decimal("0.25"), locale=locale)
        _ = locale.territories


_warm_up()


class Words:
    """Formats values and looks up words for one document language."""

    def __init__(self, language: str) -> None:
        self.language = document_language(language)
        self.locale = Locale.parse(self.language)
        self.texts = TEXTS[self.language]

    def __call__(self, key: str, **values: object) -> str:
        return self.texts[key].format(**values)

    def money(self, value: Decimal, currency: str) -> str:
        text = format_currency(value, currency, format=_MONEY_FORMAT.get(self.language), locale=self.locale)
        return text.translate(_SPACES)

    def date(self, value: date) -> str:
        return format_date(value, _DATE_FORMAT[self.language], locale=self.locale)

    def period(self, first: date | None, last: date | None) -> str:
        if first is None or last is None:
            return ""
        return f"{self.date(first)}–{self.date(last)}"

    def percent(self, rate: Decimal) -> str:
        return format_percent(rate, locale=self.locale, decimal_quantization=False).translate(_SPACES)

    def number(self, value: int | Decimal) -> str:
        return format_decimal(value, locale=self.locale).translate(_SPACES)

    def country(self, code: str) -> str:
        code = (code or "").strip().upper()
        return str(self.locale.territories.get(code, code)) if code else ""

    def tax_name(self, scheme: Scheme, stored: str) -> str:
        if scheme is Scheme.STANDARD:
            return stored or self.texts["col_rate"]
        return self.texts[f"scheme_{scheme.value}"]


class _Page:
    """The first page of a document with a few writing helpers."""

    def __init__(self, pdf: fonts.Document, title: str, author: str, language: str) -> None:
        pdf.set_title(title)
        pdf.set_author(author)
        pdf.set_creator("Tenure billing")
        pdf.set_lang(language)
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.set_margins(15, 15, 15)
        pdf.add_page()
        self.pdf = pdf

    def text(
        self, s: str, size: float = 9.5, style: str = "", h: float = 4.8, align: str = "L", w: float = 0
    ) -> None:
        self.pdf.set_font(FONT, style=style, size=size)
        self.pdf.multi_cell(w or self.pdf.epw, h, s, align=align, new_x="LMARGIN", new_y="NEXT")

    def pair(self, label: str, value: str, bold: bool = False, size: float = 9.5) -> None:
        """A right-aligned total line: label on the left of the value column."""
        pdf = self.pdf
        pdf.set_font(FONT, style="B" if bold else "", size=size)
        pdf.set_x(pdf.l_margin + pdf.epw * 0.35)
        pdf.cell(pdf.epw * 0.40, 5.5, label, align="R")
        pdf.cell(pdf.epw * 0.25, 5.5, value, align="R", new_x="LMARGIN", new_y="NEXT")

    def gap(self, h: float = 3) -> None:
        self.pdf.ln(h)


def _seller_block(page: _Page, w: Words, seller: Seller) -> float:
    """The seller's legal details at the top left; returns where the block ended."""
    half = page.pdf.epw * 0.55
    page.text(seller.name, 13, "B", 6.5, w=half)
    for ln in seller.address_lines:
        page.text(ln, 9, w=half)
    if seller.country_code:
        page.text(w.country(seller.country_code), 9, w=half)
    page.text(w("seller_vat", tax_id=seller.tax_id), 9, w=half)
    if seller.register:
        page.text(seller.register, 9, w=half)
    page.text(seller.email, 9, w=half)
    return page.pdf.get_y()


def _meta_block(page: _Page, title: str, rows: list[tuple[str, str]], top: float) -> float:
    """The document's title and its numbers and dates at the top right; returns where it ended."""
    pdf = page.pdf
    x = pdf.l_margin + pdf.epw * 0.55
    width = pdf.epw * 0.45
    pdf.set_xy(x, top)
    pdf.set_font(FONT, "B", 18)
    pdf.cell(width, 9, title, align="R", new_x="LEFT", new_y="NEXT")
    for label, value in rows:
        pdf.set_x(x)
        pdf.set_font(FONT, "", 9)
        pdf.cell(width * 0.5, 4.8, label, align="L")
        pdf.set_font(FONT, "B", 9)
        pdf.cell(width * 0.5, 4.8, value, align="R", new_x="LEFT", new_y="NEXT")
    return pdf.get_y()


def _buyer_block(
    page: _Page,
    w: Words,
    name: str,
    email: str,
    address: Address,
    tax_id: str,
    payers: tuple[str, ...] = (),
) -> None:
    page.text(w("bill_to"), 10.5, "B", 6)
    page.text(name or email)
    for ln in (address.line1, address.line2, " ".join(x for x in (address.postal_code, address.city) if x)):
        if ln:
            page.text(ln)
    if address.region and address.country_code in ("US", "CA", "AU"):
        page.text(address.region)
    if address.country_code:
        page.text(w.country(address.country_code))
    if email and name:
        page.text(email)
    if tax_id:
        page.text(w("buyer_vat", tax_id=format_vat_id(address.country_code, tax_id)))
    if payers:
        page.text(w("payers", emails=", ".join(payers)))


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice in its buyer's language (`doc.language`)."""
    return fonts.render(lambda pdf: _draw_invoice(pdf, doc))


def _draw_invoice(pdf: fonts.Document, doc: InvoiceDocument) -> None:
    w = Words(doc.language)
    cur = doc.currency
    page = _Page(pdf, f"{w('invoice').capitalize()} {doc.invoice_number}", doc.seller.name, w.language)
    top = page.pdf.get_y()
    left = _seller_block(page, w, doc.seller)
    rows = [
        (w("invoice_number"), doc.invoice_number),
        (w("issue_date"), w.date(doc.issue_date)),
        (w("due_date"), w.date(doc.due_date)),
    ]
    if doc.order_number:
        rows.append((w("order_number"), doc.order_number))
    if doc.po_number:
        rows.append((w("po_number"), doc.po_number))
    if doc.installment:
        seq, count = doc.installment
        rows.append(("", w("installment", sequence=seq, count=count)))
    rows.append((w("status"), w(f"status_{doc.status}") if f"status_{doc.status}" in w.texts else doc.status))
    right = _meta_block(page, w("invoice"), rows, top)
    page.pdf.set_xy(page.pdf.l_margin, max(left, right))
    page.gap(5)
    _buyer_block(page, w, doc.buyer_name, doc.buyer_email, doc.buyer_address, doc.buyer_tax_id, doc.payers)
    page.gap(4)

    lines = doc.shown_lines()
    credit_label = w("credit_applied")
    pdf = page.pdf
    pdf.set_font(FONT, size=8.5)
    with pdf.table(
        col_widths=(60, 40, 12, 28, 14, 36),
        text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=4.6,
        headings_style=FontFace(emphasis="BOLD"),
        borders_layout="HORIZONTAL_LINES",
    ) as table:
        head = table.row()
        for key in (
            "col_description",
            "col_period",
            "col_quantity",
            "col_unit_price",
            "col_rate",
            "col_amount",
        ):
            head.cell(w(key))
        for ln in lines:
            row = table.row()
            description = ln.description
            if ln.kind is LineKind.CREDIT and not description.lower().startswith("credit applied"):
                description = f"{credit_label}: {description}" if description else credit_label
            elif ln.kind is LineKind.CREDIT:
                description = credit_label + description[len("credit applied") :]
            if doc.installment and ln.kind is LineKind.CHARGE:
                seq, count = doc.installment
                description = f"{description} ({w('installment', sequence=seq, count=count).lower()})"
            row.cell(description)
            row.cell(w.period(ln.first_day, ln.last_day))
            row.cell(w.number(ln.quantity))
            row.cell(w.money(ln.unit_price, cur))
            row.cell(w.percent(ln.tax_rate))
            row.cell(w.money(ln.amount, cur))
    page.gap(3)

    scheme = doc.scheme
    tax_name = w.tax_name(scheme, doc.tax_name)
    page.pair(w("subtotal"), w.money(doc.subtotal, cur))
    for rt in doc.rate_totals():
        label = w("tax_line", name=tax_name, rate=w.percent(rt.rate), base=w.money(rt.base, cur))
        page.pair(label, w.money(rt.tax, cur))
    page.pair(w("total"), w.money(doc.total, cur), bold=True, size=11)
    if doc.account_credit_applied:
        page.pair(credit_label, w.money(-doc.account_credit_applied, cur))
    if doc.amount_paid:
        page.pair(w("amount_paid"), w.money(-doc.amount_paid, cur))
    if doc.amount_credited:
        page.pair(w("amount_credited"), w.money(doc.amount_credited, cur))
    if doc.status != "void":
        page.pair(w("amount_due"), w.money(doc.amount_due, cur), bold=True, size=11)
    if doc.status == "paid":
        page.gap(2)
        page.text(w("paid_stamp"), 16, "B", 8, align="R")
    page.gap(3)
    _scheme_note(page, w, scheme, doc.buyer_tax_id, doc.buyer_address.country_code)

    page.text(w("payment"), 10.5, "B", 6)
    for sentence in _payment_sentences(doc, w):
        page.text(sentence)
    if doc.notes:
        page.gap(2)
        page.text(w("notes"), 10.5, "B", 6)
        page.text(doc.notes)


def _scheme_note(page: _Page, w: Words, scheme: Scheme, tax_id: str, country: str) -> None:
    if scheme is Scheme.STANDARD:
        return
    note = w(f"note_{scheme.value}")
    if scheme is Scheme.REVERSE_CHARGE and tax_id:
        note = f"{note} {w('buyer_vat', tax_id=format_vat_id(country, tax_id))}"
    page.text(note, 9, "B")
    page.gap(3)


def _payment_sentences(doc: InvoiceDocument, w: Words) -> list[str]:
    case = doc.payment_case()
    method = doc.payment_method_shown or doc.payment_method_label
    if case is PaymentCase.PAID:
        return [w("paid_in_full", method=f" ({method})" if method else "")]
    if case is PaymentCase.VOID:
        return [w("void")]
    if case is PaymentCase.NOTHING_DUE:
        return [w("nothing_due")]
    if case is PaymentCase.CHARGED:
        return [w("pay_charged", method=method or w("your_method")), w("pay_declined")]
    s = doc.seller
    return [
        w(
            "pay_transfer",
            amount=w.money(doc.amount_due, doc.currency),
            due=w.date(doc.due_date),
            bank=s.bank_name,
            iban=s.iban,
            bic=s.bic,
            number=doc.invoice_number,
        ),
        w("pay_online"),
    ]


def render_credit_note_pdf(doc: CreditNoteDocument) -> bytes:
    """The credit note in its buyer's language: the amount given back, its VAT, and how it was settled."""
    return fonts.render(lambda pdf: _draw_credit_note(pdf, doc))


def _draw_credit_note(pdf: fonts.Document, doc: CreditNoteDocument) -> None:
    w = Words(doc.language)
    cur = doc.currency
    page = _Page(
        pdf, f"{w('credit_note').capitalize()} {doc.credit_note_number}", doc.seller.name, w.language
    )
    top = page.pdf.get_y()
    left = _seller_block(page, w, doc.seller)
    rows = [
        (w("credit_note_number"), doc.credit_note_number),
        (w("credit_date"), w.date(doc.issue_date)),
        (w("invoice_number"), doc.invoice_number),
    ]
    right = _meta_block(page, w("credit_note"), rows, top)
    page.pdf.set_xy(page.pdf.l_margin, max(left, right))
    page.gap(5)
    _buyer_block(page, w, doc.buyer_name, doc.buyer_email, doc.buyer_address, doc.buyer_tax_id)
    page.gap(4)
    if doc.invoice_issue_date is not None:
        page.text(w("credits_invoice_of", number=doc.invoice_number, date=w.date(doc.invoice_issue_date)))
    else:
        page.text(w("credits_invoice", number=doc.invoice_number))
    if doc.reason:
        page.text(w("reason", reason=doc.reason))
    page.gap(3)
    scheme = doc.scheme
    tax_name = w.tax_name(scheme, doc.tax_name)
    page.pair(w("credit_net", name=tax_name), w.money(doc.net, cur))
    label = w("tax_line", name=tax_name, rate=w.percent(doc.tax_rate), base=w.money(doc.net, cur))
    page.pair(label, w.money(doc.tax, cur))
    page.pair(w("credit_total"), w.money(doc.amount, cur), bold=True, size=11)
    page.gap(3)
    _scheme_note(page, w, scheme, doc.buyer_tax_id, doc.buyer_address.country_code)
    page.text(w("settled_cash_balance" if doc.settlement == "cash_balance" else "settled_refund"))
