"""Fixtures shared by every test: databases on SQLite and (when reachable) PostgreSQL,
a test clock, and real services started on port 0.

Storage tests take the `backend` fixture (directly or through `new_db_url`/`start_service`)
and so run once on SQLite and once on PostgreSQL. PostgreSQL tests use a fresh database
made for the run (`tenure_test_<pid>`) and dropped after it; each test gets its own schema.
Set TENURE_TEST_PG_URL to point at another server, or TENURE_TEST_PG=0 to skip it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.clock import TestClock

# Every service started by the tests (in-process or as a process) trusts the key made here for this run;
# tests/auth.py signs their tokens with it.
os.environ.setdefault("TENURE_AUTH_KEY_DIR", tempfile.mkdtemp(prefix="tenure-auth-"))

PG_ADMIN_URL = os.environ.get("TENURE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> bool:
    if os.environ.get("TENURE_TEST_PG", "1") == "0":
        return False
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


PG_AVAILABLE = _pg_reachable()


@pytest.fixture(scope="session")
def pg_run_url() -> Iterator[str]:
    """A database made for this test run, dropped after it."""
    if not PG_AVAILABLE:
        pytest.skip("PostgreSQL is not reachable")
    name = f"tenure_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def backend(request) -> str:
    if request.param == "postgresql" and not PG_AVAILABLE:
        pytest.skip("PostgreSQL is not reachable")
    return request.param


@pytest.fixture
def new_db_url(backend, tmp_path, request) -> Iterator[Callable[[str], str]]:
    """Factory of fresh, empty database URLs on the test's backend (one per label)."""
    schemas: list[str] = []
    admin = None
    if backend == "postgresql":
        run_url = request.getfixturevalue("pg_run_url")
        admin = create_engine(run_url, isolation_level="AUTOCOMMIT")

    def make(label: str = "db") -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / (label + '.db')}"
        schema = f"t_{label}_{uuid.uuid4().hex[:10]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        u = make_url(run_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return u.render_as_string(hide_password=False)

    yield make
    if admin is not None:
        with admin.connect() as c:
            for s in schemas:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> TestClock:
    return TestClock(datetime(2024, 6, 10, 8, 0, tzinfo=UTC))


@pytest.fixture
def start_service(new_db_url, clock) -> Iterator[Callable[..., object]]:
    """Start a real service on port 0: `app = start_service("billing", event_subscribers=...)`.

    Returns the `ServiceApp` (its `.port` is bound, `.addr` is `127.0.0.1:<port>`). Every
    setting can be overridden by keyword. Started services stop at the end of the test.
    """
    from shared.settings import SETTINGS

    started = []

    def start(name: str, create: Callable | None = None, **overrides):
        own_clock = overrides.pop("clock_override", clock)  # a process of its own (a restart): its own clock
        if create is None:
            module = __import__(f"services.{name}.app", fromlist=["create"])
            create = module.create
        overrides.setdefault("database_url", new_db_url(name))
        overrides.setdefault("addr", "127.0.0.1:0")
        overrides.setdefault("metrics_addr", "")  # no metrics endpoint unless a test asks for one (port 0)
        overrides.setdefault("event_subscribers", "")
        overrides.setdefault("relay_interval_seconds", 0.05)
        overrides.setdefault("relay_max_backoff_seconds", 0.5)
        settings = SETTINGS[name](**overrides) if name in SETTINGS else overrides["settings"]
        app = create(settings, own_clock)
        app.start()
        app.addr = f"127.0.0.1:{app.port}"
        started.append(app)
        return app

    yield start
    for app in reversed(started):
        app.stop(grace=0)
