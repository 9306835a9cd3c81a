"""Paging of list RPCs, one format for every service: `page_size` (default 50, at most 500) and an
opaque `page_token` that encodes where the next page starts (an offset, or the key of the last row
seen for keyset paging). A token this service did not give is INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.errors import InvalidInput

DEFAULT_SIZE = 50
MAX_SIZE = 500
_PREFIX = "p1:"


def page_size(requested: int, *, default: int = DEFAULT_SIZE, maximum: int = MAX_SIZE) -> int:
    if requested < 0:
        raise InvalidInput("page_size cannot be negative", field="page_size")
    return min(requested or default, maximum)


def encode_token(*position: Any) -> str:
    """The token of a page that starts after `position` (JSON-encodable values)."""
    raw = _PREFIX + json.dumps(list(position), separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, arity: int) -> tuple[Any, ...] | None:
    """The position a token encodes (`arity` values), or None for the first page."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith(_PREFIX):
            raise ValueError(raw)
        values = json.loads(raw[len(_PREFIX) :])
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError(values)
    except ValueError:
        raise InvalidInput("page_token is not a token from a previous response", field="page_token") from None
    return tuple(values)


def offset_page(requested_size: int, token: str, *, default: int = DEFAULT_SIZE) -> tuple[int, int]:
    """(offset, size) of an offset-paged list."""
    size = page_size(requested_size, default=default)
    position = decode_token(token, 1)
    if position is None:
        return 0, size
    offset = position[0]
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("page_token is not a token from a previous response", field="page_token")
    return offset, size


def next_offset_token(offset: int, size: int, more: bool) -> str:
    return encode_token(offset + size) if more else ""
