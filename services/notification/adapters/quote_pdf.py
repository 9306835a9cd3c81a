"""A partner's quote as a PDF (fpdf2), in the buyer's language, attached to the mail that issues it
(rules §9).

The notification service makes it from the `subscription.quote_issued` event, which carries every figure
the quote states (its number and version, the partner, the priced lines, subtotal, tax, total, issue and
validity dates): nothing is looked up. Amounts and dates are formatted by Babel for the language; text is
set as billing's invoices are (shared.fonts.render: Helvetica when every character is in Windows-1252,
otherwise Roboto embedded), so any name prints as written.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency

from services.notification.adapters.peers import Pdf
from services.notification.domain.languages import resolve_language
from shared import fonts
from shared.errors import InvalidInput
from shared.money import from_proto
from tenure.events.v1 import events_pb2

FONT = fonts.FAMILY
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})
_DATE_FORMAT = {"en": "d MMM y", "nb": "short", "fr": "short", "sv": "short"}
_MONEY_FORMAT = {"en": "¤¤\u00a0#,##0.00"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Quote",
        "number": "Quote number",
        "version": "Version",
        "issued": "Issue date",
        "valid": "Valid until",
        "from": "Prepared by",
        "for": "For",
        "line": "Description",
        "qty": "Qty",
        "unit": "Unit price",
        "period": "Period",
        "amount": "Amount",
        "subtotal": "Subtotal",
        "tax": "Tax",
        "total": "Total",
        "accept": "Accept this quote in Tenure before {date}: choose card, PayPal or pay by invoice. "
        "You pay the vendor directly.",
    },
    "nb": {
        "title": "Tilbud",
        "number": "Tilbudsnummer",
        "version": "Versjon",
        "issued": "Dato",
        "valid": "Gyldig til",
        "from": "Utarbeidet av",
        "for": "Til",
        "line": "Beskrivelse",
        "qty": "Antall",
        "unit": "Enhetspris",
        "period": "Periode",
        "amount": "Beløp",
        "subtotal": "Sum eks. mva.",
        "tax": "Mva.",
        "total": "Totalt",
        "accept": "Godta tilbudet i Tenure innen {date}: velg kort, PayPal eller faktura. "
        "Du betaler leverandøren direkte.",
    },
    "fr": {
        "title": "Devis",
        "number": "Numéro de devis",
        "version": "Version",
        "issued": "Date",
        "valid": "Valable jusqu'au",
        "from": "Préparé par",
        "for": "Pour",
        "line": "Désignation",
        "qty": "Qté",
        "unit": "Prix unitaire",
        "period": "Période",
        "amount": "Montant",
        "subtotal": "Total HT",
        "tax": "TVA",
        "total": "Total TTC",
        "accept": "Acceptez ce devis dans Tenure avant le {date} : carte, PayPal ou paiement sur facture. "
        "Vous payez directement l'éditeur.",
    },
    "sv": {
        "title": "Offert",
        "number": "Offertnummer",
        "version": "Version",
        "issued": "Datum",
        "valid": "Giltig till",
        "from": "Upprättad av",
        "for": "Till",
        "line": "Beskrivning",
        "qty": "Antal",
        "unit": "Styckpris",
        "period": "Period",
        "amount": "Belopp",
        "subtotal": "Summa exkl. moms",
        "tax": "Moms",
        "total": "Totalt",
        "accept": "Godkänn offerten i Tenure senast {date}: välj kort, PayPal eller faktura. "
        "Du betalar leverantören direkt.",
    },
}


def _day(msg: object) -> date | None:
    y, m, d = (getattr(msg, k, 0) for k in ("year", "month", "day"))
    return date(y, m, d) if y else None


class _Words:
    def __init__(self, language: str) -> None:
        self.language = resolve_language(language)
        self.texts = TEXTS[self.language]

    def __getitem__(self, key: str) -> str:
        return self.texts[key]

    def date(self, d: date | None) -> str:
        return format_date(d, _DATE_FORMAT[self.language], locale=self.language) if d else ""

    def money(self, msg: object) -> str:
        try:
            m = from_proto(msg)  # type: ignore[arg-type]
        except (InvalidInput, AttributeError):
            return ""
        text = format_currency(
            Decimal(m.amount), m.currency, format=_MONEY_FORMAT.get(self.language), locale=self.language
        )
        return str(text).translate(_SPACES)


def render_quote_pdf(q: events_pb2.QuoteIssued, language: str) -> bytes:
    return fonts.render(lambda pdf: _draw_quote(pdf, q, language))


def _draw_quote(pdf: fonts.Document, q: events_pb2.QuoteIssued, language: str) -> None:
    w = _Words(language)
    pdf.set_title(f"{w['title']} {q.quote_number}")
    pdf.set_author(q.partner_contact.partner)
    pdf.set_creator("Tenure")
    pdf.set_lang(w.language)
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    epw = pdf.epw

    pdf.set_font(FONT, "B", 18)
    pdf.cell(epw, 10, w["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 9.5)
    for label, value in (
        (w["number"], q.quote_number),
        (w["version"], str(q.version)),
        (w["issued"], w.date(_day(q.issue_date))),
        (w["valid"], w.date(_day(q.valid_until_date))),
        (w["from"], q.partner_contact.partner),
        (w["for"], " ".join(x for x in (q.buyer_name, f"<{q.buyer_email}>") if x)),
    ):
        pdf.set_font(FONT, "", 9.5)
        pdf.cell(epw * 0.3, 5.5, label)
        pdf.set_font(FONT, "B", 9.5)
        pdf.cell(epw * 0.7, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    widths = (0.40, 0.08, 0.16, 0.20, 0.16)
    pdf.set_font(FONT, "B", 9)
    heads = (w["line"], w["qty"], w["unit"], w["period"], w["amount"])
    for head, share in zip(heads, widths, strict=True):
        pdf.cell(epw * share, 6, head, border="B", align="L" if head == w["line"] else "R")
    pdf.ln(6)
    pdf.set_font(FONT, "", 8.5)
    for ln in q.lines:
        period = "–".join(
            x for x in (w.date(_day(ln.period_start_date)), w.date(_day(ln.period_end_date))) if x
        )
        y = pdf.get_y()
        pdf.multi_cell(epw * widths[0], 4.6, ln.description, new_x="RIGHT", new_y="TOP")
        end = pdf.get_y()
        pdf.set_xy(pdf.l_margin + epw * widths[0], y)
        for value, share in zip(
            (str(ln.quantity), w.money(ln.unit_price), period, w.money(ln.amount)), widths[1:], strict=True
        ):
            pdf.cell(epw * share, 4.6, value, align="R")
        pdf.set_xy(pdf.l_margin, max(end, y + 4.6) + 1.5)
    pdf.ln(3)
    for label, value, bold in (
        (w["subtotal"], w.money(q.subtotal), False),
        (w["tax"], w.money(q.tax), False),
        (w["total"], w.money(q.total), True),
    ):
        pdf.set_font(FONT, "B" if bold else "", 10 if bold else 9.5)
        pdf.set_x(pdf.l_margin + epw * 0.45)
        pdf.cell(epw * 0.30, 6, label, align="R")
        pdf.cell(epw * 0.25, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font(FONT, "", 9.5)
    pdf.multi_cell(epw, 5, w["accept"].format(date=w.date(_day(q.valid_until_date))))


def quote_pdf(q: events_pb2.QuoteIssued, language: str) -> Pdf:
    return Pdf(filename=f"{q.quote_number}-v{q.version}.pdf", content=render_quote_pdf(q, language))
