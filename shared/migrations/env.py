"""Alembic environment shared by every service: the engine and metadata come from the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy.types import TypeEngine

cfg = context.config
metadata = cfg.attributes["metadata"]
engine = cfg.attributes["engine"]


def render_item(type_: str, obj, autogen_context):
    """Import the module of a project-defined column type, so a generated revision runs as written."""
    if type_ == "type" and isinstance(obj, TypeEngine):
        module = type(obj).__module__
        if not module.startswith("sqlalchemy") and module != "sqlmodel.sql.sqltypes":
            autogen_context.imports.add(f"import {module}")
    return False  # default rendering


def run() -> None:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()


run()
