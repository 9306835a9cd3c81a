"""Make shared/fonts/*.ttf from the font_roboto package (see shared/fonts/__init__.py)."""

from __future__ import annotations

import shutil
from importlib.resources import files

from shared import fonts

SOURCE = files("font_roboto") / "files"


def main() -> None:
    for name, target in (("Roboto-Regular.ttf", fonts.REGULAR), ("Roboto-Bold.ttf", fonts.BOLD)):
        glyphs = fonts.reduce(str(SOURCE / name), target)
        print(f"{target}: {glyphs} glyphs")
    shutil.copyfile(str(SOURCE / "LICENSE"), fonts.DIR / "LICENSE")


if __name__ == "__main__":
    main()
