"""Each service's Alembic history builds exactly the tables its code declares, on both backends."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.migrations import has_history
from shared.settings import SETTINGS

SERVICES = list(SETTINGS)
ROOT = Path(__file__).resolve().parents[2]
REVISIONS = sorted(ROOT.glob("services/*/migrations/*.py"))
#: What a revision may import: the shared revision bodies, which are history too (never the live tables).
REVISION_IMPORTS = {"shared.migrations", "shared.migrations.pipe"}


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


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", REVISIONS, ids=lambda p: f"{p.parts[-3]}/{p.stem[:12]}")
def test_a_revision_stands_alone(path):
    """A revision carries its own tables and data code: a later change to the live tables, the domain or
    a codec cannot change what it does."""
    project = {n for n in _imports(path) if n.split(".")[0] in {"services", "shared", "tenure"}}
    assert project <= REVISION_IMPORTS, f"{path.name} imports {sorted(project - REVISION_IMPORTS)}"
    assert "sqlmodel" not in {n.split(".")[0] for n in _imports(path)}


def test_the_shared_revision_bodies_import_only_alembic_and_sqlalchemy():
    roots = {n.split(".")[0] for n in _imports(ROOT / "shared" / "migrations" / "pipe.py")}
    assert roots <= {"__future__", "alembic", "sqlalchemy"}


def _event_profile_revision():
    path = next(ROOT.glob("services/subscription/migrations/be82ba077e32_*.py"))
    spec = importlib.util.spec_from_file_location("revision_be82ba077e32", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_event_profile_revision_writes_what_the_codec_wrote():
    """The revision's own copy of the profile encoding gives the codec's bytes for subscriptions of every
    kind of price, channel, plan, name and collection."""
    from dataclasses import replace
    from decimal import Decimal
    from types import SimpleNamespace

    from services.subscription.codec import event_profile
    from services.subscription.domain.model import Channel, Plan, ShutoffPolicy
    from tests.service.subscription.bulk_load import shape

    revision = _event_profile_revision()
    base = shape("idle")
    variants = [
        base,
        replace(base, buyer_name='Kåre "Ø" \\ <x>', buyer_language="nb"),
        replace(base, buyer_name="", buyer_email="", product_name=""),
        replace(base, unit_price=Decimal("0"), currency="USD"),
        replace(base, unit_price=Decimal("0.50"), currency="EUR"),
        replace(base, unit_price=Decimal("1200"), currency="JPY"),
        replace(base, unit_price=Decimal("12.345"), currency="BHD"),
        replace(base, unit_price=Decimal("99.9900"), currency="NOK"),
        replace(
            base, plan=Plan.PREMIUM, channel=Channel.PARTNER_QUOTE, shutoff_policy=ShutoffPolicy.IMMEDIATE
        ),
        replace(base, channel=Channel.RESELLER, seats=0, renewal_seats=0),
        replace(base, seats=250, renewal_seats=7, included_product_codes=("ACDLT", "PHSTD")),
    ]
    for sub in variants:
        row = SimpleNamespace(
            subscription_id=sub.subscription_id,
            account_id=sub.account_id,
            product_code=sub.product_code,
            product_name=sub.product_name,
            plan=sub.plan.value,
            seats=sub.seats,
            shutoff_policy=sub.shutoff_policy.value,
            unit_price=sub.unit_price,
            currency=sub.currency,
            buyer_email=sub.buyer_email,
            buyer_name=sub.buyer_name,
            buyer_language=sub.buyer_language,
            channel=sub.channel.value,
            renewal_seats=sub.renewal_seats,
            included_products=" ".join(sub.included_product_codes),
        )
        assert revision.event_profile(row) == event_profile(sub), sub
