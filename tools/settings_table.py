"""Print the README's settings table from shared/settings.py (a test keeps the README in step)."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.settings import (
    SETTINGS,
    AuthSettings,
    ClockSettings,
    EventBusSettings,
    TelemetrySettings,
    TlsSettings,
)

ROOT = Path(__file__).resolve().parent.parent


def _comments() -> dict[tuple[str, str], str]:
    """`#:` comments above each field, keyed by (class, field)."""
    src = (ROOT / "shared" / "settings.py").read_text().splitlines()
    tree = ast.parse("\n".join(src))
    out: dict[tuple[str, str], str] = {}
    for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                prev = src[stmt.lineno - 2].strip()
                if prev.startswith("#:"):
                    out[(cls.name, stmt.target.id)] = prev[2:].strip()
    return out


def _doc(comments, cls, field: str) -> str:
    for klass in cls.__mro__:
        if (klass.__name__, field) in comments:
            return comments[(klass.__name__, field)]
    return ""


def table() -> str:
    comments = _comments()
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows.append(f"| `TENURE_CLOCK` | `system` | {_doc(comments, ClockSettings, 'clock')} |")
    rows.append(f"| `TENURE_CLOCK_START` | (now) | {_doc(comments, ClockSettings, 'clock_start')} |")
    for cls in [AuthSettings, TlsSettings, EventBusSettings, TelemetrySettings, *SETTINGS.values()]:
        prefix = cls.model_config["env_prefix"]
        for field, info in cls.model_fields.items():
            default = info.default
            shown = "(empty)" if default in ("", None) else f"`{default}`"
            rows.append(f"| `{prefix}{field.upper()}` | {shown} | {_doc(comments, cls, field)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
