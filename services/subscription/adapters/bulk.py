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

The column lists come from `LifecycleState` itself: every field is read from its column (or the expression
named in `_DERIVED`) and written back from the move's state, so a field added to the state is matched and
written without being listed here, and one with no column fails on import. The row-by-row path and this
one are compared on generated states by tests/service/subscription/test_sweep_differential.py.

The REMOTE work (renewals, prepay-only marks) is claimed in batches too (`claim_remote`): one statement locks
and loads a batch of due subscriptions into the unit of work's repository, one reads the renewals already
recorded for their periods (`renewals_of`), and the new renewal rows go in with one insert (`add_renewals`).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import get_args, get_type_hints

from sqlalchemy import select, text, tuple_

from services.subscription import codec
from services.subscription.adapters.repository import Renewal, to_domain
from services.subscription.adapters.tables import RenewalRow, SubscriptionRow
from services.subscription.adapters.unit_of_work import SubscriptionUnitOfWork
from services.subscription.domain.lifecycle import LOCAL, REMOTE, LifecycleState, Move
from services.subscription.domain.model import PaymentMethodType, Stage, Term
from services.subscription.domain.subscription import Subscription
from shared.db import UnitOfWork
from tenure.events.v1 import events_pb2

# Events of one move step per outbox row at most (a batch row is delivered, and retried, whole).
EVENTS_PER_ROW = 500
# Memory for the statement's sorts and groups (transaction-local), so a batch never spills to disk.
WORK_MEM = "64MB"

# How a row gives each LifecycleState field: the column of the same name unless named here, under another
# name (`_RENAMED`) or as an expression a move never changes (`_DERIVED`).
_RENAMED = {"access_until": "access_until_time"}
_DERIVED = {
    "upgraded": "upgraded_to <> ''",
    "pays_by_invoice": f"payment_method_type = '{PaymentMethodType.INVOICE.value}'",
}
# The SQL types of the JSON parameters, by the Python type of the field.
_SQL_TYPES = {
    str: "varchar",
    Stage: "varchar",
    Term: "varchar",
    date: "date",
    datetime: "timestamptz",
    bool: "boolean",
    int: "integer",
}


@dataclass(frozen=True)
class _Field:
    """One field of the lifecycle state (or of a move's plan) as the statements read and write it."""

    name: str
    expr: str  # how a `subscriptions` row gives it
    column: str | None  # the column a move writes it to (None: derived, so a move must not change it)
    sql_type: str
    nullable: bool
    kind: type  # what a read value becomes (Stage and Term from their values)


def _fields(cls: type, only: tuple[str, ...] = ()) -> list[_Field]:
    """The fields of `cls` (a dataclass; those in `only` when given), each mapped to its column or
    expression. A field with neither, or of a type with no SQL type here, fails when the module is
    imported, rather than being left out of the statements."""
    hints = get_type_hints(cls)
    columns = set(SubscriptionRow.__table__.columns.keys())
    out = []
    for f in fields(cls):
        if only and f.name not in only:
            continue
        args = get_args(hints[f.name])
        nullable = type(None) in args
        kind = next(a for a in args if a is not type(None)) if args else hints[f.name]
        if kind not in _SQL_TYPES:
            raise TypeError(f"{cls.__name__}.{f.name}: no SQL type for {kind!r} in bulk._SQL_TYPES")
        column = None if f.name in _DERIVED else _RENAMED.get(f.name, f.name)
        if column is not None and column not in columns:
            raise LookupError(
                f"{cls.__name__}.{f.name} has no column in subscriptions: name it in bulk._RENAMED or _DERIVED"
            )
        expr = _DERIVED[f.name] if column is None else column
        out.append(_Field(f.name, expr, column, _SQL_TYPES[kind], nullable, kind))
    return out


# The lifecycle state as the due rows give it (the rows of one state share a move), and what a move writes:
# every field of the state stored in a column (those it did not change are written with the value they
# matched) and where the sweep goes next.
_STATE = _fields(LifecycleState)
_PLAN = _fields(Move, only=("next_action_time", "due_kind"))
_NEW = [(f.column, f.sql_type) for f in _STATE + _PLAN if f.column is not None]

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
    SELECT ctid AS row_id, {", ".join(f"{f.expr} AS k_{f.name}" for f in _STATE)}
      FROM subscriptions
     WHERE due_kind = {LOCAL} AND next_action_time <= :as_of
     ORDER BY next_action_time
     LIMIT :n
       FOR UPDATE SKIP LOCKED
"""

_DUE_STATES = text(f"SELECT DISTINCT {', '.join(f'k_{f.name}' for f in _STATE)} FROM ({_DUE}) AS due")


def _records(prefix: str, cols) -> str:
    """Rows passed as one JSON parameter (a list of objects keyed by column name)."""
    name = prefix.rstrip("_")
    return f"json_to_recordset(CAST(:{name} AS json)) AS {name}({', '.join(f'{prefix}{c} {t}' for c, t in cols)})"


_MATCH = " AND ".join(
    f"c.k_{f.name} IS NOT DISTINCT FROM v.v_k_{f.name}" if f.nullable else f"c.k_{f.name} = v.v_k_{f.name}"
    for f in _STATE
)

_APPLY = text(
    f"""
WITH v AS (SELECT * FROM {_records("v_", [("shape", "integer")] + [("k_" + f.name, f.sql_type) for f in _STATE] + [("n_" + c, t) for c, t in _NEW])}),
c AS ({_DUE}),
moved AS (
    UPDATE subscriptions AS s
       SET {", ".join(f"{col} = v.v_n_{col}" for col, _ in _NEW)},
           version = s.version + 1, update_time = :now
      FROM c JOIN v ON {_MATCH}
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
    return LifecycleState(
        **{
            f.name: f.kind(v) if v is not None and not isinstance(v, f.kind) else v
            for f, v in zip(_STATE, r, strict=True)
        }
    )


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
        for f in _STATE:
            if f.column is None and getattr(mv.state, f.name) != getattr(mv.before, f.name):
                raise ValueError(f"a move changed {f.name}, which no column holds: {mv}")
        shapes.append(
            {"v_shape": shape}
            | {f"v_k_{f.name}": getattr(mv.before, f.name) for f in _STATE}
            | {f"v_n_{f.column}": getattr(mv.state, f.name) for f in _STATE if f.column is not None}
            | {f"v_n_{f.column}": getattr(mv, f.name) for f in _PLAN}
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


# -- remote work in batches -------------------------------------------------------------------------------


def claim_remote(
    uow: SubscriptionUnitOfWork, as_of: datetime, limit: int, skip: set[str]
) -> list[Subscription]:
    """Lock up to `limit` subscriptions with REMOTE work due by `as_of` (earliest first, other than `skip`,
    skipping rows another sweep holds) and load them into the unit of work's repository, in one statement,
    so `uow.subscriptions.save` writes them back (with the version check) without reading each again."""
    stmt = (
        select(SubscriptionRow)
        .where(
            SubscriptionRow.due_kind == REMOTE,
            SubscriptionRow.next_action_time <= as_of,
            SubscriptionRow.subscription_id.not_in(skip) if skip else True,
        )
        .order_by(SubscriptionRow.next_action_time)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    rows = uow.session.execute(stmt).scalars().all()
    loaded = uow.subscriptions._rows  # what `Repository.get` keeps for `save`
    out = []
    for row in rows:
        loaded[row.subscription_id] = row
        out.append(to_domain(row))
    return out


def renewals_of(
    uow: SubscriptionUnitOfWork, keys: Sequence[tuple[str, date]]
) -> dict[tuple[str, date], Renewal]:
    """The renewals recorded for these (subscription, term start) pairs, in one statement (the rows stay in
    the session, so `Repository.renewal` and `record_renewal` find them without reading again)."""
    if not keys:
        return {}
    stmt = select(RenewalRow).where(
        tuple_(RenewalRow.subscription_id, RenewalRow.period_start_date).in_(list(keys))
    )
    return {
        (r.subscription_id, r.period_start_date): Renewal(
            r.subscription_id, r.period_start_date, r.invoice_id, r.order_number, r.status
        )
        for r in uow.session.execute(stmt).scalars()
    }


def add_renewals(uow: SubscriptionUnitOfWork, rows: list[dict]) -> None:
    """Insert renewal rows (new periods only) with one statement; the primary key (subscription, term
    start) still refuses a period renewed twice, failing the whole batch."""
    uow.insert_many(RenewalRow.__table__, rows)  # type: ignore[arg-type]
