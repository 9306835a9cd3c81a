"""outbox batch rows and event profile

Revision ID: be82ba077e32
Revises: 2bf2ae7fa698
Create Date: 2026-12-03 08:45:45.423540
"""

import json
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.migrations import pipe

revision: str = "be82ba077e32"
down_revision: str | Sequence[str] | None = "2bf2ae7fa698"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pipe.add_outbox_batch()
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_profile", sa.Text(), server_default="", nullable=False))
    _backfill_event_profiles()


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("event_profile")
    pipe.drop_outbox_batch()


# -- the backfill, as the code of this revision's time wrote the profile ---------------------------------
# It reads and writes plain columns and builds the JSON itself, so later changes to the tables, the domain
# or the codec cannot change what this revision does.

_SUBSCRIPTIONS = sa.table(
    "subscriptions",
    *(
        sa.column(name)
        for name in (
            "subscription_id",
            "account_id",
            "product_code",
            "product_name",
            "plan",
            "seats",
            "shutoff_policy",
            "currency",
            "buyer_email",
            "buyer_name",
            "buyer_language",
            "channel",
            "renewal_seats",
            "included_products",
        )
    ),
    sa.column("unit_price", sa.Numeric(18, 4)),  # Decimal on both backends (SQLite keeps a float)
    sa.column("event_profile", sa.Text()),
)

# ISO 4217 minor units of the currencies prices were kept in (shared/money.py at this revision).
_MINOR_UNITS = {
    "USD": 2,
    "EUR": 2,
    "NOK": 2,
    "SEK": 2,
    "DKK": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
}
_NANOS = Decimal(1_000_000_000)


def _money(amount: Any, currency: str) -> dict[str, Any]:
    """google.type.Money as proto3 JSON: the amount rounded half up to the currency's minor unit."""
    if currency not in _MINOR_UNITS:
        raise ValueError(f"subscription priced in unknown currency {currency!r}")
    if isinstance(amount, float):
        raise TypeError("money is never a float")
    d = Decimal(amount).quantize(Decimal(1).scaleb(-_MINOR_UNITS[currency]), rounding=ROUND_HALF_UP)
    units = int(d)
    nanos = int(((d - units) * _NANOS).to_integral_value())
    out: dict[str, Any] = {"currencyCode": currency}
    if units:
        out["units"] = str(units)  # int64 is a string in proto3 JSON
    if nanos:
        out["nanos"] = nanos
    return out


def event_profile(row: Any) -> str:
    """The members (no braces) of the proto3 JSON of the event snapshot's profile fields
    (tenure.events.v1.SubscriptionSnapshot, fields in number order, defaults left out) of a row."""
    fields: list[tuple[str, Any]] = [
        ("subscriptionId", row.subscription_id),
        ("accountId", row.account_id),
        ("productCode", row.product_code),
        ("productName", row.product_name),
        ("plan", f"PLAN_{row.plan}" if row.plan else ""),
        ("seats", row.seats),
        ("shutoffPolicy", f"SHUTOFF_POLICY_{row.shutoff_policy}" if row.shutoff_policy else ""),
        ("unitPrice", _money(row.unit_price, row.currency)),
        ("buyerEmail", row.buyer_email),
        ("buyerName", row.buyer_name),
        ("buyerLanguage", row.buyer_language),
        ("channel", f"CHANNEL_{row.channel}" if row.channel else ""),
        ("renewalSeats", row.renewal_seats),
        ("includedProductCodes", (row.included_products or "").split()),
    ]
    members = {key: value for key, value in fields if value or key == "unitPrice"}
    return json.dumps(members, ensure_ascii=False, separators=(",", ":"))[1:-1]


def _backfill_event_profiles(chunk: int = 1000) -> None:
    """Encode the profile of every existing subscription, as the repository did on every write."""
    t = _SUBSCRIPTIONS
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(
            sa.select(t).where(t.c.subscription_id > last).order_by(t.c.subscription_id).limit(chunk)
        ).all()
        if not rows:
            break
        for row in rows:
            bind.execute(
                t.update()
                .where(t.c.subscription_id == row.subscription_id)
                .values(event_profile=event_profile(row))
            )
        last = rows[-1].subscription_id
