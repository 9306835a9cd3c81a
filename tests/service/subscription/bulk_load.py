"""Bulk-loads subscriptions straight into a PostgreSQL subscription database (INSERT … SELECT over
generate_series, no ORM), in shapes whose lifecycle work is due or not, for the sweep's race test and its
benchmark. Every row is built from a real subscription (the domain's own create, the repository's own
column mapping), so the sweep sees rows exactly as the service writes them."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, literal, select
from sqlalchemy.engine import Engine

from services.subscription.adapters.peers import BillingSweep, IssuedInvoice
from services.subscription.adapters.repository import _apply
from services.subscription.adapters.tables import SubscriptionRow
from services.subscription.domain import dates, lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import demo_catalog
from services.subscription.domain.model import Channel, PaymentMethodType, Plan, Stage, Term

SUB = SubscriptionRow.__table__
OSLO = "Europe/Oslo"
START = date(2024, 6, 10)  # bought 2024-06-10 in Oslo: renews 2025-06-10
AS_OF = datetime(2025, 6, 26, 10, 0, tzinfo=UTC)  # 12:00 in Oslo: one piece of work due per due shape


def _base(auto_renew: bool, start: date = START, tz: str = OSLO) -> ops.Subscription:
    req = ops.OrderRequest(
        account_id="acct-bulk",
        buyer_email="kari@example.no",
        buyer_name="Kari Nordmann",
        buyer_language="nb",
        product_code="ACDLT",
        seats=2,
        currency="USD",
        country_code="NO",
        time_zone=tz,
        plan=Plan.STANDARD,
        term=Term.ANNUAL,
        channel=Channel.DIRECT_ONLINE,
        payment_method_id="pm-card",
        payment_method_type=PaymentMethodType.CARD,
        auto_renew=auto_renew,
        start_date=start,
    )
    now = dates.local_midnight(start, tz)
    return ops.create(req, demo_catalog(), "template", now).subscription


def shape(kind: str) -> ops.Subscription:
    """One subscription of a shape. At `AS_OF` (2025-06-26 12:00 Oslo) each shape has exactly one piece of
    work due, and `idle` has none:

    - `renew`: bought 2024-06-10, auto-renew on: renews at 2025-06-10 (REMOTE: a renewal invoice)
    - `expire`: bought 2024-06-20, auto-renew off: Active -> Expired at 2025-06-20
    - `suspend`: Expired since 2025-06-10: -> Suspended at 2025-06-25
    - `cancel`: Suspended, shutoff from 2025-05-01: -> Cancelled at 2025-06-15
    - `remind`: bought 2024-08-01, auto-renew off: the 45-day reminder at 2025-06-16
    - `idle`: bought 2025-01-10, auto-renew on: nothing before its 45-day reminder on 2025-11-25
    """
    if kind == "renew":
        return replace(_base(True), last_reminder_days=4)
    if kind == "expire":
        return replace(_base(False, date(2024, 6, 20)), last_reminder_days=4)
    if kind == "remind":
        return _base(False, date(2024, 8, 1))
    if kind == "idle":
        return _base(True, date(2025, 1, 10))
    sub = _base(False, START if kind == "suspend" else date(2024, 5, 1))
    state, _ = lifecycle.start_shutoff(ops.lifecycle_state(sub), sub.renewal_date, lifecycle.TERM_ENDED)
    shut = ops.with_state(sub, state)
    if kind == "suspend":
        return shut
    if kind == "cancel":
        return replace(shut, stage=Stage.SUSPENDED)
    raise ValueError(kind)


def load(engine: Engine, kind: str, first: int, count: int, *, now: datetime, spread_days: int = 0) -> None:
    """Insert `count` subscriptions of `kind` with ids sub_<first>… in one statement. `spread_days` spreads
    their `next_action_time` over that many days (for idle rows of a benchmark, so the index holds
    distinct instants as it would in production; such rows must stay idle)."""
    row = SubscriptionRow(subscription_id="template", create_time=now)
    _apply(row, shape(kind), now)
    cols = [c for c in SUB.columns if c.name != "subscription_id"]
    g = func.generate_series(first, first + count - 1).table_valued("n").render_derived(name="g")
    values = []
    for c in cols:
        v = getattr(row, c.key)
        if c.name == "version":
            v = 1
        if c.name == "next_action_time" and spread_days:
            values.append(
                (literal(v, type_=c.type) + func.make_interval(0, 0, 0, g.c.n % spread_days)).label(c.name)
            )
            continue
        if isinstance(v, Decimal | str | int | bool | date | datetime) or v is None:
            values.append(literal(v, type_=c.type).label(c.name))
        else:  # pragma: no cover - every column is one of the above
            raise TypeError(c.name)
    sid = (literal("sub_") + func.lpad(func.cast(g.c.n, SUB.c.subscription_id.type), 9, "0")).label(
        "subscription_id"
    )
    stmt = insert(SUB).from_select(
        ["subscription_id", *[c.name for c in cols]], select(sid, *values).select_from(g)
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def distinct_expiring(count: int, zones: list[str]) -> list[ops.Subscription]:
    """`count` annual subscriptions with auto-renew off whose terms ended unrenewed by `AS_OF`, each in a
    lifecycle state of its own (a start date from 2024-05-01 on, in one of `zones`): at `AS_OF` each goes
    Expired, and those whose 15 days are up go on to Suspended."""
    per_zone = -(-count // len(zones))
    if per_zone > 50:
        raise ValueError("give more zones: at most 50 start dates per zone end before AS_OF")
    out = []
    for i in range(count):
        sub = _base(False, date(2024, 5, 1) + timedelta(days=i % per_zone), zones[i // per_zone])
        out.append(replace(sub, subscription_id=f"sub_{i + 1:09d}", last_reminder_days=4))
    return out


def load_subscriptions(engine: Engine, subs: list[ops.Subscription], *, now: datetime) -> None:
    """Insert subscriptions as the repository writes them, in one executemany."""
    rows = []
    for sub in subs:
        row = SubscriptionRow(subscription_id=sub.subscription_id, create_time=now)
        _apply(row, sub, now)
        rows.append({c.name: getattr(row, c.key) if c.name != "version" else 1 for c in SUB.columns})
    with engine.begin() as conn:
        conn.execute(insert(SUB), rows)


class CountingBilling:
    """Billing for sweeps without a billing server: issues one paid invoice per request id (as billing's
    CreateInvoice is idempotent on it) and counts every call, so a test sees a request that came twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def create_invoice(self, *, request_id, sub, order_number, kind, lines, term_start_date) -> IssuedInvoice:
        with self.lock:
            self.calls[request_id] = self.calls.get(request_id, 0) + 1
        total = sum((ln.amount for ln in lines), Decimal(0))
        return IssuedInvoice(f"inv-{request_id}", total, "SUCCEEDED", "", PaymentMethodType.CARD)

    def mark_prepay_only(self, *, request_id, account_id, reason) -> None:
        with self.lock:
            self.calls[request_id] = self.calls.get(request_id, 0) + 1

    def run_sweep(self, as_of) -> BillingSweep:
        return BillingSweep(0, None)
