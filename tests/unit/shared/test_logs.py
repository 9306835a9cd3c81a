"""The process's log: one JSON object per line with time, level, logger and message, the request id and
trace id of the work in hand, Alembic's start-up lines only at DEBUG, and a text format beside it."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry.context import request_id_of
from shared.telemetry.logs import configure
from shared.telemetry.tracing import setup


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_each_line_is_one_json_object_with_the_work_in_hand(restore_root, capsys):
    configure("INFO", "json")
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = setup()
    with request_id_of("req-7"), provider.get_tracer("t").start_as_current_span("s") as span:
        logging.getLogger("tenure.test").info("renewed %s of %s", 3, "sub_1", extra={"account": "acc_1"})
    logging.getLogger("tenure.test").debug("not shown at INFO")
    (line,) = lines(capsys)
    assert line["message"] == "renewed 3 of sub_1"
    assert line["level"] == "info" and line["logger"] == "tenure.test" and line["time"].endswith("Z")
    assert line["account"] == "acc_1" and line["request_id"] == "req-7"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")


def test_an_exception_stays_inside_its_line(restore_root, capsys):
    configure("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tenure.test").exception("failed")
    (line,) = lines(capsys)
    assert line["level"] == "error" and "ValueError: boom" in line["exception"]


def test_alembic_start_up_lines_show_only_at_debug(restore_root, capsys):
    configure("INFO", "json")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("alembic.runtime.migration").warning("a real warning")
    assert [(x["level"], x["message"]) for x in lines(capsys)] == [("warning", "a real warning")]
    configure("DEBUG", "json")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    assert [(x["level"], x["message"]) for x in lines(capsys)] == [("debug", "Context impl SQLiteImpl.")]


def test_text_format_puts_the_fields_after_the_message(restore_root, capsys):
    configure("INFO", "text")
    logging.getLogger("tenure.rpc").info("GetTime OK", extra={"code": "OK", "duration_ms": 1.5})
    err = capsys.readouterr().err
    assert " INFO tenure.rpc GetTime OK code=OK duration_ms=1.5" in err


def test_an_unknown_level_or_format_is_refused(restore_root):
    with pytest.raises(ValueError, match="log level"):
        configure("LOUD", "json")
    with pytest.raises(ValueError, match="log format"):
        configure("INFO", "yaml")
