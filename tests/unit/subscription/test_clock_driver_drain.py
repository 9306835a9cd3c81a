"""AdvanceClock's drain gives up only when nothing moves: a step with much work (a thousand renewals at one
instant) may drain for longer than the timeout as long as the events waiting keep changing."""

from __future__ import annotations

import time

import pytest

from services.subscription.clock_driver import ClockDriver
from shared.errors import PeerUnavailable


class Relay:
    def __init__(self, counts: list[int], pause: float) -> None:
        self.counts, self.pause = counts, pause

    def drain(self, timeout: float) -> bool:
        time.sleep(self.pause)
        return False

    def pending(self) -> int:
        return self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]


def driver(relay: Relay, timeout: float) -> ClockDriver:
    return ClockDriver(db=None, clock=None, relay=relay, billing=None, peers={}, drain_timeout=timeout)  # type: ignore[arg-type]


def test_a_drain_that_keeps_moving_outlasts_the_timeout():
    # each pass takes 0.05 s (two relay drains) and the count falls by one: 20 passes, 1 s, timeout 0.3 s
    relay = Relay(list(range(40, -1, -1)), pause=0.025)
    t0 = time.monotonic()
    driver(relay, timeout=0.3)._drain()
    assert time.monotonic() - t0 > 0.3


def test_a_drain_that_stops_moving_fails_after_the_timeout_naming_what_waits():
    relay = Relay([9, 8, 7], pause=0.01)  # a pass asks the relay twice (before and after billing's)
    t0 = time.monotonic()
    with pytest.raises(PeerUnavailable, match=r"did not move for 0 s \(14 events wait\)"):
        driver(relay, timeout=0.3)._drain()
    assert 0.3 <= time.monotonic() - t0 < 2
