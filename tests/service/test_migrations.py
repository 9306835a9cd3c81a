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


def test_outbox_rows_written_before_delivery_order_keep_their_place(new_db_url, clock):
    from alembic import command
    from sqlalchemy import text

    from shared.migrations import config

    settings = SETTINGS["billing"](database_url=new_db_url("billing"))
    app = importlib.import_module("services.billing.app").create(settings, clock)
    command.upgrade(config(app.db, "billing"), "2aebcd8a2552")  # the first billing revision
    with app.db.engine.begin() as conn:
        for i in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO outbox (event_id, event_type, account_id, subscription_id, occurred_time, payload)"
                    " VALUES (:e, 'billing.invoice_paid', 'a', 's', :t, :p)"
                ),
                {
                    "e": f"00000000-0000-4000-8000-00000000000{i}",
                    "t": clock.now().replace(tzinfo=None),
                    "p": b"",
                },
            )
    app.migrate()
    with app.db.engine.connect() as conn:
        assert conn.execute(text("SELECT id, seq FROM outbox ORDER BY id")).all() == [(1, 1), (2, 2)]
    app.db.dispose()
