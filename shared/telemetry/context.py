"""The request id of the work in hand: set by the server interceptor for an RPC and by the event sink
for an event, sent on with every call to another service (`x-request-id`) and every event published."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_REQUEST_ID: ContextVar[str] = ContextVar("tenure_request_id", default="")


def current_request_id() -> str:
    return _REQUEST_ID.get()


@contextmanager
def request_id_of(request_id: str) -> Iterator[None]:
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)
