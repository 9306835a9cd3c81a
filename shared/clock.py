"""One clock object per process: the system clock, or a test clock an operator moves.

All time in Tenure comes from `Clock.now()` (an aware UTC datetime). With
`TENURE_CLOCK=test` the services share a `TestClock` that starts at
`TENURE_CLOCK_START` (ISO 8601) or at the real time, and only moves forward when
told to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.errors import InvalidInput, RuleViolation


class Clock:
    is_test = False

    def now(self) -> datetime:
        raise NotImplementedError

    def set(self, when: datetime) -> datetime:
        raise RuleViolation(
            "the clock can only be moved when the services run on the test clock (TENURE_CLOCK=test)",
            reason="TEST_CLOCK_DISABLED",
        )

    def advance(self, delta: timedelta) -> datetime:
        return self.set(self.now() + delta)


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock(Clock):
    __test__ = False  # not a pytest test class
    is_test = True

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware(start) if start else datetime.now(UTC).replace(microsecond=0)
        #: told each new time (a service stores it, so a restart resumes there)
        self._listeners: list[Callable[[datetime], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def listen(self, fn: Callable[[datetime], None]) -> None:
        self._listeners.append(fn)

    def resume(self, stored: datetime | None) -> datetime:
        """Move to a stored time if it is later than this clock's (a restart after the clock moved)."""
        with self._lock:
            if stored is not None and _aware(stored) > self._now:
                self._now = _aware(stored)
            return self._now

    def set(self, when: datetime) -> datetime:
        when = _aware(when)
        with self._lock:
            if when < self._now:
                raise InvalidInput(
                    f"the test clock only moves forward (now {self._now.isoformat()})", field="to_time"
                )
            self._now = when
        self._told(when)
        return when

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise InvalidInput("the test clock only moves forward", field="duration")
        with self._lock:
            self._now = self._now + delta
            now = self._now
        self._told(now)
        return now

    def _told(self, now: datetime) -> None:
        for fn in self._listeners:
            fn(now)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput("times must carry a UTC offset")
    return value.astimezone(UTC)


def parse_start(value: str) -> datetime:
    v = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def make_clock(kind: str = "system", start: str | None = None) -> Clock:
    if kind == "test":
        return TestClock(parse_start(start) if start else None)
    if kind in ("", "system"):
        return SystemClock()
    raise InvalidInput(f"unknown clock kind {kind!r} (system or test)", field="TENURE_CLOCK")
