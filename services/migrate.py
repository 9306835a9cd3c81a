"""`python -m services.migrate [SERVICE …]`: create or bring up to date each service's tables in its
own database (all four when none is named), then exit. Runs before the services start."""

from __future__ import annotations

import importlib
import logging
import sys

from shared.app import clock_from_env, configure_logging
from shared.settings import SETTINGS

log = logging.getLogger("tenure.migrate")


def migrate(name: str) -> None:
    settings = SETTINGS[name]()
    app = importlib.import_module(f"services.{name}.app").create(settings, clock_from_env())
    app.migrate()
    app.db.dispose()
    log.info("%s: schema ready on %s", name, app.db.dialect)


def main(argv: list[str]) -> int:
    configure_logging()
    names = argv[1:] or list(SETTINGS)
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(SETTINGS)}", file=sys.stderr)
        return 2
    for name in names:
        migrate(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
