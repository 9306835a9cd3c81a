"""The fonts of the PDF documents (invoices, credit notes, quotes): Roboto Regular and Bold (Apache
License 2.0, LICENSE beside them; from the font_roboto package), reduced to the scripts a document prints
(Latin with its extensions and Vietnamese, Greek, Cyrillic, punctuation, currency and math signs) without
hinting or layout tables, which the documents do not use.

Half the glyphs of the full font: a document's first step, parsing both fonts, and its last, embedding
the glyphs it used, each take about half the time (an invoice PDF in 34 ms instead of 57 ms).
`python tools/fonts.py` makes them again; tests/unit/shared/test_fonts.py checks they are what it makes."""

from __future__ import annotations

from pathlib import Path

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
