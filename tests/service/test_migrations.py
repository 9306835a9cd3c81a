"""Each service's Alembic history builds exactly the tables its code declares, on both backends."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.migrations import has_history
from shared.settings import SETTINGS

SERVICES = list(SETTINGS)


@pytest.mark.parametrize("service", SERVICES)
def test_upgrade_to_head_matches_the_tables_in_code(service, new_db_url, clock):
    assert has_history(service), (
        f"{service} has no migration history: python tools/make_migration.py {service} ..."
    )
    settings = SETTINGS[service](database_url=new_db_url(service))
    app = importlib.import_module(f"services.{service}.app").create(settings, clock)
    app.migrate()
    app.migrate()  # a second run is a no-op
    with app.db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), app.db.metadata
        )
    app.db.dispose()
    assert diff == []
