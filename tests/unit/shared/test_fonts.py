"""The documents' fonts (shared/fonts) are Roboto reduced to the ranges shared.fonts.RANGES names, exactly
what tools/fonts.py makes from the font_roboto package, and they print the names of the seeds' markets."""

from __future__ import annotations

from importlib.resources import files

from fontTools.ttLib import TTFont

from shared import fonts

SOURCE = files("font_roboto") / "files"


def test_each_font_maps_exactly_the_kept_code_points_of_roboto(tmp_path):
    for name, shipped in (("Roboto-Regular.ttf", fonts.REGULAR), ("Roboto-Bold.ttf", fonts.BOLD)):
        full = TTFont(str(SOURCE / name)).getBestCmap()
        font = TTFont(shipped)
        assert set(font.getBestCmap()) == {u for u in full if fonts.kept(u)}, name
        assert not {"GSUB", "GPOS", "kern", "fpgm"} & set(font.keys()), name
        # and what tools/fonts.py makes now maps the same glyph to each code point
        remade = tmp_path / name
        fonts.reduce(str(SOURCE / name), str(remade))
        assert TTFont(str(remade)).getBestCmap() == font.getBestCmap(), name


def test_the_fonts_print_the_names_of_every_market_and_the_currency_signs():
    cmap = TTFont(fonts.REGULAR).getBestCmap()
    for text in ("Östra Bygg AB", "Łódź", "Ærøskøbing", "Ελλάδα", "Москва", "Nguyễn", "€ £ ¥ ₹ kr −"):
        missing = [c for c in text if c != " " and ord(c) not in cmap]
        assert not missing, (text, missing)
    assert (
        len(TTFont(fonts.REGULAR).getGlyphOrder())
        < len(TTFont(str(SOURCE / "Roboto-Regular.ttf")).getGlyphOrder()) * 0.65
    )


def test_render_sets_windows_1252_text_in_helvetica_and_redraws_anything_else_whole_in_roboto():
    drawn: list[bool] = []

    def draw(text: str):
        def page(pdf: fonts.Document) -> None:
            drawn.append(pdf.embedded)
            pdf.add_page()
            pdf.set_font(fonts.FAMILY, "B", 12)
            pdf.cell(text="Faktura 1 250,00 €")
            pdf.set_font(fonts.FAMILY, "", 10)
            pdf.cell(text=text)

        return page

    western = fonts.render(draw("Malmö – “Östra”"))
    assert drawn == [False]
    assert b"/Helvetica-Bold" in western and b"/FontFile2" not in western
    drawn.clear()
    cyrillic = fonts.render(draw("Москва"))
    assert drawn == [False, True]  # stopped at the first Cyrillic letter, then drawn again whole
    assert b"/FontFile2" in cyrillic and b"Helvetica" not in cyrillic
