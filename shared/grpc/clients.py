"""Clients of the other services: deadlines, retries on UNAVAILABLE, errors mapped back to domain exceptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc

from shared.grpc.errors import from_rpc_error
from shared.grpc.tls import channel as tls_channel
from shared.settings import TlsSettings

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
        self.channel = make_channel(addr, tls)
        self.stub = stub_cls(self.channel)
        self.timeout = timeout
        self.credentials = credentials

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.stub, name)

        def call(
            request: Any, timeout: float | None = None, metadata: list[tuple[str, str]] | None = None
        ) -> Any:
            try:
                md = metadata if metadata is not None else (self.credentials() if self.credentials else None)
                return method(request, timeout=timeout or self.timeout, metadata=md)
            except grpc.RpcError as err:
                raise from_rpc_error(err) from None

        return call

    def close(self) -> None:
        self.channel.close()
