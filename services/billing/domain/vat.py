"""VAT ids, checked offline with python-stdnum: the format and check digits of each country's number.

A billing profile's VAT id is checked against its billing country when it is saved (bad input changes
nothing) and kept in stdnum's compact form (`SE556677889901`; Norway's `923609016MVA`);
documents print it in the country's own format (`NO 923 609 016 MVA`). A country stdnum has no VAT
number for (the United States) keeps the id as given: nothing is known to check it against.
"""

from __future__ import annotations

from types import ModuleType

from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

from shared.errors import InvalidInput

#: stdnum's country codes where they differ from ISO 3166-1 (Greece's VAT prefix is EL)
_VAT_PREFIX = {"GR": "EL"}
#: the suffix a bare company number takes to become the VAT id (a Norwegian org.nr. + MVA)
_VAT_SUFFIX = {"NO": "MVA"}


def _module(country: str) -> ModuleType | None:
    if len(country) != 2 or not country.isalpha():
        return None
    if country.lower() in eu_vat.MEMBER_STATES:
        return eu_vat
    try:
        module = get_cc_module(country.lower(), "vat")
    except ImportError:
        return None
    return module if isinstance(module, ModuleType) else None


def _prefix(country: str) -> str:
    return _VAT_PREFIX.get(country, country)


def normalize_vat_id(country_code: str, vat_id: str) -> str:
    """The VAT id in compact form (an EU id with its country prefix); "" for none.

    Raises InvalidInput (reason VAT_ID_INVALID, field tax_id) when the number is not one of the billing
    country's: a wrong format, a wrong check digit, or another country's prefix.
    """
    raw = (vat_id or "").strip()
    if not raw:
        return ""
    country = (country_code or "").strip().upper()
    module = _module(country)
    if module is None:
        return raw
    prefix = _prefix(country)
    number = raw.upper()
    if module is eu_vat and not number[:2].isalpha():
        number = prefix + number
    suffix = _VAT_SUFFIX.get(country, "")
    if suffix and not number.endswith(suffix):
        number += suffix
    try:
        compact: str = module.validate(number)
    except ValidationError as e:
        raise InvalidInput(
            f"{raw!r} is not a valid VAT id of {country}: {e}",
            field="tax_id",
            reason="VAT_ID_INVALID",
        ) from None
    if module is eu_vat:
        if not compact.startswith(prefix):
            raise InvalidInput(
                f"{raw!r} is a VAT id of another country than the billing country {country}",
                field="tax_id",
                reason="VAT_ID_INVALID",
            )
    return compact


def vat_id_valid(country_code: str, vat_id: str) -> bool:
    """Whether this is a well-formed VAT id of that country (format and check digits; offline)."""
    country = (country_code or "").strip().upper()
    if not (vat_id or "").strip() or _module(country) is None:
        return False
    try:
        normalize_vat_id(country, vat_id)
    except InvalidInput:
        return False
    return True


def format_vat_id(country_code: str, vat_id: str) -> str:
    """The VAT id as the country writes it (`NO 923 609 016 MVA`), or as stored when no format is known."""
    country = (country_code or "").strip().upper()
    module = _module(country)
    fmt = getattr(module, "format", None) if module is not None and module is not eu_vat else None
    if fmt is None:
        return vat_id
    try:
        text: str = fmt(vat_id)
    except (ValidationError, ValueError):
        return vat_id
    return text
