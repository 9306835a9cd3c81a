"""The version column: a change made from a stale read fails with Conflict (ABORTED on the wire)
instead of overwriting a concurrent change. On SQLite writers are serialized by BEGIN IMMEDIATE, so two
writers can never interleave; the stale write can only be staged on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.subscription.adapters.repository import Repository, load_catalog, seed_catalog
from services.subscription.adapters.tables import SubscriptionModel
from services.subscription.domain import subscription as ops
from shared.db import Database
from shared.errors import Conflict
from tests.unit.subscription.factory import order


def test_a_stale_write_is_refused_and_nothing_is_lost(backend, new_db_url, clock):
    if backend == "sqlite":
        pytest.skip("SQLite serializes writers: a stale write cannot be staged")
    db = Database(new_db_url("subscription"), SubscriptionModel.metadata, clock, source="subscription")
    db.create_all()
    try:
        now = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
        with db.unit_of_work() as uow:
            seed_catalog(uow.session)
        with db.unit_of_work() as uow:
            catalog = load_catalog(uow.session)
            sub = ops.create(order(), catalog, "sub-1", now).subscription
            Repository(uow.session, postgres=True).add(sub, now)

        with pytest.raises(Conflict):
            with db.unit_of_work() as stale:
                repo_a = Repository(stale.session, postgres=True)
                a = repo_a.get("sub-1")  # read without the row lock
                with db.unit_of_work() as fresh:
                    repo_b = Repository(fresh.session, postgres=True)
                    b = repo_b.get("sub-1", lock=True)
                    repo_b.save(replace(b, seats=b.seats + 2, renewal_seats=b.renewal_seats + 2), now)
                repo_a.save(replace(a, seats=a.seats + 5, renewal_seats=a.renewal_seats + 5), now)

        with db.read() as s:
            final = Repository(s).get("sub-1")
        assert final.seats == 3 and final.version == 2
    finally:
        db.dispose()
