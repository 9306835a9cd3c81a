"""TLS and mutual TLS from settings, with a throw-away CA made for the test."""

from __future__ import annotations

import datetime as dt
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.grpc.clients import ServiceClient
from shared.settings import TlsSettings
from tenure.common.v1 import clock_pb2, clock_pb2_grpc
from tests.auth import operator


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer_name, issuer_key, *, ca=False, server=False):
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def pki(tmp_path):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Tenure test CA", ca_key, _name("Tenure test CA"), ca_key, ca=True)
    files = {"ca": ca}
    svc_key = ec.generate_private_key(ec.SECP256R1())
    files["svc"] = _cert("billing", svc_key, ca.subject, ca_key, server=True)
    files["svc_key"] = svc_key
    out = {}
    for name, obj in files.items():
        p = tmp_path / f"{name}.pem"
        p.write_bytes(_pem(obj))
        out[name] = str(p)
    return out


def _tls_env(monkeypatch, pki, client_auth: bool) -> TlsSettings:
    monkeypatch.setenv("TENURE_TLS_CERT_FILE", pki["svc"])
    monkeypatch.setenv("TENURE_TLS_KEY_FILE", pki["svc_key"])
    monkeypatch.setenv("TENURE_TLS_CA_FILE", pki["ca"])
    monkeypatch.setenv("TENURE_TLS_CLIENT_AUTH", "true" if client_auth else "false")
    return TlsSettings()


def _get_time(channel) -> bool:
    stub = clock_pb2_grpc.ClockServiceStub(channel)
    return stub.GetTime(clock_pb2.GetTimeRequest(), metadata=operator(), timeout=5).test_clock


def test_mutual_tls_between_services_and_refused_without_a_client_certificate(
    start_service, monkeypatch, pki
):
    tls = _tls_env(monkeypatch, pki, client_auth=True)
    app = start_service("billing")
    # a Tenure client (the same settings) presents its certificate and verifies the server's
    client = ServiceClient(
        clock_pb2_grpc.ClockServiceStub, app.addr, timeout=5, credentials=operator, tls=tls
    )
    assert client.GetTime(clock_pb2.GetTimeRequest()).test_clock
    client.close()
    ca = open(pki["ca"], "rb").read()
    with pytest.raises(grpc.RpcError) as no_cert:
        _get_time(grpc.secure_channel(app.addr, grpc.ssl_channel_credentials(root_certificates=ca)))
    assert no_cert.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.RpcError) as plain:
        _get_time(grpc.insecure_channel(app.addr))
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE


def test_server_tls_without_client_certificates(start_service, monkeypatch, pki):
    _tls_env(monkeypatch, pki, client_auth=False)
    app = start_service("billing")
    ca = open(pki["ca"], "rb").read()
    assert _get_time(grpc.secure_channel(app.addr, grpc.ssl_channel_credentials(root_certificates=ca)))
