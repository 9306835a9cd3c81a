"""`tenure.common.v1.ClockService`, served by every service: read the clock, move the test clock,
drain the outbox. The subscription service's AdvanceClock drives these on all four services."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import grpc

from shared.clock import Clock
from shared.grpc.codec import time_of, timestamp
from shared.grpc.interceptors import require_operator
from shared.outbox import Relay
from tenure.common.v1 import clock_pb2, clock_pb2_grpc

#: A service's own time-driven work, run after its outbox is drained, within the seconds it is given:
#: does what is due by the clock and answers when it next has work (None: nothing scheduled) and how much
#: due work it had no time left for (counted as pending, so the caller asks again).
Settle = Callable[[float], tuple[datetime | None, int]]


class ClockServicer(clock_pb2_grpc.ClockServiceServicer):
    def __init__(self, clock: Clock, relay: Relay, settle: Settle | None = None) -> None:
        self.clock = clock
        self.relay = relay
        self.settle = settle

    def GetTime(
        self, request: clock_pb2.GetTimeRequest, context: grpc.ServicerContext
    ) -> clock_pb2.GetTimeResponse:
        return clock_pb2.GetTimeResponse(now_time=timestamp(self.clock.now()), test_clock=self.clock.is_test)

    def SetTime(
        self, request: clock_pb2.SetTimeRequest, context: grpc.ServicerContext
    ) -> clock_pb2.SetTimeResponse:
        require_operator(context, "Moving the clock")
        to = time_of(request.to_time)
        return clock_pb2.SetTimeResponse(now_time=timestamp(self.clock.set(to)))

    def DrainOutbox(
        self, request: clock_pb2.DrainOutboxRequest, context: grpc.ServicerContext
    ) -> clock_pb2.DrainOutboxResponse:
        require_operator(context, "Draining the outbox")
        # The answer comes within the time asked for (the caller's deadline is a little longer): what
        # did not fit is counted as pending, and the caller (AdvanceClock) asks again while it moves.
        budget = request.timeout_seconds or 30.0
        start = time.monotonic()
        self.relay.drain(budget)
        next_due, unsettled = None, 0
        if self.settle is not None:
            next_due, unsettled = self.settle(max(budget - (time.monotonic() - start), 1.0))
        return clock_pb2.DrainOutboxResponse(
            pending=self.relay.pending() + unsettled, next_due_time=timestamp(next_due)
        )
