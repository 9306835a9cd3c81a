"""A fuzz of every RPC, driven by the proto descriptors (a new RPC or field is covered without editing
this file): each RPC's valid request (from the permission matrix's world, or an empty one) gets one to
three of its fields, at any depth, set to malformed values — megabyte strings, NUL characters, unknown
zones and currencies, out-of-range numbers, enums and timestamps, money of 2^62 units, impossible dates,
oversized lists — and is sent by a caller the permission table lets through.

No answer may be INTERNAL or UNKNOWN, and a refused call that writes must change no row in any of the
four databases (counted after every outbox is drained, before and after the call).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.test_permission_matrix import (
    CALLERS,
    DESCRIPTORS,
    OK,
    TABLES,
    _call,
    build_world,
    expected,
    requests,
    row_counts,
)

EXAMPLES_PER_RPC = 32  # 76+ RPCs (fewer when an RPC has few fields to vary): over 2,000 requests
PREFERRED = ["buyer", "primary admin", "payer", "user", "operator", "service"]
MEGABYTE = "x" * (1024 * 1024)
BAD_STRINGS = [
    MEGABYTE,
    "a" * 129,
    "a" * 5000,
    "",
    " ",
    "\x00nul",
    "💥" * 300,
    "Europe/Nowhere",
    "ZZZ",
    "usd",
    "../../etc/passwd",
    "acc-matrix-a' OR '1'='1",
    "INV-9999-999999",
    "not an e-mail",
]
BAD_INT32 = [-1, -(2**31), 2**31 - 1, 0, 1_000_000]
BAD_INT64 = [-(2**63), 2**63 - 1, 2**62, -1]
BAD_UINT = [0, 2**32 - 1]
BAD_SPECIAL = {
    "google.protobuf.Timestamp": [
        {"seconds": 253402300800},
        {"seconds": -62135596801},
        {"seconds": 2**40},
        {"seconds": 0, "nanos": -1},
        {"seconds": 0, "nanos": 10**9},
        {"seconds": 32503680000},  # the year 3000
    ],
    "google.protobuf.Duration": [{"seconds": 2**40}, {"seconds": -(2**40)}, {"seconds": 1, "nanos": -5}],
    "google.type.Money": [
        {"currency_code": "USD", "units": 2**62},
        {"currency_code": "USD", "units": -(2**62)},
        {"currency_code": "USD", "units": 1, "nanos": -5},
        {"currency_code": "USD", "nanos": 10**9},
        {"currency_code": "usd", "units": 1},
        {"currency_code": "ZZZ", "units": 1},
        {"currency_code": "", "units": 10**12 + 1},
    ],
    "google.type.Date": [
        {"year": 0, "month": 13, "day": 1},
        {"year": 2023, "month": 2, "day": 30},
        {"year": 9999, "month": 12, "day": 31},
        {"year": 1, "month": 1, "day": 1},
        {"year": -5, "month": 1, "day": 1},
    ],
}


def _paths(desc: Descriptor, depth: int = 3) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Every field of `desc`, and of its message fields down to `depth` levels."""
    for f in desc.fields:
        yield (f,)
        if (
            depth > 1
            and f.type == FieldDescriptor.TYPE_MESSAGE
            and f.message_type.full_name not in BAD_SPECIAL
            and not f.message_type.GetOptions().map_entry
        ):
            for rest in _paths(f.message_type, depth - 1):
                yield (f, *rest)


def _bad_values(f: FieldDescriptor) -> list[object]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return BAD_STRINGS
    if t == FieldDescriptor.TYPE_BYTES:
        return [b"", b"x" * (3 * 1024 * 1024), b"\xff\xfe"]
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return BAD_INT32
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return BAD_INT64
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return BAD_UINT
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return [0, 2**64 - 1]
    if t == FieldDescriptor.TYPE_ENUM:
        return [999, -1, *[v.number for v in f.enum_type.values]]
    if t == FieldDescriptor.TYPE_BOOL:
        return [True, False]
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return [float("nan"), float("inf"), -1e308]
    if t == FieldDescriptor.TYPE_MESSAGE:
        special = BAD_SPECIAL.get(f.message_type.full_name)
        if special is not None:
            return special
        if f.message_type.GetOptions().map_entry:
            return [{"k" * 300: MEGABYTE[:5000]}, {"": ""}]
        return [{}]
    return [None]


def _set(msg: Message, path: tuple[FieldDescriptor, ...], value: object, many: bool) -> None:
    """Set the field at `path` to `value` (for a repeated field: one item, or 1,000 when `many`)."""
    target = msg
    for f in path[:-1]:
        field = getattr(target, f.name)
        if f.is_repeated:
            target = field[0] if len(field) else field.add()
        else:
            target = field
    leaf = path[-1]
    field = getattr(target, leaf.name)
    if leaf.type == FieldDescriptor.TYPE_MESSAGE:
        assert isinstance(value, dict)
        if leaf.message_type.GetOptions().map_entry:
            for k, v in value.items():
                try:
                    field[k] = v
                except (TypeError, ValueError):
                    return
            return
        if leaf.is_repeated:
            for _ in range(1000 if many else 1):
                json_format.ParseDict(value, field.add(), ignore_unknown_fields=True)
            return
        sub = GetMessageClass(leaf.message_type)()
        for k, v in value.items():
            setattr(sub, k, v)
        field.CopyFrom(sub)
        return
    if leaf.is_repeated:
        field.extend([value] * (1000 if many else 1))
    else:
        setattr(target, leaf.name, value)


def _caller(rpc: str, rule, request):
    allowed = {c.name: c for c in CALLERS if expected(rpc, rule, c, request) is OK}
    for name in PREFERRED:
        if name in allowed:
            return allowed[name]
    return next(iter(allowed.values()), CALLERS[-1])


@pytest.mark.parametrize("backend", ["sqlite"])  # the limits are the services' own: one backend suffices
def test_malformed_requests_never_answer_internal_and_refused_writes_change_nothing(start_service):
    w = build_world(start_service)
    bodies = requests(w)
    wrong: list[str] = []
    sent = [0]
    counted: dict[str, dict | None] = {"rows": None}  # the row counts, while no call has changed them
    for d in DESCRIPTORS:
        for m in d.methods:
            _fuzz_rpc(w, d, m, bodies.get(m.name, {}), wrong, sent, counted)
    assert wrong == [], f"{len(wrong)} of {sent[0]} requests went wrong:\n" + "\n".join(wrong[:40])
    assert sent[0] >= 2000


def _fuzz_rpc(w, d, m, body: dict, wrong: list[str], sent: list[int], counted: dict) -> None:
    rule = TABLES[d.full_name][m.name]
    base = json_format.ParseDict(body, GetMessageClass(m.input_type)())
    paths = list(_paths(m.input_type))
    caller = _caller(m.name, rule, base)
    writes = any(f.name == "request_id" for f in m.input_type.fields)

    @settings(
        max_examples=EXAMPLES_PER_RPC, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data())
    def fuzz(data) -> None:
        request = type(base)()
        request.CopyFrom(base)
        if writes:
            request.request_id = uuid.uuid4().hex
        changes = []
        for _ in range(data.draw(st.integers(1, 3), label="changes")) if paths else ():
            path = data.draw(st.sampled_from(paths), label="field")
            value = data.draw(st.sampled_from(_bad_values(path[-1])), label="value")
            # a list of 1,000 items, of values short enough that the request stays sendable
            many = path[-1].is_repeated and len(str(value)) <= 300 and data.draw(st.booleans(), label="many")
            try:
                _set(request, path, value, many)
            except (TypeError, ValueError, OverflowError):
                continue  # the protobuf runtime itself refuses the value: it cannot be sent
            shown = f"{'.'.join(f.name for f in path)}={str(value)[:40]!r}"
            changes.append(shown + (" x1000" if many else ""))
        if writes and counted.get("rows") is None:  # an earlier call may have changed rows: recount
            w.drain()
            counted["rows"] = row_counts(w)
        try:
            code, message = _call(w, d.full_name, m, request, caller)
        except ValueError as exc:  # the answer's status could not be read (say, trailers too large)
            code, message = grpc.StatusCode.UNKNOWN, str(exc)
        sent[0] += 1
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            wrong.append(f"{m.name} as {caller.name} with {changes}: {code.name} {message[:200]}")
        if code == grpc.StatusCode.OK or not writes:
            counted["rows"] = None
            return
        before, after = counted["rows"], row_counts(w)
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if changed:
            wrong.append(f"{m.name} with {changes}: refused ({code.name}) but changed {changed}")
            counted["rows"] = None

    fuzz()
