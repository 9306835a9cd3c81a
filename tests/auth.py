"""Tokens for tests: every call carries `authorization: Bearer <JWT>` signed with the run's key.

The key lives in the temporary folder `tests/conftest.py` names in TENURE_AUTH_KEY_DIR, so services
started in-process and as processes (e2e) trust the same key.

    stub.GetSubscription(req, metadata=person("ada@example.com"))
    stub = SubscriptionServiceStub(channel(addr, default=person("ada@example.com")))  # a default caller
"""

from __future__ import annotations

import collections
import functools

import grpc

from shared.auth.tokens import TokenIssuer, ensure_signing_key
from shared.grpc.auth import AUTHORIZATION, signing_key_path
from shared.settings import AuthSettings

Metadata = list[tuple[str, str]]


@functools.cache
def issuer() -> TokenIssuer:
    settings = AuthSettings()
    path = ensure_signing_key(signing_key_path(settings))
    return TokenIssuer.from_file(path, settings.issuer, settings.audience)


def bearer(token: str) -> Metadata:
    return [(AUTHORIZATION, f"Bearer {token}")]


@functools.cache
def _person_token(email: str) -> str:
    return issuer().person(email)


def person(email: str) -> Metadata:
    return bearer(_person_token(email.strip().lower()))


@functools.cache
def _operator_token() -> str:
    return issuer().operator("support@tenure.example")


def operator() -> Metadata:
    return bearer(_operator_token())


@functools.cache
def _service_token(name: str) -> str:
    return issuer().service(name)


def service(name: str = "tests") -> Metadata:
    """A Tenure service's identity (internal RPCs, event delivery)."""
    return bearer(_service_token(name))


class _Details(
    collections.namedtuple(
        "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class _DefaultCaller(grpc.UnaryUnaryClientInterceptor):
    """Adds `default` to calls that carry no authorization of their own."""

    def __init__(self, default: Metadata) -> None:
        self.default = default

    def intercept_unary_unary(self, continuation, client_call_details, request):
        md = list(client_call_details.metadata or ())
        if not any(k == AUTHORIZATION for k, _ in md):
            md.extend(self.default)
            d = client_call_details
            client_call_details = _Details(
                d.method,
                d.timeout,
                md,
                d.credentials,
                getattr(d, "wait_for_ready", None),
                getattr(d, "compression", None),
            )
        return continuation(client_call_details, request)


def channel(addr: str, default: Metadata | None = None) -> grpc.Channel:
    """A plaintext channel; calls without their own `metadata=` go as `default` (when given)."""
    ch = grpc.insecure_channel(addr)
    return grpc.intercept_channel(ch, _DefaultCaller(default)) if default else ch
