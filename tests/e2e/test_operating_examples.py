"""README "Operator tasks": the block runs as printed against the four services (ports moved to the
test stack's), finds what it made, and runs a second time without an error (its requests are keyed)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.conftest import ROOT
from tests.e2e.test_readme_examples import _blocks, _env, _on_stack, _section

pytestmark = pytest.mark.e2e


def _tasks() -> str:
    readme = (ROOT / "README.md").read_text()
    text = _section(readme, "## Operating")
    start = text.index("### Operator tasks")
    return _blocks(text[start:], "sh")[0]


def _run(script: str, addr: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _on_stack(script, addr)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_every_operator_task_works_as_printed(stack):
    script = _tasks()
    assert "localhost:50054" in script and "-emit-defaults" in script
    first = _run(script, stack["addr"])
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert '"account_id": "acct-kari"' in out and '"subscription_count": 1' in out  # FindAccounts
    assert re.search(r'"invoice_number": "INV-\d{4}-\d{6}"', out)  # GetInvoice by its number
    assert '"renewed": 0' in out and '"issued": 0' in out and '"sent": ' in out  # zero counts shown
    assert '"resend_of_notification_id"' in out  # the mail sent again
    assert '"stage": "STAGE_CANCELLED"' in out and "CREDIT_NOTE_SETTLEMENT_REFUND" in out  # the refund
    again = _run(script, stack["addr"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(re.findall(r'"credit_note_number"', again.stdout)) == 1  # refunded once
