"""`python tools/make_migration.py <service> "message"`: write the next Alembic revision of a service
from the difference between its tables in code and its newest revision (against a scratch SQLite file)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.clock import SystemClock
from shared.migrations import has_history, revision
from shared.settings import SETTINGS


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in SETTINGS:
        print(__doc__, file=sys.stderr)
        return 2
    service, message = argv[1], argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        settings = SETTINGS[service](database_url=f"sqlite:///{Path(tmp) / 'scratch.db'}")
        app = importlib.import_module(f"services.{service}.app").create(settings, SystemClock())
        if has_history(service):
            from alembic import command

            from shared.migrations import config

            command.upgrade(config(app.db, service), "heads")
        revision(app.db, service, message)
        app.db.dispose()
    # Generated revisions follow the project's style like any other file.
    ruff = Path(sys.executable).parent / "ruff"
    target = str(Path(__file__).resolve().parent.parent / "services" / service / "migrations")
    subprocess.run([str(ruff), "check", "--fix", "--unsafe-fixes", "-q", target], check=False)
    subprocess.run([str(ruff), "format", "-q", target], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
