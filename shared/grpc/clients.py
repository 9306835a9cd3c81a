"""Clients of the other services: deadlines, retries on UNAVAILABLE, errors mapped back to domain exceptions,
and a client span per call whose W3C `traceparent` (with the request id in hand) goes in the metadata."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.trace import SpanKind, StatusCode

from shared.grpc.errors import from_rpc_error
from shared.grpc.tls import channel as tls_channel
from shared.settings import TlsSettings
from shared.telemetry import tracing
from shared.telemetry.context import current_request_id

#: metadata key of the request id that travels with every call (read by the server interceptor)
REQUEST_ID = "x-request-id"

RETRY_POLICY = {
    "methodConfig": [
        {
            "name": [{}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


#: a peer that was down is tried again within 2 s of coming back (gRPC's default waits up to 120 s)
RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def make_channel(addr: str, tls: TlsSettings | None = None) -> grpc.Channel:
    return tls_channel(
        addr,
        tls,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", json.dumps(RETRY_POLICY)),
            ("grpc.keepalive_time_ms", 30000),
            *RECONNECT,
        ],
    )


class ServiceClient:
    """Wraps a generated stub: every call gets a deadline and the calling service's own token (and the
    person it acts for), and a gRPC error is raised again as the domain exception it stands for
    (UNAVAILABLE/DEADLINE_EXCEEDED → PeerUnavailable)."""

    def __init__(
        self,
        stub_cls: type,
        addr: str,
        timeout: float = 10.0,
        credentials: Callable[[], list[tuple[str, str]]] | None = None,
        tls: TlsSettings | None = None,
    ):
        self.addr = addr
        #: the proto service's short name, for span names: BillingServiceStub → BillingService
        self.service = stub_cls.__name__.removesuffix("Stub")
        self.channel = make_channel(addr, tls)
        self.stub = stub_cls(self.channel)
        self.timeout = timeout
        self.credentials = credentials

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.stub, name)
        span_name = f"{self.service}/{name}"

        def call(
            request: Any, timeout: float | None = None, metadata: list[tuple[str, str]] | None = None
        ) -> Any:
            given = metadata if metadata is not None else (self.credentials() if self.credentials else [])
            with tracing.tracer().start_as_current_span(
                span_name,
                kind=SpanKind.CLIENT,
                attributes={"rpc.system": "grpc", "rpc.method": name, "server.address": self.addr},
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                md = list(given)
                tracing.inject(md)
                request_id = current_request_id()
                if request_id and all(k != REQUEST_ID for k, _ in md):
                    md.append((REQUEST_ID, request_id))
                try:
                    return method(request, timeout=timeout or self.timeout, metadata=md)
                except grpc.RpcError as err:
                    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    span.set_status(StatusCode.ERROR, code.name)
                    raise from_rpc_error(err) from None

        return call

    def close(self) -> None:
        self.channel.close()
