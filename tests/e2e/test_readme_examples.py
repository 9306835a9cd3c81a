"""The README's grpcurl examples, run as printed (ports moved to the test stack's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
PORTS = {"50051": "subscription", "50052": "billing", "50053": "entitlement", "50054": "notification"}


def _section(readme: str, heading: str) -> str:
    start = readme.index(heading)
    nxt = readme.find("\n## ", start + len(heading))
    return readme[start : nxt if nxt > 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _env() -> dict:
    bin_dir = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}")


def _on_stack(script: str, addr: dict) -> str:
    return re.sub(r"localhost:(5005[1-4])", lambda m: addr[PORTS[m.group(1)]], script)


def test_the_operating_examples_work_as_printed(stack):
    readme = (ROOT / "README.md").read_text()
    script = _blocks(_section(readme, "## Operating with grpcurl"), "sh")[0]
    script = script.replace(". .venv/bin/activate", ":")  # the test runs inside the venv already
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _on_stack(script, stack["addr"])],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tenure.subscription.v1.SubscriptionService" in r.stdout and '"renewed"' not in r.stderr


def test_the_error_example_prints_what_the_readme_shows(stack):
    readme = (ROOT / "README.md").read_text()
    text = _blocks(_section(readme, "## Operating with grpcurl"), "text")[0]
    command, *shown = text.strip().splitlines()
    setup = 'ADA="authorization: Bearer $(python -m services.token --email ada@example.com)"\n'
    r = subprocess.run(
        ["bash", "-c", setup + _on_stack(command.removeprefix("$ "), stack["addr"])],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    got = [line.rstrip() for line in (r.stdout + r.stderr).strip().splitlines()]
    assert got == [line.rstrip() for line in shown]


def test_the_test_clock_examples_work_as_printed(stack):
    readme = (ROOT / "README.md").read_text()
    script = _blocks(_section(readme, "## The test clock"), "sh")[0]
    script = "\n".join(
        line for line in script.splitlines() if not line.endswith("make run")
    )  # the stack runs
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _on_stack(script, stack["addr"])],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"2025-07-25T00:00:00Z"' in r.stdout


def test_the_partner_quote_walk_works_as_printed(stack):
    """The quote flow of rules §9: issued, re-issued, accepted with pay by invoice, the partner's mail."""
    readme = (ROOT / "README.md").read_text()
    script = _blocks(_section(readme, "## Selling through partners (quotes)"), "sh")[0]
    env = dict(_env(), TENURE_NOTIFICATION_MAIL_DIR=str(stack["tmp"] / "mail"))
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _on_stack(script, stack["addr"])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert '"QUOTE_STATUS_SUPERSEDED"' not in out  # GetQuote shows the newest version
    assert '"version": 2' in out and '"QUOTE_STATUS_ISSUED"' in out and '"lena@example.se"' in out
    assert '"CHANNEL_PARTNER_QUOTE"' in out and '"partner_name": "ACME Reseller AS"' in out
    assert out.count('"sequence"') >= 3  # the three installments of the 3-year term
    assert "godtatt" in out  # the partner's mail, in Norwegian
    assert ".eml" in out
