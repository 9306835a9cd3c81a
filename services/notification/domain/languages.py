"""Which language an e-mail is written in."""

from __future__ import annotations

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "nb", "fr", "sv")
FALLBACK_LANGUAGE = "en"

# Primary subtags that read as one of the supported languages.
_ALIASES: dict[str, str] = {
    "en": "en",
    "nb": "nb",
    "no": "nb",  # Norwegian (macrolanguage): written bokmål
    "fr": "fr",
    "sv": "sv",
}


def resolve_language(tag: str | None) -> str:
    """The supported language for a BCP 47 tag (`nb-NO`, `fr_CA`, `SV`); English otherwise."""
    if not tag:
        return FALLBACK_LANGUAGE
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return _ALIASES.get(primary, FALLBACK_LANGUAGE)
