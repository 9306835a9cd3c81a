"""Alembic environment shared by every service: the engine and metadata come from the caller."""

from __future__ import annotations

from alembic import context

cfg = context.config
metadata = cfg.attributes["metadata"]
engine = cfg.attributes["engine"]


def run() -> None:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run()
