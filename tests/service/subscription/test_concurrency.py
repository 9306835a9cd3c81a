"""Parallel AddSeats on one subscription: every request counts (or is refused with ABORTED and counts on
retry); seats are never lost. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import grpc

from tenure.subscription.v1 import subscription_pb2 as pb

from .conftest import rid

WORKERS = 6
SEATS_EACH = 2


def test_parallel_add_seats_end_with_exactly_the_seats_asked_for(stack):
    s = stack.buy(seats=1).subscription
    stack.clock.set(datetime(2024, 12, 1, 9, 0, tzinfo=UTC))
    aborted = []
    errors = []
    barrier = threading.Barrier(WORKERS)

    def add():
        request_id = rid()
        barrier.wait()
        for _ in range(20):
            try:
                stack.sub.AddSeats(
                    pb.AddSeatsRequest(
                        request_id=request_id, subscription_id=s.subscription_id, seats=SEATS_EACH
                    )
                )
                return
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.ABORTED:
                    aborted.append(1)
                    continue  # a retry with the same request id
                errors.append(e)
                return

    threads = [threading.Thread(target=add) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, [e.details() for e in errors]
    final = stack.sub.GetSubscription(
        pb.GetSubscriptionRequest(subscription_id=s.subscription_id)
    ).subscription
    assert final.seats == 1 + WORKERS * SEATS_EACH
    assert final.renewal_seats == final.seats
