"""Wire conversions every service shares: `google.protobuf.Timestamp` and `google.type.Date`.

Money lives in `shared.money` (`to_proto`/`from_proto`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from shared.errors import InvalidInput


def timestamp(dt: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp for an aware datetime (None stays None, so an unset field stays unset)."""
    if dt is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(dt)
    return ts


def time_of(msg: timestamp_pb2.Timestamp) -> datetime:
    """An aware UTC datetime from a Timestamp."""
    return msg.ToDatetime(tzinfo=UTC)


def date_pb(d: date | None) -> date_pb2.Date | None:
    return None if d is None else date_pb2.Date(year=d.year, month=d.month, day=d.day)


def date_of(msg: date_pb2.Date, field: str) -> date | None:
    """A calendar date, None for an unset Date, or InvalidInput naming `field`."""
    if msg.year == 0 and msg.month == 0 and msg.day == 0:
        return None
    try:
        return date(msg.year, msg.month, msg.day)
    except ValueError:
        raise InvalidInput(f"{field} is not a valid calendar date", field=field) from None
