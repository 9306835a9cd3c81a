"""The lifecycle sweep of the subscription service (rules §3–§4): the work that has come due. Billing's
events that start or end a shutoff are in `consumers.py`; the test clock's driver in `clock_driver.py`.

The sweep finds due work through `next_action_time` and `due_kind` (indexed together, recomputed on every
change), so its cost grows with the work due, not with the number of subscriptions:

- LOCAL work (reminders, Active -> Expired at the end of an unrenewed term, Expired -> Suspended ->
  Cancelled, the end of a trial or of an upgrade's overlap) depends on a subscription's lifecycle state
  alone (`lifecycle.move`). On PostgreSQL a batch locks its due rows with `FOR UPDATE SKIP LOCKED`, decides
  once per distinct state, and applies the moves, history, reminders and events in one statement
  (`adapters/bulk.py`); on the embedded database the same moves go through the repository row by row.
- REMOTE work (a renewal invoice, marking an account prepay-only) needs billing. On PostgreSQL a batch of
  due subscriptions is claimed and loaded with one statement (`FOR UPDATE SKIP LOCKED`) and done in one
  transaction: billing is asked for each renewal's invoice, then the subscriptions, orders, renewal rows and
  events are written, and the transaction commits once. A call to billing that fails leaves its
  subscription untouched and due (the rest of the batch commits); anything else that fails rolls the batch
  back and the pass goes on one subscription per transaction, as on the embedded database. Renewal
  invoices carry a request id derived from (subscription, term start) and `renewals` has that pair as its
  primary key, so a raced, retried or rolled-back sweep never renews or bills one period twice (billing
  answers a repeated request id with the invoice it issued first).
- Partner quotes past their validity date are recorded as expired, each publishing
  `subscription.quote_expired` once (`quotes.expire_due`); `next_due` includes the next expiry, so the test
  clock stops at it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, cast

from services.subscription import quotes
from services.subscription.adapters import bulk
from services.subscription.adapters.peers import Billing, IssuedInvoice
from services.subscription.adapters.repository import Renewal
from services.subscription.adapters.unit_of_work import (
    SubscriptionUnitOfWork,
    reading,
    subscription_db,
    writing,
)
from services.subscription.booking import Booked, Order, book_order, record_moves, renewed
from services.subscription.domain import lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.lifecycle import LOCAL, REMOTE
from services.subscription.domain.model import Stage, Transition
from services.subscription.domain.subscription import Subscription, lifecycle_state, with_state
from shared.db import Database
from shared.errors import DomainError, InvalidInput, NotFound, RuleViolation
from shared.telemetry.metrics import record_sweep

log = logging.getLogger("tenure.subscription.lifecycle")

BATCH = 10000
# Subscriptions with REMOTE work per transaction on PostgreSQL (their rows stay locked while billing is asked
# for each one's invoice).
REMOTE_BATCH = 200


@dataclass
class SweepCounts:
    renewed: int = 0
    reminded: int = 0
    expired: int = 0
    suspended: int = 0
    cancelled: int = 0
    quotes_expired: int = 0

    def count(self, transitions: Sequence[Transition], reminders: Sequence[int] = (), times: int = 1) -> None:
        for t in transitions:
            if t.to_stage is Stage.EXPIRED:
                self.expired += times
            elif t.to_stage is Stage.SUSPENDED:
                self.suspended += times
            elif t.to_stage is Stage.CANCELLED:
                self.cancelled += times
        self.reminded += len(reminders) * times

    def add(self, other: SweepCounts) -> None:
        for name, n in vars(other).items():
            setattr(self, name, getattr(self, name) + n)

    @property
    def total(self) -> int:
        return (
            self.renewed
            + self.reminded
            + self.expired
            + self.suspended
            + self.cancelled
            + self.quotes_expired
        )


def run(db: Database, billing: Billing, as_of: datetime, *, batch: int = BATCH) -> SweepCounts:
    """Everything due by `as_of`: local work in batches, then the renewals and other calls to billing, again
    until nothing is left (a renewal can make a reminder of the new term due when the sweep runs late)."""
    counts, started = SweepCounts(), time.perf_counter()
    local = _local_pass_set_based if db.is_postgres else _local_pass_by_row
    for _ in range(20):
        moved = local(db, as_of, batch, counts)
        called = _remote_pass(db, billing, as_of, counts)
        if not moved and not called:
            break
    with reading(db) as uow:  # a read first: most sweeps have no quote to expire and take no write lock
        due = quotes.due_to_expire(uow, as_of)
    if due:
        with writing(subscription_db(db)) as uow:
            counts.quotes_expired = quotes.expire_due(uow, as_of)
    record_sweep(db, "lifecycle", time.perf_counter() - started, vars(counts))
    return counts


def next_due(uow: SubscriptionUnitOfWork, after: datetime) -> datetime | None:
    """The first instant after `after` at which the sweep has work: a subscription's next action or a
    quote's expiry."""
    due = [uow.subscriptions.next_action_after(after), quotes.next_expiry_after(uow, after)]
    return min((t for t in due if t is not None), default=None)


def _moves(states: Sequence[lifecycle.LifecycleState], as_of: datetime) -> list[lifecycle.Move]:
    moves = [lifecycle.move(s, as_of) for s in states]
    for mv in moves:
        if mv.stuck:  # never expected: do not spin on the rows
            log.error("work still due at %s after the sweep for state %s; retried later", as_of, mv.before)
    return moves


def _local_pass_set_based(db: Database, as_of: datetime, batch: int, counts: SweepCounts) -> int:
    """PostgreSQL: per batch, lock the due rows and read their distinct states, decide each state's move
    once, and apply every move with one statement (`bulk`)."""
    done = 0
    while True:
        with db.unit_of_work() as uow:
            moves = _moves(bulk.due_states(uow, as_of, batch), as_of)
            if not moves:
                return done
            applied = bulk.apply_moves(uow, as_of, batch, moves)
        moved = sum(applied.moved.values())
        for shape, n in applied.moved.items():
            counts.count(moves[shape].transitions, moves[shape].reminders, times=n)
        done += moved
        if moved == 0:  # rows claimed but none matched a state read in the same transaction: a bug
            log.error("the sweep claimed %d rows and moved none; stopping this pass", applied.claimed)
            return done
        if applied.claimed < batch and moved == applied.claimed:
            return done


def _local_pass_by_row(db: Database, as_of: datetime, batch: int, counts: SweepCounts) -> int:
    """The embedded database (one writer at a time): the same moves, applied subscription by subscription
    through the repository, with the events every other change writes."""
    done = 0
    while True:
        with writing(db) as uow:
            repo = uow.subscriptions
            ids = repo.due(LOCAL, as_of, batch)
            decided: dict[lifecycle.LifecycleState, lifecycle.Move] = {}
            for sid in ids:
                sub = repo.get(sid)
                state = lifecycle_state(sub)
                if state not in decided:
                    decided[state] = _moves([state], as_of)[0]
                mv = decided[state]
                after = repo.save(with_state(sub, mv.state), uow.now, plan=(mv.next_action_time, mv.due_kind))
                record_moves(uow, sub, after, mv.transitions, mv.reminders)
                counts.count(mv.transitions, mv.reminders)
        done += len(ids)
        if len(ids) < batch:
            return done


def _remote_pass(db: Database, billing: Billing, as_of: datetime, counts: SweepCounts) -> int:
    if db.is_postgres:
        return _remote_pass_batched(db, billing, as_of, counts)
    return _remote_pass_by_row(db, billing, as_of, counts, set())


def _remote_pass_batched(db: Database, billing: Billing, as_of: datetime, counts: SweepCounts) -> int:
    """PostgreSQL: REMOTE work `REMOTE_BATCH` subscriptions per transaction (`_remote_batch`). Counts are
    taken once the batch has committed."""
    done = 0
    skip: set[str] = set()
    typed = subscription_db(db)
    while True:
        batch = SweepCounts()
        try:
            with writing(typed) as uow:
                subs = bulk.claim_remote(uow, as_of, REMOTE_BATCH, skip)
                if not subs:
                    return done
                n = _remote_batch(uow, billing, subs, as_of, batch, skip)
        except Exception:
            log.error(
                "a batch of due work failed and was rolled back; going on one subscription at a time",
                exc_info=True,
            )
            return done + _remote_pass_by_row(db, billing, as_of, counts, skip)
        counts.add(batch)
        done += n


class _Deferred:
    """Events of a batch written to the outbox together at its end (`UnitOfWork.publish_many`), in the
    order they were published."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str, Any]] = []

    def publish(
        self, event_type: str, *, account_id: str = "", subscription_id: str = "", **payload: Any
    ) -> str:
        ((name, message),) = payload.items()
        self.events.append((event_type, account_id, subscription_id, name, message))
        return ""


def _remote_batch(
    uow: SubscriptionUnitOfWork,
    billing: Billing,
    subs: Sequence[Subscription],
    as_of: datetime,
    counts: SweepCounts,
    skip: set[str],
) -> int:
    """The REMOTE work of claimed subscriptions in this unit of work. A plain renewal (the usual work) asks
    billing first and writes after, so a failed call leaves nothing of its subscription written: it is
    logged, skipped for the rest of the pass and stays due. Other work runs the row-by-row code in a
    savepoint of its own. Returns the subscriptions done."""
    catalog = uow.catalog.load()  # once per batch: orders name the version they were priced from
    recorded = bulk.renewals_of(uow, [(s.subscription_id, s.renewal_date) for s in subs])
    deferred = _Deferred()
    announce = renewed(cast(SubscriptionUnitOfWork, deferred))
    new_renewals: list[dict] = []

    def record(**row: Any) -> None:
        if (row["subscription_id"], row["period_start_date"]) in recorded:  # a declined one, renewed now
            uow.subscriptions.record_renewal(**row)
        else:
            now = row.pop("now")
            new_renewals.append(row | {"create_time": now, "update_time": now})

    done = 0
    for sub in subs:
        sid = sub.subscription_id
        adv = lifecycle.advance(lifecycle_state(sub), as_of)
        mine = SweepCounts()
        try:
            if adv.remote == lifecycle.RENEW and not adv.transitions and not adv.reminders:
                r = _bill_renewal(
                    billing, with_state(sub, adv.state), as_of, catalog, recorded.get((sid, sub.renewal_date))
                )
            else:
                with uow.session.begin_nested():
                    _remote_work(uow, billing, sub, as_of, mine, lambda _: catalog)
                counts.add(mine)
                done += 1
                continue
        except Exception as e:  # one subscription's failure must not hold back the others
            level = logging.WARNING if isinstance(e, DomainError) else logging.ERROR
            log.log(level, "subscription %s: due work failed; the next sweep retries it", sid, exc_info=True)
            skip.add(sid)
            continue
        _book_renewal(uow, r, as_of, mine, announce, record)
        counts.add(mine)
        done += 1
    bulk.add_renewals(uow, new_renewals)
    uow.publish_many(deferred.events)
    return done


def _remote_pass_by_row(
    db: Database, billing: Billing, as_of: datetime, counts: SweepCounts, skip: set[str]
) -> int:
    """One subscription per transaction (the embedded database; on PostgreSQL after a batch failed)."""
    done = 0
    catalogs: list[Catalog] = []  # the price book, read once per pass

    def catalog(uow: SubscriptionUnitOfWork) -> Catalog:
        if not catalogs:
            catalogs.append(uow.catalog.load())
        return catalogs[0]

    typed = subscription_db(db)
    while True:
        sid = None
        try:
            with writing(typed) as uow:
                sid = uow.subscriptions.claim_due(REMOTE, as_of, skip)
                if sid is None:
                    return done
                _remote_work(uow, billing, uow.subscriptions.get(sid), as_of, counts, catalog)
            done += 1
        except Exception as e:  # one subscription's failure must not hold back the others
            level = logging.WARNING if isinstance(e, DomainError) else logging.ERROR
            log.log(level, "subscription %s: due work failed; the next sweep retries it", sid, exc_info=True)
            if sid is None:
                raise
            skip.add(sid)


def _remote_work(
    uow: SubscriptionUnitOfWork,
    billing: Billing,
    sub: Subscription,
    as_of: datetime,
    counts: SweepCounts,
    catalog: Callable[[SubscriptionUnitOfWork], Catalog],
) -> None:
    adv = lifecycle.advance(lifecycle_state(sub), as_of)
    before = sub
    sub = with_state(sub, adv.state)
    if adv.transitions or adv.reminders:
        record_moves(uow, before, sub, adv.transitions, adv.reminders)
        counts.count(adv.transitions, adv.reminders)
    if adv.remote == lifecycle.RENEW:
        _auto_renew(uow, billing, sub, as_of, counts, catalog(uow))
    elif adv.remote == lifecycle.MARK_PREPAY_ONLY:
        billing.mark_prepay_only(
            request_id=f"prepay:{sub.subscription_id}:{sub.shutoff_start_date}",
            account_id=sub.account_id,
            reason=f"subscription {sub.subscription_id} was cancelled for an unpaid invoice "
            f"({sub.shutoff_invoice_id})",
        )
        uow.subscriptions.save(replace(sub, prepay_pending=False), uow.now)
    else:
        uow.subscriptions.save(sub, uow.now)


def renewal_order_number(subscription_id: str, period_start: date) -> str:
    """The same order number for every attempt at one renewal (a retried sweep names the same order)."""
    digest = hashlib.sha256(f"{subscription_id}:{period_start.isoformat()}".encode()).hexdigest()
    return f"ORD-{period_start:%Y%m%d}-{digest[:10].upper()}"


@dataclass
class _Renewal:
    """A renewal billed and not yet written: the subscription as due, its next term, and billing's answer."""

    sub: Subscription
    period: date
    order_number: str
    key: str
    out: ops.Outcome | None = None  # None: the term was renewed already
    invoice: IssuedInvoice | None = None
    declined: bool = False


def _auto_renew(
    uow: SubscriptionUnitOfWork,
    billing: Billing,
    sub: Subscription,
    as_of: datetime,
    counts: SweepCounts,
    catalog: Catalog,
) -> None:
    repo = uow.subscriptions
    r = _bill_renewal(billing, sub, as_of, catalog, repo.renewal(sub.subscription_id, sub.renewal_date))
    _book_renewal(uow, r, as_of, counts, renewed(uow), repo.record_renewal)


def _bill_renewal(
    billing: Billing, sub: Subscription, as_of: datetime, catalog: Catalog, done: Renewal | None
) -> _Renewal:
    """Renew at the renewal instant: pending term, product and renewal seats at the renewal price, invoiced
    and charged by billing (nothing is written here). `done`: the renewal already recorded for the period."""
    period = sub.renewal_date
    order_number = renewal_order_number(sub.subscription_id, period)
    key = f"renewal:{sub.subscription_id}:{period.isoformat()}"
    if done is not None and done.status != "DECLINED":
        return _Renewal(sub, period, order_number, key)
    out = ops.renew_term(sub, catalog, as_of, reason="renewed")
    invoice = None
    try:
        invoice = billing.create_invoice(
            request_id=key,
            sub=out.subscription,
            order_number=order_number,
            kind="renewal",
            lines=out.lines,
            term_start_date=period,
        )
        declined = invoice.payment_status == "DECLINED"
    except (RuleViolation, NotFound, InvalidInput) as e:  # e.g. the payment method was removed
        log.info("subscription %s: billing refused the renewal (%s)", sub.subscription_id, e.reason)
        declined = True
    return _Renewal(sub, period, order_number, key, out, invoice, declined)


def _book_renewal(
    uow: SubscriptionUnitOfWork,
    r: _Renewal,
    as_of: datetime,
    counts: SweepCounts,
    announce: Callable[[Booked], None],
    record: Callable[..., object],
) -> None:
    """Write a billed renewal. A paid (or invoiced) renewal starts the next term from the anchor; a declined
    one starts the shutoff and leaves the invoice open: paying it later reinstates the same term."""
    now = uow.now
    repo = uow.subscriptions
    sub, period, order_number, key = r.sub, r.period, r.order_number, r.key
    if r.out is None:
        log.error("subscription %s: the term from %s was renewed already", sub.subscription_id, period)
        repo.save(sub, now)
        return
    invoice = r.invoice
    invoice_id = invoice.invoice_id if invoice else ""
    if r.declined or invoice is None:
        state, first = lifecycle.start_shutoff(lifecycle_state(sub), period, lifecycle.PAYMENT_FAILED)
        adv = lifecycle.advance(state, as_of)
        shut = replace(with_state(sub, adv.state), shutoff_invoice_id=invoice_id)
        saved = repo.save(shut, now)
        record(
            subscription_id=sub.subscription_id,
            period_start_date=period,
            invoice_id=invoice_id,
            order_number=order_number,
            status="DECLINED",
            now=now,
        )
        transitions = [first, *adv.transitions]
        record_moves(uow, sub, saved, transitions, adv.reminders)
        counts.count(transitions, adv.reminders)
        return
    order = Order("renewal", r.out.subscription, r.out.lines, key, order_number, period_start_date=period)
    saved = book_order(uow, None, order, announce, issued=invoice).sub
    record(
        subscription_id=saved.subscription_id,
        period_start_date=period,
        invoice_id=invoice_id,
        order_number=order_number,
        status="OPEN" if invoice.payment_status == "PENDING" else "PAID",
        now=now,
    )
    counts.renewed += 1
