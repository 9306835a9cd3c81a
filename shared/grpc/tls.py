"""TLS credentials from `TlsSettings`: servers present the service certificate (and, under mutual TLS,
require a client certificate signed by the CA); clients verify servers with the CA and, under mutual
TLS, present the same service certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from shared.settings import TlsSettings


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """Only for enabled settings (`tls.enabled`: both the key and the certificate are named)."""
    return grpc.ssl_server_credentials(
        [(Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())],
        root_certificates=_read(tls.ca_file),
        require_client_auth=tls.client_auth,
    )


def channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials:
    if tls.client_auth:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(tls.ca_file),
            private_key=_read(tls.key_file),
            certificate_chain=_read(tls.cert_file),
        )
    return grpc.ssl_channel_credentials(root_certificates=_read(tls.ca_file))


def channel(addr: str, tls: TlsSettings | None, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
    if tls is not None and tls.enabled:
        return grpc.secure_channel(addr, channel_credentials(tls), options=options)
    return grpc.insecure_channel(addr, options=options)
