"""The test clock's driver (`AdvanceClock`): moves the clocks of all four services through what comes due,
running the sweeps and draining the outboxes on the way."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from services.subscription import sweep
from services.subscription.adapters.peers import Billing, PeerClock
from services.subscription.adapters.unit_of_work import reading
from shared.clock import Clock
from shared.db import Database
from shared.errors import InvalidInput, PeerUnavailable, RuleViolation
from shared.outbox import Relay

NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class ClockDriver:
    """AdvanceClock: moves the test clock of all four services through the instants at which something
    comes due, in order. At each step it sets every clock, runs billing's sweep and the lifecycle sweep, and
    drains the outboxes; it returns when every outbox is drained.

    The steps are the subscriptions' `next_action_time`s, the instants billing's sweep says it next has
    work (an installment coming due, an invoice becoming overdue: each at a local midnight), the instants
    a peer's drain says it next has work of its own (the notification service's invoice reminders), and
    the target. A year with nothing due is one step; the cost grows with what comes due, not with days."""

    db: Database
    clock: Clock
    relay: Relay
    billing: Billing
    peers: dict[str, PeerClock]  # billing, entitlement, notification (those configured)
    drain_timeout: float = 30.0

    def advance(self, to: datetime) -> tuple[datetime, int]:
        """Move to `to`; returns the clock after the move and the number of steps taken."""
        if not self.clock.is_test:
            raise RuleViolation(
                "the clock can only be moved when the services run on the test clock (TENURE_CLOCK=test)",
                reason="TEST_CLOCK_DISABLED",
            )
        # A move that died part-way (a service killed, a call timed out) may have left some clocks ahead:
        # start from the latest of them, so every clock only moves forward and this call finishes the work.
        now = max([self.clock.now(), *(p.get_time() for p in self.peers.values())])
        if to < now:
            raise InvalidInput(f"the test clock only moves forward (now {now.isoformat()})", field="to_time")
        self.clock.set(now)
        steps = 0
        at = now
        billing_next = self.billing.run_sweep(now).next_due  # and what is due now already
        if sweep.run(self.db, self.billing, now).total:  # what a move that died at this instant left undone
            self._drain()
        self._drain()  # and the peers' own next due instants (notification's invoice reminders)
        while True:
            own = self._next_due(at)
            step = min(own, billing_next or NEVER, self._peers_next_due(at), to)
            self.clock.set(step)
            for p in self.peers.values():
                p.set_time(step)
            billed = self.billing.run_sweep(step)
            billing_next = billed.next_due
            if billed.done:
                self._drain()  # billing's events can start or end a shutoff here
                own = self._next_due(at)
            counts = sweep.run(self.db, self.billing, step) if own <= step else sweep.SweepCounts()
            peers_due = self._peers_next_due(at) <= step
            if counts.total or billed.done or peers_due or step >= to:
                self._drain()  # the notification service plans the mail of what happened at this step
            if counts.total:  # renewals and shutoffs make invoices whose dates billing now watches
                billing_next = self.billing.run_sweep(step).next_due
            steps += 1
            if step >= to:
                return step, steps
            at = step

    def _next_due(self, after: datetime) -> datetime:
        with reading(self.db) as uow:
            nxt = sweep.next_due(uow, after)
        return nxt if nxt is not None else NEVER

    def _peers_next_due(self, after: datetime) -> datetime:
        """The earliest instant after `after` at which a peer has work of its own (its last drain's
        answer: the notification service's invoice reminders)."""
        due = [p.next_due for p in self.peers.values() if p.next_due is not None and p.next_due > after]
        return min(due, default=NEVER)

    def _drain(self) -> None:
        """Deliver every outbox until all are empty. One pass follows the event flow (billing -> subscription
        -> entitlement -> notification); passes repeat while anything is still pending. Each notification
        drain also plans the e-mail of every event it has received, so that mail is made at this step, on
        this step's clock.

        A step that makes much work (a thousand renewals at one instant) may take longer than
        `drain_timeout`: the drain gives up only when the pending count has not changed for that long."""
        order = [None, "billing", None, "entitlement", "notification"]
        deadline = time.monotonic() + self.drain_timeout
        last: int | None = None
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
            if pending != last:  # progress: the events waiting changed
                last, deadline = pending, time.monotonic() + self.drain_timeout
            elif time.monotonic() > deadline:
                raise PeerUnavailable(
                    f"the outboxes did not move for {self.drain_timeout:.0f} s ({pending} events wait)",
                    reason="PEER_UNAVAILABLE",
                )
