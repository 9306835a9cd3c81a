"""Tables of the subscription service's own database.

- `products`, `usd_prices`, `exchange_rates`: the catalog and price book (the demo catalog file is loaded on
  first start; exchange rates change through SetExchangeRate). `price_changes`: prices from an effective
  date (SetPrice, rules §10); `price_book_versions`: one row per change of the catalog, whose number every
  order records (`orders.price_book_version`).
- `subscriptions`: one row per subscription, with a `version` column for optimistic concurrency (a
  concurrent change of the same row fails with ABORTED instead of losing an update).
- `orders`: every order and the invoice that billed it (refunds credit the invoices of the current term).
- `lifecycle_transitions`: every stage change (from, to, at, reason); a stage move made by the sweep carries
  the shutoff it belongs to (`period_key`), unique per (subscription, stage, shutoff).
- `renewals`: one row per (subscription, term start): the renewal invoice and whether it was paid, so a
  raced or retried sweep never renews (or bills) one period twice.
- `renewal_reminders`: one row per (subscription, renewal date, days before expiry): each reminder once.

The lifecycle sweep finds due work through `next_action_time` (the earliest instant anything is due for the
subscription) and `due_kind` (0: a change of this service's rows, done set-based; 1: a renewal or another
call to billing), both recomputed on every change, indexed together. `event_profile` holds the part of an
event snapshot that the sweep never changes, encoded when the row is written, so the sweep writes its events
without encoding anything per row.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Index, Integer, Numeric, SmallInteger, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.auth.membership import add_members_table
from shared.db import UTCDateTime


class SubscriptionModel(SQLModel, registry=registry()):
    pass


def _time(nullable: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _money(nullable: bool = False):
    return Field(default=None, sa_column=Column(Numeric(18, 4), nullable=nullable))


class ProductRow(SubscriptionModel, table=True):
    __tablename__ = "products"

    product_code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    shutoff_policy: str = Field(max_length=20)
    release_year: int
    supported: bool = True
    full_product: str = Field(default="", max_length=40)
    contains: str = Field(default="", max_length=400)  # comma-separated product codes
    upgrade_paths: str = Field(default="", max_length=400)  # a suite's collections, comma-separated
    position: int = 0


class UsdPriceRow(SubscriptionModel, table=True):
    __tablename__ = "usd_prices"

    product_code: str = Field(primary_key=True, max_length=40)
    plan: str = Field(primary_key=True, max_length=20)
    term: str = Field(primary_key=True, max_length=20)
    list_price: Decimal = _money()
    renewal_price: Decimal = _money()


class PriceChangeRow(SubscriptionModel, table=True):
    """A USD price of (product, plan, term) from its effective date on (rules §10); one per key and day."""

    __tablename__ = "price_changes"

    product_code: str = Field(primary_key=True, max_length=40)
    plan: str = Field(primary_key=True, max_length=20)
    term: str = Field(primary_key=True, max_length=20)
    effective_date: date = Field(primary_key=True)
    list_price: Decimal = _money()
    renewal_price: Decimal = _money()
    price_book_version: int
    create_time: datetime = _time()


class PriceBookVersionRow(SubscriptionModel, table=True):
    """Each change of the catalog, numbered: the newest number is the price book's version."""

    __tablename__ = "price_book_versions"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    change: str = Field(default="", max_length=400)
    create_time: datetime = _time()


class ExchangeRateRow(SubscriptionModel, table=True):
    __tablename__ = "exchange_rates"

    currency: str = Field(primary_key=True, max_length=3)
    channel_group: str = Field(primary_key=True, max_length=20)
    rate: Decimal = Field(sa_column=Column(Numeric(18, 6), nullable=False))
    period: str = Field(default="", max_length=10)
    update_time: datetime | None = _time(nullable=True)


class SubscriptionRow(SubscriptionModel, table=True):
    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_account", "account_id", "create_time"),
        Index("ix_subscriptions_renewal", "stage", "renewal_time"),
        Index("ix_subscriptions_due", "due_kind", "next_action_time"),
    )

    subscription_id: str = Field(primary_key=True, max_length=80)
    account_id: str = Field(max_length=80)
    product_code: str = Field(max_length=40)
    product_name: str = Field(max_length=200)
    # space-separated codes of the products a seat also grants (a collection's members)
    included_products: str = Field(default="", max_length=400)
    plan: str = Field(max_length=20)
    term: str = Field(max_length=20)
    seats: int
    renewal_seats: int
    currency: str = Field(max_length=3)
    unit_price: Decimal = _money()
    channel: str = Field(max_length=20)
    country_code: str = Field(max_length=2)
    time_zone: str = Field(max_length=64)
    auto_renew: bool
    stage: str = Field(max_length=20)
    start_date: date
    anchor_date: date
    months_from_anchor: int
    current_period_start_date: date
    renewal_date: date
    renewal_time: datetime = _time()  # local midnight of renewal_date, for the lifecycle sweep
    last_order_date: date
    buyer_email: str = Field(max_length=320)
    buyer_name: str = Field(default="", max_length=200)
    buyer_language: str = Field(default="en", max_length=20)
    payment_method_id: str = Field(default="", max_length=80)
    payment_method_type: str = Field(default="", max_length=20)
    partner_name: str = Field(default="", max_length=200)
    shutoff_policy: str = Field(max_length=20)
    pending_term: str = Field(default="", max_length=20)
    pending_product_code: str = Field(default="", max_length=40)
    trial_end_date: date | None = None
    access_until_time: datetime | None = _time(nullable=True)
    upgraded_to: str = Field(default="", max_length=80)
    upgraded_from: str = Field(default="", max_length=80)
    installments: int = 1
    shutoff_reason: str = Field(default="", max_length=40)
    shutoff_start_date: date | None = None
    suspend_time: datetime | None = _time(nullable=True)
    cancel_time: datetime | None = _time(nullable=True)
    shutoff_invoice_id: str = Field(default="", max_length=80)
    last_reminder_days: int | None = None
    prepay_pending: bool = False
    aligned_from_date: date | None = None  # the current term as bought, before an alignment moved it
    aligned_from_anchor_date: date | None = None
    aligned_from_months: int | None = None
    next_action_time: datetime | None = _time(nullable=True)  # earliest instant the sweep has work here
    # the event snapshot's profile fields as proto3 JSON members (`codec.event_profile`), for the sweep
    event_profile: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    due_kind: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, default=0))
    create_time: datetime = _time()
    update_time: datetime = _time()
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))

    __mapper_args__ = {"version_id_col": version.sa_column}  # type: ignore[attr-defined]


class OrderRow(SubscriptionModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_subscription", "subscription_id", "period_start_date"),)

    order_number: str = Field(primary_key=True, max_length=40)
    subscription_id: str = Field(primary_key=True, max_length=80)  # an alignment orders for several
    account_id: str = Field(max_length=80)
    kind: str = Field(max_length=20)  # new, add_seats, renewal, align, upgrade, trial_converted
    invoice_id: str = Field(default="", max_length=80)
    currency: str = Field(max_length=3)
    subtotal: Decimal = _money()
    total: Decimal = _money()
    order_date: date
    period_start_date: date
    request_id: str = Field(default="", max_length=200)
    lines_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    # the price-book version the order was priced from (rules §10); 0 for orders placed before versions
    price_book_version: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, default=0, server_default="0")
    )
    create_time: datetime = _time()


class TransitionRow(SubscriptionModel, table=True):
    __tablename__ = "lifecycle_transitions"
    __table_args__ = (
        Index("ix_transitions_subscription", "subscription_id", "id"),
        Index("ux_transitions_period", "subscription_id", "to_stage", "period_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(max_length=80)
    from_stage: str = Field(default="", max_length=20)
    to_stage: str = Field(max_length=20)
    transition_time: datetime = _time()
    reason: str = Field(default="", max_length=40)
    period_key: str | None = Field(default=None, max_length=20)  # shutoff start date of a sweep's move


class RenewalRow(SubscriptionModel, table=True):
    """One renewal per (subscription, term start): the unique key that makes a raced sweep harmless."""

    __tablename__ = "renewals"
    __table_args__ = (Index("ix_renewals_invoice", "invoice_id"),)

    subscription_id: str = Field(primary_key=True, max_length=80)
    period_start_date: date = Field(primary_key=True)
    invoice_id: str = Field(default="", max_length=80)
    order_number: str = Field(default="", max_length=40)
    status: str = Field(max_length=20)  # PAID, OPEN (pay by invoice), DECLINED
    create_time: datetime = _time()
    update_time: datetime = _time()


class ReminderRow(SubscriptionModel, table=True):
    """Each renewal reminder once per (subscription, renewal date, days before expiry)."""

    __tablename__ = "renewal_reminders"

    subscription_id: str = Field(primary_key=True, max_length=80)
    renewal_date: date = Field(primary_key=True)
    days_before: int = Field(primary_key=True)
    sent_time: datetime = _time()


#: who holds which role on which account (shared/auth/membership.py), kept from entitlement's events
MEMBERS = add_members_table(SubscriptionModel.metadata)
