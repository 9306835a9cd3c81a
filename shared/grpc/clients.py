"""Clients of the other services: deadlines, retries on UNAVAILABLE, errors mapped back to domain exceptions."""

from __future__ import annotations

import json
from typing import Any

import grpc

from shared.grpc.errors import from_rpc_error

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


def make_channel(addr: str) -> grpc.Channel:
    return grpc.insecure_channel(
        addr,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", json.dumps(RETRY_POLICY)),
            ("grpc.keepalive_time_ms", 30000),
        ],
    )


class ServiceClient:
    """Wraps a generated stub: every call gets a deadline and metadata, and a gRPC error is raised
    again as the domain exception it stands for (UNAVAILABLE/DEADLINE_EXCEEDED → PeerUnavailable)."""

    def __init__(
        self, stub_cls: type, addr: str, timeout: float = 10.0, metadata: list[tuple[str, str]] | None = None
    ):
        self.addr = addr
        self.channel = make_channel(addr)
        self.stub = stub_cls(self.channel)
        self.timeout = timeout
        self.metadata = metadata or [("x-actor-role", "service")]

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.stub, name)

        def call(request, timeout: float | None = None, metadata: list[tuple[str, str]] | None = None):
            try:
                return method(request, timeout=timeout or self.timeout, metadata=(metadata or self.metadata))
            except grpc.RpcError as err:
                raise from_rpc_error(err) from None

        return call

    def close(self) -> None:
        self.channel.close()
