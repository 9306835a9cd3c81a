"""The outbox relay (issue 18, row 4): events drained from a producer's outbox to two real consumers (the
entitlement and notification services, in this process) against the rate the producer inserts them (one
event per transaction, as a service publishes)."""

from __future__ import annotations

import time
import uuid

from services.subscription.adapters.tables import SubscriptionModel
from shared.db import Database
from shared.outbox import Relay
from tenure.common.v1 import common_pb2 as c
from tenure.events.v1 import events_pb2
from tests.auth import service
from tests.bench.harness import RUNS, Result, median, record, started

PRODUCTS = ("ACDLT", "ACD", "DOCS")


def snapshot(i: int, account: str = "", product: str = "") -> events_pb2.SubscriptionSnapshot:
    """The `i`-th made-up ACTIVE subscription (of one of 50 accounts unless `account` is named)."""
    account = account or f"acct-relay-{i % 50}"
    return events_pb2.SubscriptionSnapshot(
        subscription_id=f"sub-{uuid.uuid4().hex[:12]}",
        account_id=account,
        product_code=product or PRODUCTS[i % len(PRODUCTS)],
        product_name="AutoCAD LT",
        plan=c.PLAN_STANDARD,
        seats=1 + i % 5,
        stage=c.STAGE_ACTIVE,
        shutoff_policy=c.SHUTOFF_POLICY_STANDARD,
        buyer_email=f"buyer{account}@example.com",
        buyer_name="Kari Nordmann",
        buyer_language="nb",
    )


def publish(db: Database, n: int) -> float:
    """n subscription.created events, one transaction each; returns events/s."""
    t0 = time.perf_counter()
    for i in range(n):
        snap = snapshot(i)
        with db.unit_of_work() as uow:
            uow.publish(
                "subscription.created",
                account_id=snap.account_id,
                subscription_id=snap.subscription_id,
                subscription_created=events_pb2.SubscriptionCreated(subscription=snap),
            )
    return n / (time.perf_counter() - t0)


def relay_drain(start_service, new_db_url, tmp_path, n: int, runs: int = RUNS) -> Result:
    entitlement = start_service("entitlement")
    notification = start_service(
        "notification",
        entitlement_addr=entitlement.addr,
        billing_addr="",
        mail_dir=str(tmp_path / "mail"),
        delivery_interval_seconds=3600,  # planning mail is what is measured, not sending it
    )
    clock = notification.clock  # the consumers' test clock: events are dated on it
    db = Database(new_db_url("producer"), SubscriptionModel.metadata, clock, source="subscription")
    db.create_all()
    relay = Relay(
        db,
        [entitlement.addr, notification.addr],
        credentials=lambda: service("subscription"),
    )
    inserts, drains = [], []
    try:
        with started():
            publish(db, 10)
            assert relay.drain(60)  # warm: channels, cursors
            for _ in range(runs):
                inserts.append(publish(db, n))
                t0 = time.perf_counter()
                drained = relay.drain(600)
                drains.append(n / (time.perf_counter() - t0))
                assert drained and relay.pending() == 0
    finally:
        db.dispose()
    fig, base = median(drains), median(inserts)
    ratio = fig / base
    return record(
        Result(
            row="outbox relay drain to entitlement + notification",
            figure=fig,
            unit="events/s",
            baseline=base,
            baseline_unit="events/s inserted",
            ratio=ratio,
            goal=">= 1.0",
            met=ratio >= 1.0,
            note=f"{n} subscription.created events x {runs}, {db.engine.dialect.name}",
            runs=drains,
            extra={"baseline_runs": inserts},
        )
    )
