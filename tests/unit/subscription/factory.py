"""Builders for subscription unit tests (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import Catalog, demo_catalog
from services.subscription.domain.model import Channel, PaymentMethodType, Plan, Term

OSLO = "Europe/Oslo"


def at(day: date, tz: str = OSLO, hour: int = 12) -> datetime:
    """Noon (by default) of a local date, as a UTC instant."""
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def order(**kw) -> ops.OrderRequest:
    fields = dict(
        account_id="acct-1",
        buyer_email="kari@example.no",
        buyer_name="Kari Nordmann",
        buyer_language="nb",
        product_code="ACDLT",
        seats=1,
        currency="USD",
        country_code="NO",
        time_zone=OSLO,
        plan=Plan.STANDARD,
        term=Term.ANNUAL,
        channel=Channel.DIRECT_ONLINE,
        payment_method_id="pm-card",
        payment_method_type=PaymentMethodType.CARD,
        start_date=date(2024, 6, 10),
    )
    fields.update(kw)
    return ops.OrderRequest(**fields)


def bought(
    catalog: Catalog | None = None, sid: str = "sub-1", now: datetime | None = None, **kw
) -> ops.Subscription:
    req = order(**kw)
    start = req.start_date or date(2024, 6, 10)
    return ops.create(req, catalog or demo_catalog(), sid, now or at(start, req.time_zone)).subscription
