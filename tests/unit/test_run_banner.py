"""What `make run` prints first: every service's address and metrics endpoint, and commands that work as
printed (the PATH line finds the project's grpcurl even from a shell that has none)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from services.__main__ import banner
from shared.settings import (
    BillingSettings,
    EntitlementSettings,
    NotificationSettings,
    SubscriptionSettings,
    TlsSettings,
)


def _settings(**sub):
    return {
        "subscription": SubscriptionSettings(**sub),
        "billing": BillingSettings(),
        "entitlement": EntitlementSettings(),
        "notification": NotificationSettings(metrics_addr=""),
    }


def test_it_names_every_service_address_and_metrics_endpoint():
    text = banner(_settings(addr="0.0.0.0:60051", metrics_addr="0.0.0.0:9999"))
    assert "subscription  localhost:60051, metrics http://localhost:9999/metrics" in text
    assert "billing       127.0.0.1:50052, metrics http://127.0.0.1:9462/metrics" in text
    assert re.search(r"notification  127\.0\.0\.1:50054$", text, re.M)  # metrics off: none shown
    # the commands call the subscription service where it listens
    assert "grpcurl -plaintext localhost:60051 list" in text
    assert "-emit-defaults localhost:60051 tenure.subscription.v1.SubscriptionService/RunLifecycle" in text


def test_with_tls_the_commands_verify_the_server_instead_of_plaintext():
    text = banner(_settings(), TlsSettings(cert_file="c.pem", key_file="k.pem"))
    assert "-plaintext" not in text and "grpcurl -cacert <ca.pem> 127.0.0.1:50051 list" in text


def test_the_path_line_finds_the_projects_grpcurl_and_token_command():
    text = banner(_settings())
    (export,) = [line.strip() for line in text.splitlines() if line.strip().startswith("export PATH=")]
    assert str(Path(sys.executable).parent) in export
    script = f"{export.split('#')[0]}\ncommand -v grpcurl\ncommand -v python\n"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV"}}
    env["PATH"] = "/usr/bin:/bin"  # a shell without the project's tools
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    grpcurl, python = r.stdout.split()
    assert Path(grpcurl).parent == Path(sys.executable).parent
    assert Path(python).parent == Path(sys.executable).parent
