"""The time-driven part of the subscription service (SPEC §3–§4): the lifecycle sweep, the billing events
that start or end a shutoff, and the test clock that moves all four services.

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
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from services.subscription import codec
from services.subscription.adapters import bulk
from services.subscription.adapters.peers import PeerClock
from services.subscription.adapters.repository import Repository, load_catalog
from services.subscription.adapters.tables import ReminderRow, SubscriptionRow
from services.subscription.domain import lifecycle
from services.subscription.domain import subscription as ops
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.lifecycle import LOCAL, REMOTE
from services.subscription.domain.model import Stage, Transition
from services.subscription.domain.subscription import Subscription, lifecycle_state, with_state
from services.subscription.handlers import book_renewal
from shared.clock import Clock
from shared.db import Database, UnitOfWork
from shared.errors import DomainError, InvalidInput, NotFound, PeerUnavailable, RuleViolation
from shared.money import from_proto
from shared.outbox import Relay
from tenure.events.v1 import events_pb2

log = logging.getLogger("tenure.subscription.lifecycle")

BATCH = 10000


@dataclass
class SweepCounts:
    renewed: int = 0
    reminded: int = 0
    expired: int = 0
    suspended: int = 0
    cancelled: int = 0

    def count(self, transitions, reminders=(), times: int = 1) -> None:
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
        return self.renewed + self.reminded + self.expired + self.suspended + self.cancelled


# -- the sweep ----------------------------------------------------------------------------------------


def run(db: Database, billing, as_of: datetime, *, batch: int = BATCH) -> SweepCounts:
    """Everything due by `as_of`: local work in batches, then the renewals and other calls to billing, again
    until nothing is left (a renewal can make a reminder of the new term due when the sweep runs late)."""
    counts = SweepCounts()
    local = _local_pass_set_based if db.is_postgres else _local_pass_by_row
    for _ in range(20):
        moved = local(db, as_of, batch, counts)
        called = _remote_pass(db, billing, as_of, counts)
        if not moved and not called:
            break
    return counts


def _moves(states, as_of: datetime) -> list[lifecycle.Move]:
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
    t = SubscriptionRow.__table__
    while True:
        with db.unit_of_work() as uow:
            ids = (
                uow.session.execute(
                    select(t.c.subscription_id)
                    .where(t.c.due_kind == LOCAL, t.c.next_action_time <= as_of)
                    .order_by(t.c.next_action_time)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            repo = Repository(uow.session, postgres=False)
            decided: dict[lifecycle.LifecycleState, lifecycle.Move] = {}
            for sid in ids:
                sub = repo.get(sid)
                state = lifecycle_state(sub)
                if state not in decided:
                    decided[state] = _moves([state], as_of)[0]
                mv = decided[state]
                after = repo.save(with_state(sub, mv.state), uow.now, plan=(mv.next_action_time, mv.due_kind))
                _record(uow, repo, sub, after, mv.transitions, mv.reminders)
                counts.count(mv.transitions, mv.reminders)
        done += len(ids)
        if len(ids) < batch:
            return done


def _remote_pass(db: Database, billing, as_of: datetime, counts: SweepCounts) -> int:
    done = 0
    skip: set[str] = set()
    catalogs: list[Catalog] = []  # the price book, read once per pass

    def catalog(session) -> Catalog:
        if not catalogs:
            catalogs.append(load_catalog(session))
        return catalogs[0]

    while True:
        sid = None
        try:
            with db.unit_of_work() as uow:
                stmt = (
                    select(SubscriptionRow.subscription_id)
                    .where(
                        SubscriptionRow.due_kind == REMOTE,
                        SubscriptionRow.next_action_time <= as_of,
                        SubscriptionRow.subscription_id.not_in(skip) if skip else True,
                    )
                    .order_by(SubscriptionRow.next_action_time)
                    .limit(1)
                )
                sid = uow.session.execute(uow.for_update(stmt)).scalar()
                if sid is None:
                    return done
                repo = Repository(uow.session, postgres=uow.db.is_postgres)
                _remote_work(uow, billing, repo, repo.get(sid), as_of, counts, catalog)
            done += 1
        except Exception as e:  # one subscription's failure must not hold back the others
            level = logging.WARNING if isinstance(e, DomainError) else logging.ERROR
            log.log(level, "subscription %s: due work failed; the next sweep retries it", sid, exc_info=True)
            if sid is None:
                raise
            skip.add(sid)


def _remote_work(
    uow: UnitOfWork, billing, repo: Repository, sub: Subscription, as_of: datetime, counts, catalog
) -> None:
    adv = lifecycle.advance(lifecycle_state(sub), as_of)
    before = sub
    sub = with_state(sub, adv.state)
    if adv.transitions or adv.reminders:
        _record(uow, repo, before, sub, adv.transitions, adv.reminders)
        counts.count(adv.transitions, adv.reminders)
    if adv.remote == lifecycle.RENEW:
        _auto_renew(uow, billing, repo, sub, as_of, counts, catalog(uow.session))
    elif adv.remote == lifecycle.MARK_PREPAY_ONLY:
        billing.mark_prepay_only(
            request_id=f"prepay:{sub.subscription_id}:{sub.shutoff_start_date}",
            account_id=sub.account_id,
            reason=f"subscription {sub.subscription_id} was cancelled for an unpaid invoice "
            f"({sub.shutoff_invoice_id})",
        )
        repo.save(replace(sub, prepay_pending=False), uow.now)
    else:
        repo.save(sub, uow.now)


def renewal_order_number(subscription_id: str, period_start: date) -> str:
    """The same order number for every attempt at one renewal (a retried sweep names the same order)."""
    digest = hashlib.sha256(f"{subscription_id}:{period_start.isoformat()}".encode()).hexdigest()
    return f"ORD-{period_start:%Y%m%d}-{digest[:10].upper()}"


def _auto_renew(
    uow: UnitOfWork,
    billing,
    repo: Repository,
    sub: Subscription,
    as_of: datetime,
    counts: SweepCounts,
    catalog: Catalog,
) -> None:
    """Renew at the renewal instant: pending term, product and renewal seats at the renewal price, invoiced
    and charged by billing. A paid (or invoiced) renewal starts the next term from the anchor; a declined
    one starts the shutoff and leaves the invoice open: paying it later reinstates the same term."""
    now = uow.now
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
    if declined:
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
        _record(uow, repo, sub, saved, transitions, adv.reminders)
        counts.count(transitions, adv.reminders)
        return
    new.payment_method_type = invoice.payment_method_type or new.payment_method_type
    saved = repo.save(new, now)
    book_renewal(uow, repo, saved, out, order_number, invoice_id, invoice.total, key, period)
    repo.record_renewal(
        subscription_id=saved.subscription_id,
        period_start_date=period,
        invoice_id=invoice_id,
        order_number=order_number,
        status="OPEN" if invoice.payment_status == "PENDING" else "PAID",
        now=now,
    )
    counts.renewed += 1


def _record(
    uow: UnitOfWork,
    repo: Repository,
    before: Subscription,
    after: Subscription,
    transitions,
    reminders=(),
) -> None:
    """History rows, reminder rows and their events for one subscription changed outside the batch path."""
    state = lifecycle_state(after)
    for t in transitions:
        repo.add_transitions(after.subscription_id, [t], period_key=lifecycle.period_key(state, t))
        uow.publish(
            "subscription.stage_changed",
            account_id=after.account_id,
            subscription_id=after.subscription_id,
            stage_changed=events_pb2.StageChanged(
                subscription=codec.snapshot_pb(replace(after, stage=t.to_stage)),
                from_stage=codec.stage_pb(t.from_stage),
                to_stage=codec.stage_pb(t.to_stage),
                reason=t.reason,
                transition_time=codec.ts_pb(t.at),
            ),
        )
    for days in reminders:
        uow.session.add(
            ReminderRow(
                subscription_id=after.subscription_id,
                renewal_date=before.renewal_date,
                days_before=days,
                sent_time=uow.now,
            )
        )
        uow.publish(
            "subscription.renewal_reminder",
            account_id=after.account_id,
            subscription_id=after.subscription_id,
            renewal_reminder=events_pb2.RenewalReminder(
                subscription=codec.snapshot_pb(after), days_before=days
            ),
        )


# -- billing events -----------------------------------------------------------------------------------


def _event_subscription(
    uow: UnitOfWork, subscription_id: str, concerns
) -> tuple[Repository, Subscription | None]:
    """The subscription an event is about, locked, when `concerns(sub)` says the event changes it. The
    check runs on an unlocked read first, so events that change nothing (most invoice_paid events) never
    hold the row lock a sweep would have to skip."""
    repo = Repository(uow.session, postgres=uow.db.is_postgres)
    if not subscription_id:
        return repo, None
    try:
        if not concerns(repo.get(subscription_id)):
            return repo, None
        sub = repo.get(subscription_id, lock=True)
    except NotFound:
        return repo, None
    return repo, sub if concerns(sub) else None


def on_invoice_overdue(uow: UnitOfWork, ev) -> None:
    """An unpaid invoice reached its due date: the shutoff starts at the earlier of that date and the end of
    an unrenewed term. A pay-by-invoice renewal whose invoice is unpaid goes Expired on the due date even
    though its term had renewed."""
    inv = ev.invoice_overdue.invoice
    # already shut off, a trial, cancelled, or the old side of an upgrade that ends anyway: nothing to do
    repo, sub = _event_subscription(
        uow, inv.subscription_id, lambda s: s.stage is Stage.ACTIVE and not s.upgraded_to
    )
    if sub is None:
        return
    now = uow.now
    due = codec.date_of(inv.due_date, "invoice.due_date") or sub.today(now)
    unrenewed = sub.renewal_date if (not sub.auto_renew and now >= sub.renewal_time) else None
    start = lifecycle.shutoff_start_date(unrenewed, due)
    reason = lifecycle.INVOICE_OVERDUE if start == due else lifecycle.TERM_ENDED
    state, first = lifecycle.start_shutoff(lifecycle_state(sub), start, reason)
    adv = lifecycle.advance(state, now)
    shut = replace(with_state(sub, adv.state), shutoff_invoice_id=inv.invoice_id if start == due else "")
    saved = repo.save(shut, now)
    _record(uow, repo, sub, saved, [first, *adv.transitions], adv.reminders)


def on_invoice_paid(uow: UnitOfWork, ev) -> None:
    """Paying the invoice that shut a subscription off returns it to Active with its original anniversary:
    a declined renewal's invoice starts the term it was for; an overdue invoice's term had renewed already."""
    inv = ev.invoice_paid.invoice
    repo, sub = _event_subscription(
        uow,
        inv.subscription_id,
        lambda s: s.stage in (Stage.EXPIRED, Stage.SUSPENDED) and s.shutoff_invoice_id == inv.invoice_id,
    )
    renewal = repo.renewal_by_invoice(inv.invoice_id) if inv.invoice_id else None
    now = uow.now
    if renewal is not None and renewal.status == "OPEN":
        renewal.status, renewal.update_time = "PAID", now
    if sub is None:
        return
    if (
        sub.shutoff_reason == lifecycle.PAYMENT_FAILED
        and renewal is not None
        and renewal.status == "DECLINED"
    ):
        out = ops.renew_term(sub, load_catalog(uow.session), now, reason=lifecycle.PAID)
        saved = repo.save(out.subscription, now)
        total = from_proto(inv.total).amount if inv.HasField("total") else out.subtotal()
        period = sub.renewal_date
        book_renewal(
            uow,
            repo,
            saved,
            out,
            renewal.order_number,
            inv.invoice_id,
            total,
            f"paid:{inv.invoice_id}",
            period,
        )
        renewal.status, renewal.update_time = "PAID", now
        _record(uow, repo, sub, saved, out.transitions)
        return
    t = Transition(sub.stage, Stage.ACTIVE, now, lifecycle.PAID)
    saved = repo.save(replace(sub, stage=Stage.ACTIVE, **ops.NO_SHUTOFF), now)
    _record(uow, repo, sub, saved, [t])


# -- the test clock -----------------------------------------------------------------------------------


@dataclass
class ClockDriver:
    """AdvanceClock: moves the test clock of all four services through the instants at which something
    comes due, in order. At each step it sets every clock, runs billing's sweep and the lifecycle sweep, and
    drains the outboxes; it returns when every outbox is drained.

    The steps are the subscriptions' `next_action_time`s, every midnight UTC (billing's due dates, such as
    an invoice's due date or an installment's anniversary, fall on a local date, and the midnight UTC that
    follows a local midnight is on the same local date in every zone), and the target."""

    db: Database
    clock: Clock
    relay: Relay
    billing: object
    peers: dict[str, PeerClock]  # billing, entitlement, notification (those configured)
    drain_timeout: float = 30.0

    def advance(self, to: datetime) -> tuple[datetime, int]:
        """Move to `to`; returns the clock after the move and the number of steps taken."""
        if not self.clock.is_test:
            raise RuleViolation(
                "the clock can only be moved when the services run on the test clock (TENURE_CLOCK=test)",
                reason="TEST_CLOCK_DISABLED",
            )
        now = self.clock.now()
        if to < now:
            raise InvalidInput(f"the test clock only moves forward (now {now.isoformat()})", field="to_time")
        steps = 0
        at = now
        while True:
            own = self._next_due(at)
            step = min(own, _next_utc_midnight(at), to)
            self.clock.set(step)
            for p in self.peers.values():
                p.set_time(step)
            billed = self.billing.run_sweep(step)
            if billed:
                self._drain()  # billing's events can start or end a shutoff here
                own = self._next_due(at)
            counts = run(self.db, self.billing, step) if own <= step else SweepCounts()
            if counts.total or billed or step >= to:
                self._drain()
            steps += 1
            if step >= to:
                return step, steps
            at = step

    def _next_due(self, after: datetime) -> datetime:
        t = SubscriptionRow.__table__
        with self.db.read() as s:
            nxt = s.execute(
                select(func.min(t.c.next_action_time)).where(t.c.next_action_time > after)
            ).scalar()
        return nxt if nxt is not None else datetime.max.replace(tzinfo=UTC)

    def _drain(self) -> None:
        """Deliver every outbox until all are empty. One pass follows the event flow (billing -> subscription
        -> entitlement -> notification); passes repeat while anything is still pending."""
        order = [None, "billing", None, "entitlement", "notification"]
        deadline = time.monotonic() + self.drain_timeout
        while True:
            pending = 0
            for name in order:
                if name is None:
                    self.relay.drain(self.drain_timeout)
                    pending += self.relay.pending()
                elif name in self.peers:
                    pending += self.peers[name].drain(self.drain_timeout)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise PeerUnavailable(
                    f"the outboxes were not drained within {self.drain_timeout:.0f} s ({pending} events wait)",
                    reason="PEER_UNAVAILABLE",
                )


def _next_utc_midnight(after: datetime) -> datetime:
    d = after.astimezone(UTC).date() + timedelta(days=1)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
