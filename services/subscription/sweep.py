"""The lifecycle sweep of the subscription service (rules §3–§4): the work that has come due. Billing's
events that start or end a shutoff are in `consumers.py`; the test clock's driver in `clock_driver.py`.

The sweep finds due work through `next_action_time` and `due_kind` (indexed together, recomputed on every
change), so its cost grows with the work due, not with the number of subscriptions:

- LOCAL work (reminders, Active -> Expired at the end of an unrenewed term, Expired -> Suspended ->
  Cancelled, the end of a trial or of an upgrade's overlap) depends on a subscription's lifecycle state
  alone (`lifecycle.move`). On PostgreSQL a batch locks its due rows with `FOR UPDATE SKIP LOCKED`, decides
  once per distinct state, and applies the moves, history, reminders and events in one statement
  (`adapters/bulk.py`); on the embedded database the same moves go through the repository row by row.
- REMOTE work (a renewal invoice, marking an account prepay-only) needs billing and runs one subscription
  per transaction, claimed the same way. Renewal invoices carry a request id derived from (subscription,
  term start) and `renewals` has that pair as its primary key, so a raced or retried sweep never renews or
  bills one period twice.
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

from services.subscription import quotes
from services.subscription.adapters import bulk
from services.subscription.adapters.peers import Billing
from services.subscription.adapters.unit_of_work import (
    SubscriptionUnitOfWork,
    reading,
    subscription_db,
    writing,
)
from services.subscription.booking import Order, book_order, record_moves, renewed
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
    done = 0
    skip: set[str] = set()
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


def _auto_renew(
    uow: SubscriptionUnitOfWork,
    billing: Billing,
    sub: Subscription,
    as_of: datetime,
    counts: SweepCounts,
    catalog: Catalog,
) -> None:
    """Renew at the renewal instant: pending term, product and renewal seats at the renewal price, invoiced
    and charged by billing. A paid (or invoiced) renewal starts the next term from the anchor; a declined
    one starts the shutoff and leaves the invoice open: paying it later reinstates the same term."""
    now = uow.now
    repo = uow.subscriptions
    period = sub.renewal_date
    done = repo.renewal(sub.subscription_id, period)
    if done is not None and done.status != "DECLINED":
        log.error("subscription %s: the term from %s was renewed already", sub.subscription_id, period)
        repo.save(sub, now)
        return
    out = ops.renew_term(sub, catalog, as_of, reason="renewed")
    new = out.subscription
    order_number = renewal_order_number(sub.subscription_id, period)
    key = f"renewal:{sub.subscription_id}:{period.isoformat()}"
    invoice = None
    try:
        invoice = billing.create_invoice(
            request_id=key,
            sub=new,
            order_number=order_number,
            kind="renewal",
            lines=out.lines,
            term_start_date=period,
        )
        declined = invoice.payment_status == "DECLINED"
    except (RuleViolation, NotFound, InvalidInput) as e:  # e.g. the payment method was removed
        log.info("subscription %s: billing refused the renewal (%s)", sub.subscription_id, e.reason)
        declined = True
    invoice_id = invoice.invoice_id if invoice else ""
    if declined or invoice is None:
        state, first = lifecycle.start_shutoff(lifecycle_state(sub), period, lifecycle.PAYMENT_FAILED)
        adv = lifecycle.advance(state, as_of)
        shut = replace(with_state(sub, adv.state), shutoff_invoice_id=invoice_id)
        saved = repo.save(shut, now)
        repo.record_renewal(
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
    order = Order("renewal", new, out.lines, key, order_number, period_start_date=period)
    saved = book_order(uow, None, order, renewed(uow), issued=invoice).sub
    repo.record_renewal(
        subscription_id=saved.subscription_id,
        period_start_date=period,
        invoice_id=invoice_id,
        order_number=order_number,
        status="OPEN" if invoice.payment_status == "PENDING" else "PAID",
        now=now,
    )
    counts.renewed += 1
