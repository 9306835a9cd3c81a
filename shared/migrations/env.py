"""Alembic environment shared by every service: the engine and metadata come from the caller."""

from __future__ import annotations

from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.types import TypeDecorator

cfg = context.config
metadata = cfg.attributes["metadata"]
engine = cfg.attributes["engine"]


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write a project-defined column type (and SQLModel's AutoString) as the SQLAlchemy type it stores,
    so a generated revision imports nothing from the project and a later change to that type cannot change
    what an old revision does."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
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
