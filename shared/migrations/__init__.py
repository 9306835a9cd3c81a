"""Schema migrations with Alembic, one history per service (`services/<name>/migrations/versions`).

`upgrade(db)` brings a service's database to the newest revision; `services.migrate` and every
service's start-up call it. `python tools/make_migration.py <service> "message"` writes a new
revision from the difference between the tables in code and the newest revision.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.db import Database

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def versions_dir(service: str) -> Path:
    return ROOT / "services" / service / "migrations"


def config(db: Database, service: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("version_locations", str(versions_dir(service)))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["metadata"] = db.metadata
    cfg.attributes["engine"] = db.engine
    return cfg


def has_history(service: str) -> bool:
    return any(versions_dir(service).glob("*.py"))


def upgrade(db: Database, service: str) -> None:
    """Bring the database to the newest revision (or create the tables when the service has no history yet)."""
    if not has_history(service):
        db.create_all()
        return
    command.upgrade(config(db, service), "heads")


def revision(db: Database, service: str, message: str) -> None:
    versions_dir(service).mkdir(parents=True, exist_ok=True)
    command.revision(config(db, service), message=message, autogenerate=True)
