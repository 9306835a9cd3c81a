"""Accounts billed before billing kept the teams: the migration makes the buyer their profile names
their buyer and primary admin, so the permission table knows them (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from services.billing.app import create
from shared.migrations import config
from shared.settings import SETTINGS

PROFILE = (
    "INSERT INTO billing_profiles (account_id, buyer_email, name, language, country_code, region, city, "
    "postal_code, line1, line2, tax_id, tax_exempt, exemption_certificate, prepay_only, prepay_only_reason, "
    "create_time, update_time) VALUES (:a, :e, '', 'en', 'NO', '', '', '', '', '', '', false, '', false, '', :t, :t)"
)


def test_profiles_buyers_become_members_of_accounts_without_a_team(new_db_url, clock):
    app = create(SETTINGS["billing"](database_url=new_db_url("billing")), clock)
    cfg = config(app.db, "billing")
    command.upgrade(cfg, "f0cf4c482b20")  # account_members exists, empty
    with app.db.engine.begin() as c:
        for account, email in (("a1", " Kari@A.example "), ("a2", ""), ("a3", "bo@b.example")):
            c.execute(text(PROFILE), {"a": account, "e": email, "t": datetime(2024, 1, 1, tzinfo=UTC)})
        c.execute(text("INSERT INTO account_members VALUES ('a3', 'ola@b.example', 'BUYER')"))
    command.upgrade(cfg, "head")
    with app.db.engine.connect() as c:
        rows = sorted(c.execute(text("SELECT account_id, email, role FROM account_members")).all())
    app.db.dispose()
    assert rows == [
        ("a1", "kari@a.example", "BUYER"),
        ("a1", "kari@a.example", "PRIMARY_ADMIN"),
        ("a3", "ola@b.example", "BUYER"),  # a team entitlement already told billing of is left as it is
    ]
