"""Every kind renders in every language from real template files, with the key facts formatted
for the language and nothing left unrendered."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.notification.domain.languages import SUPPORTED_LANGUAGES, resolve_language
from services.notification.domain.model import Kind
from services.notification.domain.samples import KEY_FACTS, sample_facts
from services.notification.rendering import TEMPLATE_DIR, Renderer

RENDERER = Renderer()

MONTHS = {
    "en": {6: "June", 7: "July", 10: "October", 12: "December"},
    "nb": {6: "juni", 7: "juli", 10: "oktober", 12: "desember"},
    "fr": {6: "juin", 7: "juillet", 10: "octobre", 12: "décembre"},
    "sv": {6: "juni", 7: "juli", 10: "oktober", 12: "december"},
}


def spaces(text: str) -> str:
    """Babel uses no-break spaces in amounts; compare with plain ones."""
    return re.sub(r"[\u00a0\u202f]", " ", text)


def expected_amount(amount: Decimal, language: str) -> str:
    whole, frac = f"{amount:.2f}".split(".")
    groups = f"{int(whole):,}"
    if language == "en":
        return f"{groups}.{frac}"
    return f"{groups.replace(',', ' ')},{frac}"


def expected_date(d: date, language: str) -> str:
    month = MONTHS[language][d.month]
    return {
        "en": f"{month} {d.day}, {d.year}",
        "nb": f"{d.day}. {month} {d.year}",
        "fr": f"{d.day} {month} {d.year}",
        "sv": f"{d.day} {month} {d.year}",
    }[language]


def expected_fact(name: str, value: object, language: str) -> str:
    if isinstance(value, Decimal):
        return expected_amount(value, language)
    if isinstance(value, date):
        return expected_date(value, language)
    return str(value)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_renders_in_every_language(kind: Kind, language: str) -> None:
    facts = sample_facts(kind)
    out = RENDERER.render(kind, language, facts)
    assert out.language == language
    assert out.subject and "\n" not in out.subject
    for part in (out.subject, out.text, out.html):
        for leftover in ("{{", "}}", "{%", "%}", "None", "Undefined"):
            assert leftover not in part, f"{leftover!r} left in {kind}/{language}: {part[:200]}"
    assert f'<html lang="{language}">' in out.html
    assert facts.recipient_name in out.text
    text, html = spaces(out.text), spaces(out.html)
    for name in KEY_FACTS[kind]:
        value = getattr(facts, name)
        assert value not in (None, ""), f"sample for {kind} lacks {name}"
        want = expected_fact(name, value, language)
        assert want in text, f"{name}={want!r} missing from the {language} text of {kind}"
        assert want in html, f"{name}={want!r} missing from the {language} html of {kind}"


def test_order_number_and_amount_in_the_order_confirmation() -> None:
    facts = replace(sample_facts(Kind.ORDER_CONFIRMATION), order_number="ORD-7777", amount=Decimal("737.84"))
    for language in SUPPORTED_LANGUAGES:
        out = RENDERER.render(Kind.ORDER_CONFIRMATION, language, facts)
        assert "ORD-7777" in out.subject
        assert expected_amount(Decimal("737.84"), language) in spaces(out.text)


@pytest.mark.parametrize("kind", list(Kind))
def test_languages_are_really_translated(kind: Kind) -> None:
    facts = sample_facts(kind)
    subjects = {lang: RENDERER.render(kind, lang, facts).subject for lang in SUPPORTED_LANGUAGES}
    texts = {lang: RENDERER.render(kind, lang, facts).text for lang in SUPPORTED_LANGUAGES}
    assert len(set(subjects.values())) == len(SUPPORTED_LANGUAGES), subjects
    assert len(set(texts.values())) == len(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize(
    ("tag", "used"),
    [("de", "en"), ("", "en"), ("nb-NO", "nb"), ("no", "nb"), ("fr_CA", "fr"), ("SV", "sv"), ("pt-BR", "en")],
)
def test_other_languages_fall_back_to_english(tag: str, used: str) -> None:
    assert resolve_language(tag) == used
    out = RENDERER.render(Kind.SEAT_ASSIGNED, tag, sample_facts(Kind.SEAT_ASSIGNED))
    assert out.language == used
    assert out.subject == RENDERER.render(Kind.SEAT_ASSIGNED, used, sample_facts(Kind.SEAT_ASSIGNED)).subject


def test_html_is_escaped_and_text_is_not() -> None:
    facts = replace(sample_facts(Kind.SEAT_ASSIGNED), product_name="<b>Tools & Co</b>")
    out = RENDERER.render(Kind.SEAT_ASSIGNED, "en", facts)
    assert "&lt;b&gt;Tools &amp; Co&lt;/b&gt;" in out.html
    assert "<b>Tools" not in out.html
    assert "<b>Tools & Co</b>" in out.text


def test_trial_and_expiry_variants() -> None:
    trial = replace(sample_facts(Kind.ORDER_CONFIRMATION), trial=True, order_number="", amount=None)
    out = RENDERER.render(Kind.ORDER_CONFIRMATION, "en", trial)
    assert "trial" in out.subject.lower()
    assert "Total" not in out.text
    off = replace(sample_facts(Kind.RENEWAL_REMINDER), auto_renew=False, days_before=4)
    out = RENDERER.render(Kind.RENEWAL_REMINDER, "sv", off)
    assert "upphör om 4 dagar" in out.subject
    assert "8 juni 2025" not in out.text and "9 juni 2025" in spaces(out.text)  # the expiry date, not renewal


def test_every_template_file_has_the_three_blocks() -> None:
    for language in SUPPORTED_LANGUAGES:
        for kind in Kind:
            source = (TEMPLATE_DIR / language / f"{kind.template_name}.j2").read_text(encoding="utf-8")
            for block in ("subject", "text", "html"):
                assert f"{{% block {block} %}}" in source, f"{language}/{kind.template_name} lacks {block}"
