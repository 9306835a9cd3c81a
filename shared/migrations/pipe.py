"""The revisions every service shares: the event pipe's tables (outbox, its cursors, the inbox), the stored
responses of idempotent calls, and the account-team view the permission checks read.

Each function is the body of one step of every service's history, written out as that step made it; the
revisions call them so the four histories cannot drift apart. They are history, not the live tables: a
function here never changes once a revision calls it (a later change to these tables is a new function,
called by a new revision in each service), and this module imports nothing but Alembic and SQLAlchemy.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

#: The tables `create_pipe_tables` makes, in the order `drop_pipe_tables` drops them.
PIPE_TABLES = ("outbox_cursor", "outbox", "inbox", "idempotency")


def create_pipe_tables() -> None:
    """First revision of each service: idempotency, inbox, outbox (without `seq` or `batch`) and the
    subscribers' outbox cursors."""
    op.create_table(
        "idempotency",
        sa.Column("method", sa.String(length=120), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("method", "request_id"),
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("received_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.String(length=80), nullable=False),
        sa.Column("subscription_id", sa.String(length=80), nullable=False),
        sa.Column("occurred_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "outbox_cursor",
        sa.Column("subscriber", sa.String(length=200), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("subscriber"),
    )


def drop_pipe_tables() -> None:
    for name in PIPE_TABLES:
        op.drop_table(name)


def add_outbox_delivery_order() -> None:
    """The outbox's `seq`: the order the relay delivers in (commit order, not id order)."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.create_index("ux_outbox_seq", ["seq"], unique=True)
    # Rows written before this revision were delivered in id order, and each subscriber's cursor
    # counted ids: numbering them by id keeps every cursor where it was.
    op.execute("UPDATE outbox SET seq = id WHERE seq IS NULL")


def drop_outbox_delivery_order() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ux_outbox_seq")
        batch_op.drop_column("seq")


def add_outbox_batch() -> None:
    """The outbox's `batch`: one row standing for many events (written by set-based statements)."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch", sa.Text(), nullable=True))


def drop_outbox_batch() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("batch")


def create_account_members() -> None:
    """`account_members`: the service's view of the account teams, for permission checks."""
    op.create_table(
        "account_members",
        sa.Column("account_id", sa.String(length=80), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "email", "role"),
    )
    with op.batch_alter_table("account_members", schema=None) as batch_op:
        batch_op.create_index("ix_account_members_email", ["email"], unique=False)


def drop_account_members() -> None:
    with op.batch_alter_table("account_members", schema=None) as batch_op:
        batch_op.drop_index("ix_account_members_email")
    op.drop_table("account_members")


def create_test_clock() -> None:
    """The test clock's stored time (one row), so a restarted service resumes at it."""
    op.create_table(
        "test_clock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("now_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def drop_test_clock() -> None:
    op.drop_table("test_clock")
