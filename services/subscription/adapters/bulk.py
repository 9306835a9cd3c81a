"""The lifecycle sweep's set-based statements on PostgreSQL.

A batch is two statements:

1. `due_states`: the due rows (through the `(due_kind, next_action_time)` index), locked with
   `FOR UPDATE SKIP LOCKED` so concurrent sweeps split them, and their distinct lifecycle states. The sweep
   decides each state's move once (`lifecycle.move`): the rows due at one instant share a few states.
2. `apply_moves`: one statement that claims the same rows again (they are this transaction's already),
   joins each to its state's move, updates them (bumping `version`, so a request that read a row before
   fails with ABORTED instead of writing over the move), and inserts the history rows, the reminder rows
   and the events. Events go to the outbox as batch rows (`outbox.batch`), one per move step and chunk of
   subscriptions: the step's shared Event (built once in Python from the domain state) and, per
   subscription, its ids and its `event_profile` (the snapshot fields that the sweep never changes, encoded
   when the row was written), so no row is encoded in Python.

The small per-state tables travel as JSON parameters (`json_to_recordset`): one string each, whatever the
number of states.

A row whose state changed between the two statements matches no move, is left as it is, and is swept again
in the next batch.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import text

from services.subscription import codec
from services.subscription.domain.lifecycle import LOCAL, LifecycleState, Move
from services.subscription.domain.model import PaymentMethodType, Stage, Term
from shared.db import UnitOfWork
from tenure.events.v1 import events_pb2

# Events of one move step per outbox row at most (a batch row is delivered, and retried, whole).
EVENTS_PER_ROW = 500
# Memory for the statement's sorts and groups (transaction-local), so a batch never spills to disk.
WORK_MEM = "64MB"

# The LifecycleState fields as SQL over `subscriptions`: (field, expression, SQL type, may be NULL).
_STATE = (
    ("stage", "stage", "varchar", False),
    ("term", "term", "varchar", False),
    ("time_zone", "time_zone", "varchar", False),
    ("renewal_date", "renewal_date", "date", False),
    ("renewal_time", "renewal_time", "timestamptz", False),
    ("current_period_start_date", "current_period_start_date", "date", False),
    ("auto_renew", "auto_renew", "boolean", False),
    ("access_until", "access_until_time", "timestamptz", True),
    ("upgraded", "upgraded_to <> ''", "boolean", False),
    ("pays_by_invoice", f"payment_method_type = '{PaymentMethodType.INVOICE.value}'", "boolean", False),
    ("shutoff_reason", "shutoff_reason", "varchar", False),
    ("shutoff_start_date", "shutoff_start_date", "date", True),
    ("suspend_time", "suspend_time", "timestamptz", True),
    ("cancel_time", "cancel_time", "timestamptz", True),
    ("last_reminder_days", "last_reminder_days", "integer", True),
    ("prepay_pending", "prepay_pending", "boolean", False),
)
# The columns a move sets, the LifecycleState fields of the same name and where the sweep goes next:
# (column, SQL type).
_NEW = (
    ("stage", "varchar"),
    ("auto_renew", "boolean"),
    ("shutoff_reason", "varchar"),
    ("shutoff_start_date", "date"),
    ("suspend_time", "timestamptz"),
    ("cancel_time", "timestamptz"),
    ("last_reminder_days", "integer"),
    ("prepay_pending", "boolean"),
    ("next_action_time", "timestamptz"),
    ("due_kind", "smallint"),
)
# One row per move step (a stage change or a reminder): (name, SQL type).
_STEP = (
    ("step", "integer"),
    ("shape", "integer"),
    ("ord", "integer"),
    ("from_stage", "varchar"),
    ("to_stage", "varchar"),
    ("at", "timestamptz"),
    ("reason", "varchar"),
    ("period_key", "varchar"),
    ("days_before", "integer"),
    ("event_type", "varchar"),
    ("template", "text"),  # base64 of the serialized Event the step's events share
    ("prefix", "text"),  # the row's part of each event: prefix, the row's event_profile, suffix
    ("suffix", "text"),
    ("event_id", "varchar"),
)

_DUE = f"""
    SELECT ctid AS row_id, {", ".join(f"{expr} AS k_{f}" for f, expr, _, _ in _STATE)}
      FROM subscriptions
     WHERE due_kind = {LOCAL} AND next_action_time <= :as_of
     ORDER BY next_action_time
     LIMIT :n
       FOR UPDATE SKIP LOCKED
"""

_DUE_STATES = text(f"SELECT DISTINCT {', '.join(f'k_{f}' for f, *_ in _STATE)} FROM ({_DUE}) AS due")


def _records(prefix: str, cols) -> str:
    """Rows passed as one JSON parameter (a list of objects keyed by column name)."""
    name = prefix.rstrip("_")
    return f"json_to_recordset(CAST(:{name} AS json)) AS {name}({', '.join(f'{prefix}{c} {t}' for c, t in cols)})"


_MATCH = " AND ".join(
    f"c.k_{f} IS NOT DISTINCT FROM v.k_{f}" if nullable else f"c.k_{f} = v.k_{f}"
    for f, _, _, nullable in _STATE
)

_APPLY = text(
    f"""
WITH v AS (SELECT * FROM {_records("v_", [("shape", "integer")] + [("k_" + f, t) for f, _, t, _ in _STATE] + [("n_" + c, t) for c, t in _NEW])}),
c AS ({_DUE}),
moved AS (
    UPDATE subscriptions AS s
       SET {", ".join(f"{col} = v.v_n_{col}" for col, _ in _NEW)},
           version = s.version + 1, update_time = :now
      FROM c JOIN v ON {_MATCH.replace("v.k_", "v.v_k_")}
     WHERE s.ctid = c.row_id
 RETURNING v.v_shape AS shape, s.subscription_id, s.account_id, s.renewal_date, s.event_profile),
t AS (SELECT * FROM {_records("t_", _STEP)}),
work AS (SELECT m.*, t.* FROM moved AS m JOIN t ON t.t_shape = m.shape),
history AS (
    INSERT INTO lifecycle_transitions (subscription_id, from_stage, to_stage, transition_time, reason, period_key)
    SELECT subscription_id, t_from_stage, t_to_stage, t_at, t_reason, t_period_key
      FROM work WHERE t_to_stage IS NOT NULL),
reminders AS (
    INSERT INTO renewal_reminders (subscription_id, renewal_date, days_before, sent_time)
    SELECT subscription_id, renewal_date, t_days_before, :now FROM work WHERE t_days_before IS NOT NULL),
events AS (
    INSERT INTO outbox (event_id, event_type, account_id, subscription_id, occurred_time, payload, batch)
    SELECT md5(min(t_event_id) || ':' || chunk)::uuid::text, min(t_event_type), '', '', :now,
           decode(min(t_template), 'base64'), '[' || string_agg(element, ',') || ']'
      FROM (SELECT t_step, t_ord, abs(hashtext(subscription_id)) % :chunks AS chunk, t_event_id, t_event_type,
                   t_template, '{{"accountId":' || to_json(account_id)::text || ',"subscriptionId":'
                   || to_json(subscription_id)::text || ',' || t_prefix || event_profile || t_suffix AS element
              FROM work) AS e
     GROUP BY t_ord, t_step, chunk
     ORDER BY t_ord, t_step, chunk
 RETURNING 1)
SELECT 'claimed' AS what, -1 AS shape, count(*) AS n FROM c
UNION ALL SELECT 'events', -1, count(*) FROM events
UNION ALL SELECT 'moved', shape, count(*) FROM moved GROUP BY shape
"""
)


def due_states(uow: UnitOfWork, as_of: datetime, limit: int) -> list[LifecycleState]:
    """Lock up to `limit` due rows (earliest first, skipping rows another sweep holds) and return their
    distinct lifecycle states."""
    rows = uow.session.execute(_DUE_STATES, {"as_of": as_of, "n": limit}).all()
    return [_state(r) for r in rows]


def _state(r: Sequence) -> LifecycleState:
    kw = {f: v for (f, *_), v in zip(_STATE, r, strict=True)}
    return LifecycleState(**{**kw, "stage": Stage(kw["stage"]), "term": Term(kw["term"])})


@dataclass
class Applied:
    claimed: int
    events: int
    moved: dict[int, int]  # subscriptions moved per index in `moves`


def apply_moves(uow: UnitOfWork, as_of: datetime, limit: int, moves: Sequence[Move]) -> Applied:
    """Claim the same due rows as `due_states` and apply to each the move of its state, with its history,
    reminders and events, in one statement."""
    now = uow.now
    shapes: list[dict] = []
    steps: list[dict] = []
    for shape, mv in enumerate(moves):
        plan = {"next_action_time": mv.next_action_time, "due_kind": mv.due_kind}
        shapes.append(
            {"v_shape": shape}
            | {f"v_k_{f}": getattr(mv.before, f) for f, *_ in _STATE}
            | {f"v_n_{c}": plan[c] if c in plan else getattr(mv.state, c) for c, _ in _NEW}
        )
        for step in _steps(mv, now, uow.db.source):
            step |= {"step": len(steps), "shape": shape}
            steps.append({f"t_{c}": step.get(c) for c, _ in _STEP})
    # The events are grouped in memory (a batch's JSON is a few MiB, more than the default work_mem), and
    # their rows are compressed with lz4, several times faster than the default pglz.
    uow.session.execute(
        text(
            "SELECT set_config('work_mem', :mem, true), set_config('default_toast_compression', 'lz4', true)"
        ),
        {"mem": WORK_MEM},
    )
    rows = uow.session.execute(
        _APPLY,
        {
            "v": json.dumps(shapes, default=_json),
            "t": json.dumps(steps, default=_json),
            "as_of": as_of,
            "n": limit,
            "now": now,
            "chunks": max(1, -(-limit // EVENTS_PER_ROW)),
        },
    ).all()
    out = Applied(claimed=0, events=0, moved={})
    for what, shape, n in rows:
        if what == "claimed":
            out.claimed = n
        elif what == "events":
            out.events = n
        else:
            out.moved[shape] = n
    uow.count_published(out.events)
    return out


def _json(v):
    """Dates and instants as `json_to_recordset` reads them (ISO 8601); enums by their value."""
    if isinstance(v, date | datetime):
        return v.isoformat()
    if isinstance(v, Stage | Term):
        return v.value
    raise TypeError(f"not a JSON parameter: {v!r}")


def _steps(mv: Move, now: datetime, source: str) -> list[dict]:
    """The move's stage changes and reminders, each with what its events share (a serialized Event) and
    where each row's profile goes in its own part."""
    out: list[dict] = []
    for ord_, (t, key) in enumerate(zip(mv.transitions, mv.period_keys, strict=True)):
        payload = events_pb2.StageChanged(
            subscription=codec.lifecycle_snapshot_pb(replace(mv.state, stage=t.to_stage)),
            from_stage=codec.stage_pb(t.from_stage),
            to_stage=codec.stage_pb(t.to_stage),
            reason=t.reason,
            transition_time=codec.ts_pb(t.at),
        )
        step = {
            "ord": ord_,
            "from_stage": t.from_stage.value if t.from_stage else "",
            "to_stage": t.to_stage.value,
            "at": t.at,
            "reason": t.reason,
            "period_key": key,
        }
        out.append(step | _event("subscription.stage_changed", "stage_changed", payload, now, source))
    for days in mv.reminders:
        payload = events_pb2.RenewalReminder(
            subscription=codec.lifecycle_snapshot_pb(mv.state), days_before=days
        )
        step = {"ord": len(out), "days_before": days}
        out.append(step | _event("subscription.renewal_reminder", "renewal_reminder", payload, now, source))
    return out


def _event(event_type: str, field: str, payload, now: datetime, source: str) -> dict:
    shared = events_pb2.Event(
        event_type=event_type, occurred_time=codec.ts_pb(now), source=source, **{field: payload}
    )
    json_name = events_pb2.Event.DESCRIPTOR.fields_by_name[field].json_name
    return {
        "event_type": event_type,
        "template": base64.b64encode(shared.SerializeToString()).decode(),
        "prefix": f'"{json_name}":{{"subscription":{{',
        "suffix": "}}}",
        "event_id": str(uuid.uuid4()),
    }
