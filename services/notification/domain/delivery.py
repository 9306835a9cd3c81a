"""When to try sending again after a failure, and when to give up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notification.domain.model import Status


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off: first_delay, ×factor after each failure, capped at max_delay.

    A notification keeps being retried until `give_up_after` has passed since its first attempt
    (two days by default, so an SMTP outage over a weekend night delays mail but loses none) or
    `max_attempts` attempts were made; then it is marked FAILED and ResendNotification can start
    again. A permanent failure (the SMTP server refuses the recipient with a 5xx reply) fails at once.
    """

    first_delay: timedelta = timedelta(seconds=30)
    factor: int = 2
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 1000
    give_up_after: timedelta = timedelta(days=2)

    def __post_init__(self) -> None:
        if self.first_delay <= timedelta(0) or self.factor < 1 or self.max_attempts < 1:
            raise ValueError("retry policy needs a positive first delay, factor and attempt count")
        if self.max_delay < self.first_delay:
            raise ValueError("max_delay must not be shorter than first_delay")

    def delay_after(self, attempts: int) -> timedelta:
        """Wait after the `attempts`-th failed attempt (1-based)."""
        if attempts < 1:
            raise ValueError("attempts counts from 1")
        # Stop multiplying once the cap is reached so huge attempt counts stay cheap.
        delay = self.first_delay
        for _ in range(attempts - 1):
            if delay >= self.max_delay:
                break
            delay = delay * self.factor
        return min(delay, self.max_delay)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    next_attempt_time: datetime | None


def after_failure(
    policy: RetryPolicy,
    attempts: int,
    now: datetime,
    *,
    first_attempt_time: datetime | None = None,
    permanent: bool = False,
) -> Outcome:
    """What a notification becomes after its `attempts`-th attempt failed."""
    if permanent or attempts >= policy.max_attempts:
        return Outcome(Status.FAILED, None)
    if first_attempt_time is not None and now - first_attempt_time >= policy.give_up_after:
        return Outcome(Status.FAILED, None)
    return Outcome(Status.PENDING, now + policy.delay_after(attempts))


def is_permanent_smtp_code(code: int | None) -> bool:
    """5xx replies are permanent (RFC 5321 §4.2.1); 4xx and no reply at all are worth retrying."""
    return code is not None and 500 <= code < 600
