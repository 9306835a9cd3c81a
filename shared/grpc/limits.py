"""Limits on every input, declared once per field name and checked on every request before any work.

The check walks the request by its descriptor, so a new RPC or field is covered without code: a string
field is at most `STRING_LIMITS[name]` characters (`DEFAULT_STRING` otherwise), a repeated field holds at
most `ITEM_LIMITS[name]` items, a number named in `INT_RANGES` (by its full name, or else its name) stays in its range, money is at most 10^12
units with nanos of the same sign, a timestamp or date lies between 1900 and 2999 (what every service
can compute with: a term or a due date added to it still fits), a zone is an IANA zone. Each violation
names its field path (`lines[2].description`); the request is refused with all of them at once.

Rules that need more than one field (the request's currency, seats against the catalog) stay in the
handlers; these limits only keep what reaches them representable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

#: the largest request a server accepts: PO documents (each at most 2 MiB, rules §5) with room for a few
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

DEFAULT_STRING = 200
STRING_LIMITS: dict[str, int] = {
    # ids and numbers
    "request_id": 256,  # a person's or operator's at most 128 (checked with the caller), services derive longer
    "page_token": 200,
    "order_number": 40,
    "invoice_number": 40,
    "credit_note_number": 40,
    "card_number": 32,
    # people and addresses
    "email": 254,
    "buyer_email": 254,
    "user_email": 254,
    "actor_email": 254,
    "recipient_email": 254,
    "paypal_email": 254,
    "payer_emails": 254,
    "country_code": 2,
    "currency_code": 3,
    "language": 35,
    "buyer_language": 35,
    "time_zone": 64,
    "postal_code": 20,
    "tax_id": 40,
    # free text
    "description": 1000,
    "explanation": 1000,
    "reason": 1000,
    "notes": 4000,
    "po_number": 100,
    "value": 2000,  # a template preview's field value
}
DEFAULT_ITEMS = 100
ITEM_LIMITS: dict[str, int] = {
    "subscription_ids": 500,
    "remove_attachment_ids": 100,
    "lines": 100,
    "events": 500,  # a DeliverBatch (shared.outbox.MAX_BATCH)
}
DEFAULT_BYTES = 64 * 1024
#: a PO document's size is billing's rule (ERROR_REASON_ATTACHMENT_TOO_LARGE): only the message size bounds it here
BYTES_LIMITS: dict[str, int] = {"content": MAX_MESSAGE_BYTES}
INT_RANGES: dict[str, tuple[int, int]] = {
    "seats": (0, 10_000),
    "renewal_seats": (0, 10_000),
    "seats_added": (0, 10_000),
    "quantity": (0, 10_000),
    "page_size": (0, 1_000),
    "limit": (0, 10_000),
    "days_before": (0, 366),
    "sequence": (0, 1_000),
    "attempt": (0, 1_000),
    # a field's full name wins over its short one: an event's sequence is its outbox position, unbounded
    "tenure.events.v1.Event.sequence": (0, 2**63 - 1),
}
MAX_MONEY_UNITS = 10**12
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(3000, 1, 1, tzinfo=UTC)
MAX_DURATION_SECONDS = 100 * 366 * 86400
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def violations(msg: Message) -> list[tuple[str, str]]:
    """Every (field path, what is wrong) of `msg`; empty when it keeps every limit."""
    return list(_walk(msg, ""))


def _walk(msg: Message, prefix: str) -> Iterator[tuple[str, str]]:
    desc = msg.DESCRIPTOR
    special = _SPECIAL.get(desc.full_name)
    if special is not None:
        yield from special(msg, prefix.rstrip("."))
        return
    for field, value in msg.ListFields():
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            limit = ITEM_LIMITS.get(field.name, DEFAULT_ITEMS)
            if len(value) > limit:
                yield path, f"at most {limit} items ({len(value)} given)"
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                key_f, value_f = (
                    field.message_type.fields_by_name["key"],
                    field.message_type.fields_by_name["value"],
                )
                for key, item in value.items():
                    yield from _scalar_or_message(key_f, key, f"{path}[{str(key)[:40]!r}].key")
                    yield from _scalar_or_message(value_f, item, f"{path}[{str(key)[:40]!r}]")
                continue
            for i, item in enumerate(value):
                yield from _scalar_or_message(field, item, f"{path}[{i}]")
        else:
            yield from _scalar_or_message(field, value, path)


def _scalar_or_message(field: FieldDescriptor, value: object, path: str) -> Iterator[tuple[str, str]]:
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        assert isinstance(value, Message)
        yield from _walk(value, path + ".")
    elif t == FieldDescriptor.TYPE_STRING:
        assert isinstance(value, str)
        yield from _string(field.name, value, path)
    elif t == FieldDescriptor.TYPE_BYTES:
        assert isinstance(value, bytes)
        limit = BYTES_LIMITS.get(field.name, DEFAULT_BYTES)
        if len(value) > limit:
            yield path, f"at most {limit} bytes ({len(value)} given)"
    elif isinstance(value, int) and (bounds := INT_RANGES.get(field.full_name, INT_RANGES.get(field.name))):
        low, high = bounds
        if not low <= value <= high:
            yield path, f"must be between {low} and {high} ({value} given)"


def _string(name: str, value: str, path: str) -> Iterator[tuple[str, str]]:
    limit = STRING_LIMITS.get(name, DEFAULT_STRING)
    if len(value) > limit:
        yield path, f"at most {limit} characters ({len(value)} given)"
        return
    if "\x00" in value:
        yield path, "must not contain NUL characters"
    elif name == "time_zone" and value not in _zones():
        yield path, f"not an IANA time zone: {value!r}"
    elif name == "currency_code" and not _CURRENCY.match(value):
        yield path, f"not a three-letter ISO 4217 currency code: {value!r}"
    elif name == "country_code" and not _COUNTRY.match(value.upper()):
        yield path, f"not a two-letter ISO 3166 country code: {value!r}"


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones()) | {"UTC"}


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _money(msg: Message, path: str) -> Iterator[tuple[str, str]]:
    units, nanos, code = msg.units, msg.nanos, msg.currency_code  # type: ignore[attr-defined]
    if abs(units) > MAX_MONEY_UNITS:
        yield _at(path, "units"), f"at most {MAX_MONEY_UNITS} units in absolute value ({units} given)"
    if not -999_999_999 <= nanos <= 999_999_999:
        yield _at(path, "nanos"), f"must be between -999999999 and 999999999 ({nanos} given)"
    elif (units > 0 and nanos < 0) or (units < 0 and nanos > 0):
        yield _at(path, "nanos"), "units and nanos must have the same sign"
    if code:
        yield from _string("currency_code", code, _at(path, "currency_code"))


def _timestamp(msg: Message, path: str) -> Iterator[tuple[str, str]]:
    seconds, nanos = msg.seconds, msg.nanos  # type: ignore[attr-defined]
    if not 0 <= nanos <= 999_999_999:
        yield _at(path, "nanos"), f"must be between 0 and 999999999 ({nanos} given)"
    elif not MIN_TIME.timestamp() <= seconds < MAX_TIME.timestamp():
        yield path, "must lie between 1900-01-01 and 2999-12-31"


def _duration(msg: Message, path: str) -> Iterator[tuple[str, str]]:
    seconds, nanos = msg.seconds, msg.nanos  # type: ignore[attr-defined]
    if abs(seconds) > MAX_DURATION_SECONDS or not -999_999_999 <= nanos <= 999_999_999:
        yield path, "must be at most 100 years"


def _date(msg: Message, path: str) -> Iterator[tuple[str, str]]:
    y, m, d = msg.year, msg.month, msg.day  # type: ignore[attr-defined]
    if (y, m, d) == (0, 0, 0):
        return
    try:
        day = date(y, m, d)
    except (ValueError, OverflowError):
        yield path, f"not a calendar date: {y:04d}-{m:02d}-{d:02d}"
        return
    if not MIN_TIME.date() <= day < MAX_TIME.date():
        yield path, "must lie between 1900-01-01 and 2999-12-31"


_SPECIAL = {
    "google.type.Money": _money,
    "google.protobuf.Timestamp": _timestamp,
    "google.protobuf.Duration": _duration,
    "google.type.Date": _date,
}
