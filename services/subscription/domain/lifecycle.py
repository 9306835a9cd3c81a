"""Time-driven rules of rules §3–§4: the shutoff schedule, renewal reminders and what is due when.

The shutoff starts at the earlier of the end of a term that was not renewed and the due date of an
unpaid invoice. From that day (local midnight in the subscription's zone) it is Expired for 15 days,
then Suspended for 30 days (annual, 3-year) or 15 days (monthly), then Cancelled. The durations are
one policy table. All instants are computed when the shutoff starts and stored, so the sweep moves
stages with plain comparisons (and set-based updates) instead of calendar arithmetic per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from services.subscription.domain import dates
from services.subscription.domain.model import Stage, Term, Transition


@dataclass(frozen=True)
class ShutoffPolicyTable:
    """How long each stage of the shutoff lasts, in days."""

    expired_days: int = 15
    suspended_days: dict[Term, int] = field(
        default_factory=lambda: {Term.MONTHLY: 15, Term.ANNUAL: 30, Term.THREE_YEAR: 30}
    )
    reminder_days_before_expiry: tuple[int, ...] = (45, 30, 4)

    def total_days(self, term: Term) -> int:
        return self.expired_days + self.suspended_days[term]


POLICY = ShutoffPolicyTable()
ONE_DAY = timedelta(days=1)

# Why a shutoff started (the reason on the Active → Expired transition).
TERM_ENDED = "term_ended"
PAYMENT_FAILED = "payment_failed"
INVOICE_OVERDUE = "invoice_overdue"


@dataclass(frozen=True)
class ShutoffSchedule:
    """The instants of one shutoff, fixed when it starts."""

    start_date: date
    expired_time: datetime
    suspended_time: datetime
    cancelled_time: datetime
    reason: str

    def stage_at(self, now: datetime) -> Stage:
        if now >= self.cancelled_time:
            return Stage.CANCELLED
        if now >= self.suspended_time:
            return Stage.SUSPENDED
        return Stage.EXPIRED


def shutoff_start_date(unrenewed_renewal_date: date | None, overdue_due_date: date | None) -> date:
    """The earlier of the end of an unrenewed term (its renewal date) and an unpaid invoice's due date."""
    candidates = [d for d in (unrenewed_renewal_date, overdue_due_date) if d is not None]
    if not candidates:
        raise ValueError("a shutoff needs an unrenewed term end or an overdue invoice")
    return min(candidates)


def shutoff_schedule(
    start_date: date, term: Term, tz: str, reason: str, policy: ShutoffPolicyTable = POLICY
) -> ShutoffSchedule:
    suspended = start_date + timedelta(days=policy.expired_days)
    cancelled = suspended + timedelta(days=policy.suspended_days[term])
    return ShutoffSchedule(
        start_date=start_date,
        expired_time=dates.local_midnight(start_date, tz),
        suspended_time=dates.local_midnight(suspended, tz),
        cancelled_time=dates.local_midnight(cancelled, tz),
        reason=reason,
    )


def reminder_time(renewal_date: date, days_before: int, tz: str) -> datetime:
    """Local midnight `days_before` days before the expiry date (the day before the renewal date)."""
    return dates.local_midnight(dates.expiry_date(renewal_date) - timedelta(days=days_before), tz)


def due_reminder(
    renewal_date: date,
    tz: str,
    now: datetime,
    last_sent_days: int | None,
    policy: ShutoffPolicyTable = POLICY,
    *,
    period_start: datetime | None = None,
) -> int | None:
    """The reminder to send now, if any: the latest one whose time has come and that is nearer to expiry
    than the last one sent in this term (`last_sent_days`, None when none was sent). When a sweep ran
    late and several came due at once, only the nearest is sent: the customer gets one reminder, not
    three at the same moment. Nothing is sent once the term has ended, and a reminder whose time falls
    before the term started (`period_start`; a monthly term has no 45- or 30-day reminder) is never sent."""
    if now >= dates.renewal_instant(renewal_date, tz):
        return None
    due = [
        d
        for d in _reminder_days(renewal_date, tz, policy, period_start)
        if reminder_time(renewal_date, d, tz) <= now
    ]
    if not due:
        return None
    nearest = min(due)
    if last_sent_days is not None and nearest >= last_sent_days:
        return None
    return nearest


def _reminder_days(
    renewal_date: date, tz: str, policy: ShutoffPolicyTable, period_start: datetime | None
) -> list[int]:
    days = policy.reminder_days_before_expiry
    if period_start is None:
        return list(days)
    return [d for d in days if reminder_time(renewal_date, d, tz) >= period_start]


def next_reminder_time(
    renewal_date: date,
    tz: str,
    last_sent_days: int | None,
    policy: ShutoffPolicyTable = POLICY,
    *,
    period_start: datetime | None = None,
) -> datetime | None:
    """When the next reminder of this term comes due (None when all were sent). Reminders whose time falls
    before `period_start` (the term's first instant) do not exist for this term."""
    pending = [
        d
        for d in _reminder_days(renewal_date, tz, policy, period_start)
        if last_sent_days is None or d < last_sent_days
    ]
    if not pending:
        return None
    return reminder_time(renewal_date, max(pending), tz)


def next_action_time(*candidates: datetime | None) -> datetime | None:
    """The earliest instant at which the sweep has something to do for a subscription."""
    present = [c for c in candidates if c is not None]
    return min(present) if present else None


# -- what the sweep does for one subscription ---------------------------------------------------------

# Why other stage changes happen (the reason on the transition).
SHUTOFF = "shutoff"
UPGRADED = "upgraded"
TRIAL_ENDED = "trial_ended"
PAID = "paid"

# Where the next piece of due work runs: LOCAL work is a change of this service's own rows (set-based in the
# sweep); REMOTE work needs a call to billing (a renewal invoice, marking an account prepay-only) and is
# done one subscription per transaction.
LOCAL = 0
REMOTE = 1

RENEW = "renew"
MARK_PREPAY_ONLY = "mark_prepay_only"


@dataclass(frozen=True, slots=True)
class LifecycleState:
    """The part of a subscription that time moves. `renewal_time` is local midnight of `renewal_date`."""

    stage: Stage
    term: Term
    time_zone: str
    renewal_date: date
    renewal_time: datetime
    current_period_start_date: date
    auto_renew: bool
    access_until: datetime | None = None
    upgraded: bool = False
    pays_by_invoice: bool = False
    shutoff_reason: str = ""
    shutoff_start_date: date | None = None
    suspend_time: datetime | None = None
    cancel_time: datetime | None = None
    last_reminder_days: int | None = None
    prepay_pending: bool = False


@dataclass(frozen=True, slots=True)
class Advance:
    """What came due: the state after the local work, the stage changes (with the instants the rules give
    them), the reminders to send, and the remote work that is now due (RENEW, MARK_PREPAY_ONLY or None)."""

    state: LifecycleState
    transitions: tuple[Transition, ...] = ()
    reminders: tuple[int, ...] = ()
    remote: str | None = None


def start_shutoff(
    state: LifecycleState, start_date: date, reason: str, policy: ShutoffPolicyTable = POLICY
) -> tuple[LifecycleState, Transition]:
    """Active -> Expired from local midnight of `start_date`, with the Suspended and Cancelled instants fixed
    now. Reminders of the term are void from here on."""
    s = shutoff_schedule(start_date, state.term, state.time_zone, reason, policy)
    new = replace(
        state,
        stage=Stage.EXPIRED,
        shutoff_reason=reason,
        shutoff_start_date=start_date,
        suspend_time=s.suspended_time,
        cancel_time=s.cancelled_time,
        last_reminder_days=_no_more_reminders(policy),
    )
    return new, Transition(state.stage, Stage.EXPIRED, s.expired_time, reason)


def _no_more_reminders(policy: ShutoffPolicyTable) -> int:
    return min(policy.reminder_days_before_expiry)


def _period_start_time(state: LifecycleState) -> datetime:
    return dates.local_midnight(state.current_period_start_date, state.time_zone)


def _next_reminder(state: LifecycleState, policy: ShutoffPolicyTable) -> datetime | None:
    if state.stage is not Stage.ACTIVE or state.upgraded:
        return None
    return next_reminder_time(
        state.renewal_date,
        state.time_zone,
        state.last_reminder_days,
        policy,
        period_start=_period_start_time(state),
    )


def advance(state: LifecycleState, now: datetime, policy: ShutoffPolicyTable = POLICY) -> Advance:
    """Everything that has come due for one subscription by `now`, in the order of its instants.

    A sweep that runs late catches up in one call (Active -> Expired -> Suspended …), and sends only the
    nearest reminder. Work that needs billing (a renewal, marking the account prepay-only) stops the walk
    and is returned as `remote`; the caller does it and calls `advance` again with the result.
    """
    transitions: list[Transition] = []
    reminders: list[int] = []
    s = state
    for _ in range(6):  # at most: expire, suspend, cancel, and the remote step after them
        if s.stage is Stage.CANCELLED:
            prepay = s.prepay_pending and _prepay_time(s) <= now
            return Advance(s, tuple(transitions), tuple(reminders), MARK_PREPAY_ONLY if prepay else None)
        due: list[tuple[datetime, str]] = []
        if s.upgraded and s.access_until is not None:
            due.append((s.access_until, UPGRADED))
        if s.stage is Stage.TRIAL:
            due.append((s.renewal_time, TRIAL_ENDED))
        elif s.stage is Stage.ACTIVE and not s.upgraded:
            due.append((s.renewal_time, RENEW if s.auto_renew else TERM_ENDED))
        elif s.stage is Stage.EXPIRED and s.suspend_time is not None:
            due.append((s.suspend_time, Stage.SUSPENDED.value))
        elif s.stage is Stage.SUSPENDED and s.cancel_time is not None:
            due.append((s.cancel_time, Stage.CANCELLED.value))
        due = [d for d in due if d[0] <= now]
        if not due:
            nearest = _due_reminder(s, now, policy)
            if nearest is not None:
                reminders.append(nearest)
                s = replace(s, last_reminder_days=nearest)
            return Advance(s, tuple(transitions), tuple(reminders))
        at, what = min(due)
        if what == RENEW:
            s = replace(s, last_reminder_days=_no_more_reminders(policy))
            return Advance(s, tuple(transitions), tuple(reminders), RENEW)
        if what == TERM_ENDED:
            s, t = start_shutoff(s, s.renewal_date, TERM_ENDED, policy)
            transitions.append(t)
        elif what == Stage.SUSPENDED.value:
            transitions.append(Transition(s.stage, Stage.SUSPENDED, at, SHUTOFF))
            s = replace(s, stage=Stage.SUSPENDED)
        elif what == Stage.CANCELLED.value:
            transitions.append(Transition(s.stage, Stage.CANCELLED, at, SHUTOFF))
            unpaid_credit = s.shutoff_reason == INVOICE_OVERDUE and s.pays_by_invoice
            s = replace(s, stage=Stage.CANCELLED, auto_renew=False, prepay_pending=unpaid_credit)
        else:  # the old side of an upgrade ends, or a trial ends unconverted
            transitions.append(Transition(s.stage, Stage.CANCELLED, at, what))
            s = replace(s, stage=Stage.CANCELLED, auto_renew=False)
    raise AssertionError(f"the lifecycle of {state} did not settle")  # pragma: no cover


def _prepay_time(s: LifecycleState) -> datetime:
    return s.cancel_time or s.renewal_time


def _due_reminder(s: LifecycleState, now: datetime, policy: ShutoffPolicyTable) -> int | None:
    if s.stage is not Stage.ACTIVE or s.upgraded:
        return None
    return due_reminder(
        s.renewal_date, s.time_zone, now, s.last_reminder_days, policy, period_start=_period_start_time(s)
    )


def plan(state: LifecycleState, policy: ShutoffPolicyTable = POLICY) -> tuple[datetime | None, int]:
    """When the sweep next has something to do for this subscription, and whether that work is LOCAL or
    REMOTE (stored on the row as `next_action_time` and `due_kind`, recomputed on every change)."""
    s = state
    candidates: list[tuple[datetime, int]] = []
    if s.stage is Stage.CANCELLED:
        if s.prepay_pending:
            candidates.append((_prepay_time(s), REMOTE))
    else:
        if s.upgraded and s.access_until is not None:
            candidates.append((s.access_until, LOCAL))
        if s.stage is Stage.TRIAL:
            candidates.append((s.renewal_time, LOCAL))
        elif s.stage is Stage.ACTIVE and not s.upgraded:
            candidates.append((s.renewal_time, REMOTE if s.auto_renew else LOCAL))
            reminder = _next_reminder(s, policy)
            if reminder is not None and reminder < s.renewal_time:
                candidates.append((reminder, LOCAL))
        elif s.stage is Stage.EXPIRED and s.suspend_time is not None:
            candidates.append((s.suspend_time, LOCAL))
        elif s.stage is Stage.SUSPENDED and s.cancel_time is not None:
            candidates.append((s.cancel_time, LOCAL))
    if not candidates:
        return None, LOCAL
    return min(candidates)


# -- what the sweep writes for every subscription in one state ---------------------------------------

SHUTOFF_REASONS = frozenset({TERM_ENDED, PAYMENT_FAILED, INVOICE_OVERDUE, SHUTOFF})
RETRY_STUCK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Move:
    """The sweep's LOCAL work for a subscription in state `before` at `now`: the state after it, the next
    due instant and kind, the stage changes with the shutoff each belongs to (`period_key`, so a raced sweep
    cannot record one twice) and the reminders. It depends on the state alone, so the sweep decides once per
    distinct state and applies the move to every due subscription in that state with one statement."""

    before: LifecycleState
    state: LifecycleState
    next_action_time: datetime | None
    due_kind: int
    transitions: tuple[Transition, ...]
    period_keys: tuple[str | None, ...]
    reminders: tuple[int, ...]
    stuck: bool = False  # LOCAL work was still due after the move (never expected): retried a second later


def period_key(state: LifecycleState, t: Transition) -> str | None:
    """The shutoff a stage change belongs to (its start date), for changes of a shutoff."""
    if t.reason in SHUTOFF_REASONS and state.shutoff_start_date is not None:
        return state.shutoff_start_date.isoformat()
    return None


def move(state: LifecycleState, now: datetime, policy: ShutoffPolicyTable = POLICY) -> Move:
    adv = advance(state, now, policy)
    nxt, kind = plan(adv.state, policy)
    stuck = kind == LOCAL and nxt is not None and nxt <= now
    return Move(
        before=state,
        state=adv.state,
        next_action_time=now + RETRY_STUCK if stuck else nxt,
        due_kind=kind,
        transitions=adv.transitions,
        period_keys=tuple(period_key(adv.state, t) for t in adv.transitions),
        reminders=adv.reminders,
        stuck=stuck,
    )
