"""alignment of the current term kept as bought; a suite's upgrade paths

Revision ID: a25b55f94be6
Revises: 3d4defb1958a
Create Date: 2026-12-04 18:29:18.791014

A subscription keeps the renewal date, anchor and months from the anchor its current term had as bought
when an alignment moves them (prorations divide by the days of the term as bought; cancelling undoes the
alignment). Products get the upgrade paths of a suite, and a catalog loaded before this revision gets the
demo catalog's legacy suite (Design & Creation Suite, upgrading to AEC_COLLECTION).
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "a25b55f94be6"
down_revision: str | Sequence[str] | None = "3d4defb1958a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("upgrade_paths", sa.String(length=400), server_default="", nullable=False)
        )

    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("aligned_from_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("aligned_from_anchor_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("aligned_from_months", sa.Integer(), nullable=True))

    _add_the_suite()


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("aligned_from_months")
        batch_op.drop_column("aligned_from_anchor_date")
        batch_op.drop_column("aligned_from_date")

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("upgrade_paths")


# -- the suite, as the demo catalog of this revision's time has it ----------------------------------------
# Plain tables and literal values, so later changes to the catalog code cannot change what this does.

_PRODUCTS = sa.table(
    "products",
    *(
        sa.column(name)
        for name in (
            "product_code",
            "name",
            "kind",
            "shutoff_policy",
            "release_year",
            "supported",
            "full_product",
            "contains",
            "upgrade_paths",
            "position",
        )
    ),
)
_PRICES = sa.table(
    "usd_prices",
    sa.column("product_code"),
    sa.column("plan"),
    sa.column("term"),
    sa.column("list_price", sa.Numeric(18, 4)),
    sa.column("renewal_price", sa.Numeric(18, 4)),
)
# USD per seat per term, Standard plan: (list, renewal); Premium is 1.25 times, rounded half up to cents.
_SUITE_USD = {
    "MONTHLY": ("300.00", "300.00"),
    "ANNUAL": ("2400.00", "2160.00"),
    "THREE_YEAR": ("7200.00", "6480.00"),
}


def _add_the_suite() -> None:
    """Only into a catalog that the demo catalog loaded (it has AEC_COLLECTION) and that has no suite yet;
    an empty catalog is loaded whole at the next start."""
    bind = op.get_bind()
    codes = {r[0] for r in bind.execute(sa.select(_PRODUCTS.c.product_code))}
    if "AEC_COLLECTION" not in codes or "DC_SUITE" in codes:
        return
    position = bind.execute(sa.select(sa.func.max(_PRODUCTS.c.position))).scalar_one() or 0
    bind.execute(
        _PRODUCTS.insert().values(
            product_code="DC_SUITE",
            name="Design & Creation Suite",
            kind="SUITE",
            shutoff_policy="STANDARD",
            release_year=2017,
            supported=True,
            full_product="",
            contains="ACD",
            upgrade_paths="AEC_COLLECTION",
            position=position + 1,
        )
    )
    cent = Decimal("0.01")
    rows = []
    for term, (list_price, renewal_price) in _SUITE_USD.items():
        for plan, factor in (("STANDARD", Decimal(1)), ("PREMIUM", Decimal("1.25"))):
            rows.append(
                {
                    "product_code": "DC_SUITE",
                    "plan": plan,
                    "term": term,
                    "list_price": (Decimal(list_price) * factor).quantize(cent, rounding="ROUND_HALF_UP"),
                    "renewal_price": (Decimal(renewal_price) * factor).quantize(
                        cent, rounding="ROUND_HALF_UP"
                    ),
                }
            )
    bind.execute(_PRICES.insert(), rows)
