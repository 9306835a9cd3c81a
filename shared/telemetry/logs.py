"""Logging of a service process: one JSON object per line (setting `log_format`, the default `json`) or
plain text, on standard error.

Every line has `time` (UTC, ISO 8601), `level`, `logger` and `message`, and the `request_id` and
`trace_id` of the work in hand when there is one; the line of an RPC adds `service`, `method`, `code`,
`duration_ms`, `principal` and `account` (see shared/grpc/interceptors). Start-up detail (Alembic's lines
of each migration check) and health checks are logged at DEBUG."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.telemetry.context import current_request_id
from shared.telemetry.tracing import trace_id_of

#: loggers whose INFO lines are start-up detail, shown at DEBUG
STARTUP_DETAIL = ("alembic",)
#: the attributes every LogRecord has: anything else on a record came as `extra`
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _work_in_hand(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not event.get("request_id"):
        rid = current_request_id()
        if rid:
            event["request_id"] = rid
    if not event.get("trace_id"):
        tid = trace_id_of()
        if tid:
            event["trace_id"] = tid
    return event


class Demote(logging.Filter):
    """Start-up detail logged at INFO by libraries is shown as DEBUG, so only at level DEBUG."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name.startswith(STARTUP_DETAIL):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.threshold


class TextFormatter(logging.Formatter):
    """`time level logger message key=value…` (the fields of an RPC's line after its message)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        return line + "".join(f" {k}={v}" for k, v in extra.items()) if extra else line


def json_formatter() -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _work_in_hand,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Log at `level` in `fmt` (`json` or `text`) to standard error; replaces earlier handlers of the root
    logger, so a second call (several services in one process) changes nothing but the level and format."""
    threshold = logging.getLevelName(level.upper())
    if not isinstance(threshold, int):
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    if fmt not in ("json", "text"):
        raise ValueError(f"log format {fmt!r} is not json or text")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Demote(threshold))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
