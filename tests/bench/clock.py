"""AdvanceClock (issue 18, row 8): the four services in this process on SQLite, each on the same test clock
and wired as deployed (events to their subscribers, mail to files); `count` subscriptions bought with
variety (time zones, auto-renew on and off, plans, seats), then one AdvanceClock call over a year, timed.
Renewals, reminders, expiries, suspensions and cancellations all come due on the way."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

from shared.clock import TestClock
from tenure.common.v1 import common_pb2
from tenure.subscription.v1 import subscription_pb2 as pb
from tests.auth import operator
from tests.bench.harness import Result, free_port, record, started
from tests.service.subscription.conftest import Stack, rid

START = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
ZONES = ("Europe/Oslo", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles", "UTC")
OPERATOR = operator()


def four(start_service, new_db_url, label: str, mail_dir: str) -> Stack:
    clock = TestClock(START)
    addr = {n: f"127.0.0.1:{free_port()}" for n in ("subscription", "billing", "entitlement", "notification")}

    def start(name: str, **kw):  # noqa: ANN202
        return start_service(
            name, addr=addr[name], database_url=new_db_url(f"{name}_{label}"), clock_override=clock, **kw
        )

    start(
        "notification",
        entitlement_addr=addr["entitlement"],
        billing_addr=addr["billing"],
        mail_dir=mail_dir,
        delivery_interval_seconds=1.0,
    )
    start(
        "entitlement",
        event_subscribers=",".join(addr[n] for n in ("subscription", "billing", "notification")),
    )
    billing = start(
        "billing",
        sweep_interval_seconds=0,
        event_subscribers=",".join(addr[n] for n in ("subscription", "entitlement", "notification")),
    )
    sub = start(
        "subscription",
        billing_addr=addr["billing"],
        entitlement_addr=addr["entitlement"],
        notification_addr=addr["notification"],
        lifecycle_interval_seconds=0,
        event_subscribers=",".join(addr[n] for n in ("entitlement", "notification")),
    )
    return Stack.at(sub, billing, clock)


def advance_one_year(
    start_service, new_db_url, tmp_path, counts: list[int], goal_at: int = 1000
) -> list[Result]:
    results = []
    for count in counts:
        st = four(start_service, new_db_url, f"c{count}", str(tmp_path / f"mail{count}"))
        pm = st.card("acct-clock")
        for i in range(count):
            st.buy(
                "acct-clock",
                pm,
                time_zone=ZONES[i % len(ZONES)],
                auto_renew=i % 3 != 0,
                plan=common_pb2.PLAN_PREMIUM if i % 4 == 0 else common_pb2.PLAN_STANDARD,
                seats=1 + i % 3,
            )
        with started():
            to = timestamp_pb2.Timestamp()
            to.FromDatetime(START + timedelta(days=366))
            t0 = time.perf_counter()
            resp = st.sub.AdvanceClock(
                pb.AdvanceClockRequest(request_id=rid(), to_time=to), metadata=OPERATOR, timeout=900
            )
            dt = time.perf_counter() - t0
        is_goal = count == goal_at
        results.append(
            record(
                Result(
                    row=f"AdvanceClock one year, {count:,} subscriptions",
                    figure=dt,
                    unit="s",
                    goal="< 10 s" if is_goal else "(growth)",
                    met=dt < 10 if is_goal else None,
                    note=f"{resp.steps} steps; SQLite, 4 services in-process",
                    runs=[dt],
                    extra={"steps": resp.steps},
                )
            )
        )
    return results
