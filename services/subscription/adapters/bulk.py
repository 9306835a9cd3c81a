"""Set-based statements of the lifecycle sweep: claim due rows, move many rows in one statement, and
insert their history, reminders and outbox events in bulk.

The claim reads plain rows (no ORM objects) through the `(due_kind, next_action_time)` index and locks
them with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas split the due rows. Every statement that
moves a row also bumps its `version`, so a request that read the row before the sweep fails with ABORTED
instead of writing over the move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date
from sqlalchemy import String, any_, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from services.subscription.adapters.tables import ReminderRow, SubscriptionRow, TransitionRow
from services.subscription.domain import lifecycle
from services.subscription.domain.lifecycle import LifecycleState
from services.subscription.domain.model import PaymentMethodType, Stage, Term, Transition
from shared.db import UnitOfWork
from shared.money import round_money, to_proto
from tenure.common.v1 import common_pb2
from tenure.events.v1 import events_pb2

SUB = SubscriptionRow.__table__
TRANSITIONS = TransitionRow.__table__
REMINDERS = ReminderRow.__table__

_STAGE = {s: common_pb2.Stage.Value(f"STAGE_{s.value}") for s in Stage}
_TERM = {t.value: common_pb2.Term.Value(f"TERM_{t.value}") for t in Term}
_PLAN = {n.removeprefix("PLAN_"): v for n, v in common_pb2.Plan.items()}
_CHANNEL = {n.removeprefix("CHANNEL_"): v for n, v in common_pb2.Channel.items()}
_POLICY = {n.removeprefix("SHUTOFF_POLICY_"): v for n, v in common_pb2.ShutoffPolicy.items()}


def claim_due(uow: UnitOfWork, as_of: datetime, kind: int, limit: int) -> Sequence[Mapping]:
    """Up to `limit` rows whose next work of `kind` is due by `as_of`, earliest first, locked (skipping rows
    another sweep holds)."""
    stmt = (
        select(SUB)
        .where(SUB.c.due_kind == kind, SUB.c.next_action_time <= as_of)
        .order_by(SUB.c.next_action_time)
        .limit(limit)
    )
    return uow.session.execute(uow.for_update(stmt)).mappings().all()


def state_of(m: Mapping) -> LifecycleState:
    return LifecycleState(
        stage=Stage(m["stage"]),
        term=Term(m["term"]),
        time_zone=m["time_zone"],
        renewal_date=m["renewal_date"],
        renewal_time=m["renewal_time"],
        current_period_start_date=m["current_period_start_date"],
        auto_renew=m["auto_renew"],
        access_until=m["access_until_time"],
        upgraded=bool(m["upgraded_to"]),
        pays_by_invoice=m["payment_method_type"] == PaymentMethodType.INVOICE.value,
        shutoff_reason=m["shutoff_reason"],
        shutoff_start_date=m["shutoff_start_date"],
        suspend_time=m["suspend_time"],
        cancel_time=m["cancel_time"],
        last_reminder_days=m["last_reminder_days"],
        prepay_pending=m["prepay_pending"],
    )


# -- moves ---------------------------------------------------------------------------------------------


def _among(uow: UnitOfWork, ids: list[str]):
    """`subscription_id` among `ids`: one array parameter on PostgreSQL (`= ANY`), an IN list elsewhere."""
    if uow.db.is_postgres:
        return SUB.c.subscription_id == any_(bindparam("among_ids", ids, type_=ARRAY(String)))
    return SUB.c.subscription_id.in_(ids)


def suspend(uow: UnitOfWork, ids: list[str], now: datetime) -> None:
    """Expired -> Suspended for rows whose instants were fixed when the shutoff started."""
    if ids:
        uow.session.execute(
            update(SUB)
            .where(_among(uow, ids), SUB.c.stage == Stage.EXPIRED.value)
            .values(
                stage=Stage.SUSPENDED.value,
                next_action_time=SUB.c.cancel_time,
                due_kind=lifecycle.LOCAL,
                version=SUB.c.version + 1,
                update_time=now,
            )
        )


def cancel(uow: UnitOfWork, ids: list[str], now: datetime) -> None:
    """Suspended -> Cancelled at the end of the shutoff (nothing is due afterwards)."""
    if ids:
        uow.session.execute(
            update(SUB)
            .where(_among(uow, ids), SUB.c.stage == Stage.SUSPENDED.value)
            .values(
                stage=Stage.CANCELLED.value,
                auto_renew=False,
                next_action_time=None,
                due_kind=lifecycle.LOCAL,
                version=SUB.c.version + 1,
                update_time=now,
            )
        )


_SET_STATE = (
    update(SUB)
    .where(SUB.c.subscription_id == bindparam("b_id"))
    .values(
        stage=bindparam("b_stage"),
        auto_renew=bindparam("b_auto_renew"),
        shutoff_reason=bindparam("b_shutoff_reason"),
        shutoff_start_date=bindparam("b_shutoff_start_date"),
        suspend_time=bindparam("b_suspend_time"),
        cancel_time=bindparam("b_cancel_time"),
        last_reminder_days=bindparam("b_last_reminder_days"),
        prepay_pending=bindparam("b_prepay_pending"),
        next_action_time=bindparam("b_next_action_time"),
        due_kind=bindparam("b_due_kind"),
        version=SUB.c.version + 1,
        update_time=bindparam("b_now"),
    )
)


def state_params(
    subscription_id: str, s: LifecycleState, next_action_time: datetime | None, due_kind: int, now: datetime
) -> dict:
    return {
        "b_id": subscription_id,
        "b_stage": s.stage.value,
        "b_auto_renew": s.auto_renew,
        "b_shutoff_reason": s.shutoff_reason,
        "b_shutoff_start_date": s.shutoff_start_date,
        "b_suspend_time": s.suspend_time,
        "b_cancel_time": s.cancel_time,
        "b_last_reminder_days": s.last_reminder_days,
        "b_prepay_pending": s.prepay_pending,
        "b_next_action_time": next_action_time,
        "b_due_kind": due_kind,
        "b_now": now,
    }


_PG_SET_STATES = text(
    """
    UPDATE subscriptions AS s
       SET stage = v.stage, auto_renew = v.auto_renew, shutoff_reason = v.shutoff_reason,
           shutoff_start_date = v.shutoff_start_date, suspend_time = v.suspend_time,
           cancel_time = v.cancel_time, last_reminder_days = v.last_reminder_days,
           prepay_pending = v.prepay_pending, next_action_time = v.next_action_time,
           due_kind = v.due_kind, version = s.version + 1, update_time = :now
      FROM unnest(CAST(:ids AS varchar[]), CAST(:stages AS varchar[]), CAST(:auto_renew AS boolean[]),
                  CAST(:reasons AS varchar[]), CAST(:starts AS date[]), CAST(:suspends AS timestamptz[]),
                  CAST(:cancels AS timestamptz[]), CAST(:reminders AS integer[]), CAST(:prepay AS boolean[]),
                  CAST(:nexts AS timestamptz[]), CAST(:kinds AS smallint[]))
           AS v(id, stage, auto_renew, shutoff_reason, shutoff_start_date, suspend_time, cancel_time,
                last_reminder_days, prepay_pending, next_action_time, due_kind)
     WHERE s.subscription_id = v.id
    """
)
_ARRAYS = {
    "ids": "b_id",
    "stages": "b_stage",
    "auto_renew": "b_auto_renew",
    "reasons": "b_shutoff_reason",
    "starts": "b_shutoff_start_date",
    "suspends": "b_suspend_time",
    "cancels": "b_cancel_time",
    "reminders": "b_last_reminder_days",
    "prepay": "b_prepay_pending",
    "nexts": "b_next_action_time",
    "kinds": "b_due_kind",
}


def set_states(uow: UnitOfWork, params: list[dict]) -> None:
    """Rows whose lifecycle fields differ row by row (a new shutoff schedule, a reminder sent, …): on
    PostgreSQL one UPDATE joined to the new values passed as arrays; elsewhere one statement executed for
    many parameter sets."""
    if not params:
        return
    if uow.db.is_postgres:
        arrays = {name: [p[key] for p in params] for name, key in _ARRAYS.items()}
        uow.session.execute(_PG_SET_STATES, {**arrays, "now": params[0]["b_now"]})
    else:
        uow.session.execute(_SET_STATE, params)


def add_transitions(uow: UnitOfWork, rows: list[dict]) -> None:
    uow.insert_many(TRANSITIONS, rows)


def transition_row(subscription_id: str, t: Transition, period_key: str | None) -> dict:
    return {
        "subscription_id": subscription_id,
        "from_stage": t.from_stage.value if t.from_stage else "",
        "to_stage": t.to_stage.value,
        "transition_time": t.at,
        "reason": t.reason,
        "period_key": period_key,
    }


def add_reminders(uow: UnitOfWork, rows: list[dict]) -> None:
    """Insert the reminders sent; the primary key (subscription, renewal date, days) refuses a second one."""
    uow.insert_many(REMINDERS, rows)


# -- events --------------------------------------------------------------------------------------------


def _ts(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    return Timestamp(seconds=int(dt.timestamp()), nanos=dt.microsecond * 1000)


@lru_cache(maxsize=4096)
def _date(d: date | None) -> Date | None:
    # cached: the message is copied into whatever it is assigned to, so sharing it is safe
    return Date(year=d.year, month=d.month, day=d.day) if d else None


@lru_cache(maxsize=4096)
def _price(amount: Decimal, currency: str):
    return to_proto(round_money(Decimal(amount), currency), currency)


def snapshot(m: Mapping, s: LifecycleState, stage: Stage | None = None) -> events_pb2.SubscriptionSnapshot:
    """The event snapshot of a claimed row with its new lifecycle state (the same fields as
    `codec.snapshot_pb`, read from the row instead of a domain object)."""
    renewal_time = m["renewal_time"]
    currency = m["currency"]
    return events_pb2.SubscriptionSnapshot(
        subscription_id=m["subscription_id"],
        account_id=m["account_id"],
        product_code=m["product_code"],
        product_name=m["product_name"],
        plan=_PLAN[m["plan"]],
        term=_TERM[m["term"]],
        seats=m["seats"],
        stage=_STAGE[stage or s.stage],
        shutoff_policy=_POLICY[m["shutoff_policy"]],
        unit_price=_price(m["unit_price"], currency),
        current_period_start_date=_date(m["current_period_start_date"]),
        renewal_date=_date(m["renewal_date"]),
        renewal_time=_ts(renewal_time),
        expiry_date=_date(m["renewal_date"] - lifecycle.ONE_DAY),
        expiry_time=Timestamp(seconds=int(renewal_time.timestamp()) - 1),
        auto_renew=s.auto_renew,
        buyer_email=m["buyer_email"],
        buyer_name=m["buyer_name"],
        buyer_language=m["buyer_language"],
        channel=_CHANNEL[m["channel"]],
        time_zone=m["time_zone"],
        access_until_time=_ts(m["access_until_time"]),
        renewal_seats=m["renewal_seats"],
        included_product_codes=m["included_products"].split(),
    )


def stage_changed(snap: events_pb2.SubscriptionSnapshot, t: Transition) -> tuple[str, str, object]:
    return (
        "subscription.stage_changed",
        "stage_changed",
        events_pb2.StageChanged(
            subscription=snap,
            from_stage=_STAGE[t.from_stage] if t.from_stage else 0,
            to_stage=_STAGE[t.to_stage],
            reason=t.reason,
            transition_time=_ts(t.at),
        ),
    )


def renewal_reminder(snap: events_pb2.SubscriptionSnapshot, days_before: int) -> tuple[str, str, object]:
    return (
        "subscription.renewal_reminder",
        "renewal_reminder",
        events_pb2.RenewalReminder(subscription=snap, days_before=days_before),
    )
