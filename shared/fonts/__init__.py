"""The fonts of the PDF documents (invoices, credit notes, quotes): Roboto Regular and Bold (Apache
License 2.0, LICENSE beside them; from the font_roboto package), reduced to the scripts a document prints
(Latin with its extensions and Vietnamese, Greek, Cyrillic, punctuation, currency and math signs) without
hinting or layout tables, which the documents do not use.

Half the glyphs of the full font: a document's first step, parsing both fonts, and its last, embedding
the glyphs it used, each take about half the time (an invoice PDF in 34 ms instead of 57 ms).
`python tools/fonts.py` makes them again; tests/unit/shared/test_fonts.py checks they are what it makes.

Most documents need neither: `render` sets a document in the PDF standard font Helvetica when every
character of it is in Windows-1252 (every Western European language, the euro sign included), which
every PDF reader has, so there is no font to parse or embed (an invoice in a fifth of the time, a tenth of
the size); a document with any other character ('Łódź') is set again, whole, in the embedded Roboto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TextEmphasis
from fpdf.errors import FPDFUnicodeEncodingException

DIR = Path(__file__).parent
REGULAR = str(DIR / "Roboto-Regular.ttf")
BOLD = str(DIR / "Roboto-Bold.ttf")
#: the code points kept (those of them Roboto has)
RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x052F),  # Latin-1, Latin Extended-A/B, IPA, diacritics, Greek, Cyrillic and its supplement
    (0x1E00, 0x1FFF),  # Latin Extended Additional (Vietnamese, Welsh), Greek Extended
    (0x2000, 0x22FF),  # punctuation, super/subscripts, currency signs, letterlike, arrows, math
    (0xFB00, 0xFB06),  # Latin ligatures
    (0xFFFD, 0xFFFD),  # the replacement character
)


def kept(codepoint: int) -> bool:
    return any(low <= codepoint <= high for low, high in RANGES)


def reduce(source: str, target: str) -> int:
    """Write `source` reduced to `RANGES` (no hinting, no layout tables) to `target`; returns its glyphs."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(source, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "DSIG"]
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[u for u in font.getBestCmap() if kept(u)])
    subsetter.subset(font)
    font.save(target)
    return len(font.getGlyphOrder())


#: the documents' font family: Helvetica or the embedded Roboto, as `render` decides
FAMILY = "Doc"
_CORE = "helvetica"
_EMBEDDED = "roboto"


class Document(FPDF):
    """An A4 fpdf2 document whose family `FAMILY` is Helvetica (Windows-1252) or the embedded Roboto."""

    def __init__(self, *, embedded: bool) -> None:
        super().__init__(format="A4")
        self.embedded = embedded
        if embedded:
            self.add_font(_EMBEDDED, "", REGULAR)
            self.add_font(_EMBEDDED, "B", BOLD)
        else:
            self.core_fonts_encoding = "windows-1252"  # the euro sign and typographic dashes and quotes

    def set_font(self, family: str | None = None, style: str | TextEmphasis = "", size: float = 0) -> None:
        if family is not None and family.lower() == FAMILY.lower():
            family = _EMBEDDED if self.embedded else _CORE
        super().set_font(family, style, size)


def render(draw: Callable[[Document], None]) -> bytes:
    """The PDF that `draw` writes: in Helvetica when all its text is Windows-1252, otherwise (the first
    character outside it stops the drawing) drawn again in the embedded Roboto."""
    try:
        pdf = Document(embedded=False)
        draw(pdf)
    except FPDFUnicodeEncodingException:
        pdf = Document(embedded=True)
        draw(pdf)
    return bytes(pdf.output())
