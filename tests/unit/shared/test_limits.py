"""Field limits, declared once per field name and checked on every request (shared/grpc/limits.py)."""

from __future__ import annotations

from google.type import date_pb2, money_pb2

from shared.grpc.limits import violations
from tenure.billing.v1 import billing_pb2
from tenure.notification.v1 import notification_pb2
from tenure.subscription.v1 import subscription_pb2


def test_a_valid_order_keeps_every_limit():
    req = subscription_pb2.CreateSubscriptionRequest(
        request_id="r-1",
        account_id="acct-1",
        product_code="ACDLT",
        seats=3,
        currency_code="NOK",
        country_code="NO",
        time_zone="Europe/Oslo",
    )
    assert violations(req) == []


def test_each_violation_names_its_field_path():
    req = billing_pb2.CreateInvoiceRequest(time_zone="x" * (1024 * 1024), currency_code="usd")
    req.lines.add(description="y" * 1001, unit_price=money_pb2.Money(currency_code="USD", units=2**62))
    got = dict(violations(req))
    assert got["time_zone"] == "at most 64 characters (1048576 given)"
    assert got["currency_code"].startswith("not a three-letter ISO 4217 currency code")
    assert got["lines[0].description"] == "at most 1000 characters (1001 given)"
    assert got["lines[0].unit_price.units"].startswith("at most 1000000000000 units")


def test_zones_timestamps_dates_money_signs_and_lists():
    assert dict(violations(billing_pb2.CreateInvoiceRequest(time_zone="Europe/Nowhere"))) == {
        "time_zone": "not an IANA time zone: 'Europe/Nowhere'"
    }
    run = subscription_pb2.RunLifecycleRequest()
    run.as_of_time.seconds = 253402300800  # the year 10000
    assert violations(run) == [("as_of_time", "must lie between 1900-01-01 and 2999-12-31")]
    upd = billing_pb2.PayInvoiceRequest(invoice_id="\x00")
    assert violations(upd) == [("invoice_id", "must not contain NUL characters")]
    money = money_pb2.Money(currency_code="USD", units=1, nanos=-5)
    assert violations(money) == [("nanos", "units and nanos must have the same sign")]
    assert violations(date_pb2.Date(year=2023, month=2, day=30)) == [("", "not a calendar date: 2023-02-30")]
    align = subscription_pb2.AlignRenewalDatesRequest(subscription_ids=["s"] * 501)
    assert violations(align) == [("subscription_ids", "at most 500 items (501 given)")]
    seats = subscription_pb2.AddSeatsRequest(seats=10_001)
    assert violations(seats) == [("seats", "must be between 0 and 10000 (10001 given)")]


def test_map_fields_are_checked_key_and_value():
    req = notification_pb2.RenderTemplateRequest()
    req.fields["k" * 201] = "v"
    req.fields["ok"] = "v" * 2001
    got = [path for path, _ in violations(req)]
    assert any(p.endswith(".key") for p in got) and any(p == "fields['ok']" for p in got)


def test_an_events_sequence_is_its_outbox_position_and_has_no_small_bound():
    """An installment's sequence stays within 0-1000; an event's is the outbox position, which passes
    1000 after a thousand events (a delivery was refused from the 1001st on)."""
    from tenure.events.v1 import events_pb2

    deliver = events_pb2.DeliverRequest(
        event=events_pb2.Event(event_id="e", event_type="t", sequence=1_000_001)
    )
    assert violations(deliver) == []
    assert violations(events_pb2.DeliverRequest(event=events_pb2.Event(sequence=-1))) == [
        ("event.sequence", f"must be between 0 and {2**63 - 1} (-1 given)")
    ]
    installment = billing_pb2.Installment(sequence=1_001)
    assert violations(installment) == [("sequence", "must be between 0 and 1000 (1001 given)")]
