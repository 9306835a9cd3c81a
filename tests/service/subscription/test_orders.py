"""The subscription service over gRPC, beside the real billing service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tenure.subscription.v1 import subscription_pb2 as pb

from .conftest import day, money, rid


def test_oslo_annual_purchase_and_three_seats_added_on_1_december(stack):
    created = stack.buy(seats=2, start_date=day(2024, 6, 10))
    s = created.subscription
    assert created.order_number.startswith("ORD-") and created.invoice_id
    assert (s.renewal_date.year, s.renewal_date.month, s.renewal_date.day) == (2025, 6, 10)
    assert (s.expiry_date.year, s.expiry_date.month, s.expiry_date.day) == (2025, 6, 9)
    assert s.renewal_time.ToDatetime(tzinfo=UTC) == datetime(2025, 6, 9, 22, 0, tzinfo=UTC)
    assert money(s.unit_price) == Decimal("470.00")
    stack.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    added = stack.sub.AddSeats(
        pb.AddSeatsRequest(request_id=rid(), subscription_id=s.subscription_id, seats=3)
    )
    assert money(added.prorated_amount) == Decimal("737.84")
    assert added.subscription.seats == 5 and added.subscription.renewal_seats == 5
    assert added.invoice_id and added.invoice_id != created.invoice_id
    assert money(added.total) >= Decimal("737.84")
