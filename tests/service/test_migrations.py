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


def test_subscriptions_written_before_event_profiles_get_theirs(new_db_url, clock):
    """The revision that adds `event_profile` encodes it for every existing subscription."""
    from dataclasses import replace

    from alembic import command
    from sqlalchemy import text

    from services.subscription.adapters.repository import Repository
    from services.subscription.codec import event_profile
    from shared.migrations import config
    from tests.service.subscription.bulk_load import shape

    settings = SETTINGS["subscription"](database_url=new_db_url("subscription"))
    app = importlib.import_module("services.subscription.app").create(settings, clock)
    app.migrate()
    subs = [replace(shape("idle"), subscription_id=f"sub_{i}", buyer_name=f'Kåre "{i}"') for i in range(3)]
    with app.db.unit_of_work() as uow:
        repo = Repository(uow.session, postgres=app.db.is_postgres)
        for sub in subs:
            repo.add(sub, clock.now())
    command.downgrade(config(app.db, "subscription"), "2bf2ae7fa698")
    with app.db.engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM subscriptions")).keys()
    assert "event_profile" not in columns
    app.migrate()
    with app.db.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT subscription_id, event_profile FROM subscriptions")).all())
    assert stored == {s.subscription_id: event_profile(s) for s in subs}
    app.db.dispose()
