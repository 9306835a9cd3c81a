"""E-mail templates: Jinja2 files under templates/<language>/<kind>.j2, each with a `subject`, a
`text` and an `html` block; dates and amounts are formatted for the language with Babel.

The same file is loaded twice: once without escaping (subject and plain text) and once with HTML
autoescaping (the HTML body), so no value can inject markup into the HTML mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from services.notification.domain.languages import resolve_language
from services.notification.domain.model import Kind, MailFacts

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# Words the templates need for values that arrive as enum names.
LABELS: dict[str, dict[str, dict[str, str]]] = {
    "term": {
        "en": {"MONTHLY": "1 month", "ANNUAL": "1 year", "THREE_YEAR": "3 years"},
        "nb": {"MONTHLY": "1 måned", "ANNUAL": "1 år", "THREE_YEAR": "3 år"},
        "fr": {"MONTHLY": "1 mois", "ANNUAL": "1 an", "THREE_YEAR": "3 ans"},
        "sv": {"MONTHLY": "1 månad", "ANNUAL": "1 år", "THREE_YEAR": "3 år"},
    },
    "plan": {
        "en": {"STANDARD": "Standard", "PREMIUM": "Premium"},
        "nb": {"STANDARD": "Standard", "PREMIUM": "Premium"},
        "fr": {"STANDARD": "Standard", "PREMIUM": "Premium"},
        "sv": {"STANDARD": "Standard", "PREMIUM": "Premium"},
    },
    "role": {
        "en": {
            "BUYER": "buyer",
            "PRIMARY_ADMIN": "primary admin",
            "SECONDARY_ADMIN": "secondary admin",
            "PAYER": "payer",
            "USER": "user",
        },
        "nb": {
            "BUYER": "kjøper",
            "PRIMARY_ADMIN": "primæradministrator",
            "SECONDARY_ADMIN": "sekundæradministrator",
            "PAYER": "betaler",
            "USER": "bruker",
        },
        "fr": {
            "BUYER": "acheteur",
            "PRIMARY_ADMIN": "administrateur principal",
            "SECONDARY_ADMIN": "administrateur secondaire",
            "PAYER": "payeur",
            "USER": "utilisateur",
        },
        "sv": {
            "BUYER": "köpare",
            "PRIMARY_ADMIN": "primär administratör",
            "SECONDARY_ADMIN": "sekundär administratör",
            "PAYER": "betalare",
            "USER": "användare",
        },
    },
    "method": {
        "en": {"CARD": "card", "PAYPAL": "PayPal", "INVOICE": "bank transfer"},
        "nb": {"CARD": "kort", "PAYPAL": "PayPal", "INVOICE": "bankoverføring"},
        "fr": {"CARD": "carte bancaire", "PAYPAL": "PayPal", "INVOICE": "virement bancaire"},
        "sv": {"CARD": "kort", "PAYPAL": "PayPal", "INVOICE": "banköverföring"},
    },
    "decline": {
        "en": {
            "insufficient_funds": "insufficient funds",
            "card_declined": "the card was declined",
            "expired_card": "the card has expired",
            "processing_error": "the card issuer could not process the payment",
            "lost_card": "the card was reported lost",
            "stolen_card": "the card was reported stolen",
            "incorrect_number": "the card number is wrong",
            "payment_method_unavailable": "the payment method was removed",
            "": "the payment was declined",
        },
        "nb": {
            "insufficient_funds": "ikke nok dekning på kontoen",
            "card_declined": "kortet ble avvist",
            "expired_card": "kortet er utløpt",
            "processing_error": "kortutstederen kunne ikke behandle betalingen",
            "lost_card": "kortet er meldt tapt",
            "stolen_card": "kortet er meldt stjålet",
            "incorrect_number": "kortnummeret er feil",
            "payment_method_unavailable": "betalingsmåten er fjernet",
            "": "betalingen ble avvist",
        },
        "fr": {
            "insufficient_funds": "provision insuffisante",
            "card_declined": "la carte a été refusée",
            "expired_card": "la carte a expiré",
            "processing_error": "l'émetteur de la carte n'a pas pu traiter le paiement",
            "lost_card": "la carte a été déclarée perdue",
            "stolen_card": "la carte a été déclarée volée",
            "incorrect_number": "le numéro de carte est erroné",
            "payment_method_unavailable": "le moyen de paiement a été supprimé",
            "": "le paiement a été refusé",
        },
        "sv": {
            "insufficient_funds": "otillräckligt saldo",
            "card_declined": "kortet nekades",
            "expired_card": "kortet har gått ut",
            "processing_error": "kortutgivaren kunde inte behandla betalningen",
            "lost_card": "kortet har anmälts förlorat",
            "stolen_card": "kortet har anmälts stulet",
            "incorrect_number": "kortnumret är fel",
            "payment_method_unavailable": "betalningssättet har tagits bort",
            "": "betalningen nekades",
        },
    },
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    language: str


def _locale(ctx: Context) -> str:
    return ctx.get("language", "en")


@pass_context
def _money(ctx: Context, amount: Decimal | None, currency: str | None = None) -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency or ctx["currency_code"], locale=_locale(ctx))


@pass_context
def _date(ctx: Context, value: date | None) -> str:
    if value is None:
        return ""
    return format_date(value, format="long", locale=_locale(ctx))


@pass_context
def _number(ctx: Context, value: int | Decimal | None) -> str:
    if value is None:
        return ""
    return format_decimal(value, locale=_locale(ctx))


def _label(table: str):
    @pass_context
    def label(ctx: Context, value: str | None) -> str:
        words = LABELS[table][_locale(ctx)]
        if value in words:
            return words[value]
        return words.get("", (value or "").replace("_", " ").lower())

    return label


def _environment(*, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=_money,
        date=_date,
        number=_number,
        term=_label("term"),
        plan=_label("plan"),
        role=_label("role"),
        decline=_label("decline"),
        method=_label("method"),
    )
    return env


def _block(template: Template, name: str, variables: Mapping[str, object]) -> str:
    context = template.new_context(dict(variables))
    return "".join(template.blocks[name](context))


class Renderer:
    """Renders one kind of e-mail in one language. Thread-safe (Jinja2 environments are)."""

    def __init__(self) -> None:
        self._text = _environment(html=False)
        self._html = _environment(html=True)

    def render(self, kind: Kind, language: str | None, facts: MailFacts) -> Rendered:
        lang = resolve_language(language)
        variables = facts.as_dict() | {"language": lang}
        name = f"{lang}/{kind.template_name}.j2"
        text_template = self._text.get_template(name)
        subject = " ".join(_block(text_template, "subject", variables).split())
        body = _block(text_template, "text", variables).strip()
        html_template = self._html.get_template(name)
        html_body = _block(html_template, "html", variables).strip()

        footer = f"{lang}/_footer.j2"
        text_footer = _block(self._text.get_template(footer), "text", variables).strip()
        html_footer = _block(self._html.get_template(footer), "html", variables).strip()
        text = f"{body}\n\n-- \n{text_footer}\n"
        html = self._html.get_template("layout.html.j2").render(
            language=lang, subject=subject, content=Markup(html_body), footer=Markup(html_footer)
        )
        return Rendered(subject=subject, text=text, html=html, language=lang)
