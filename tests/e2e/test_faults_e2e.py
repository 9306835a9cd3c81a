"""Faults with the four services as processes (on SQLite and on PostgreSQL): a service down during an order, and SIGKILL in the middle
of a year's AdvanceClock. After a restart and a second call nothing happened twice (invoice, charge,
e-mail), nothing is missing (every renewal recorded), and all four clocks agree."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, make_url, text

from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import clock_pb2, clock_pb2_grpc, common_pb2
from tenure.notification.v1 import notification_pb2, notification_pb2_grpc
from tenure.subscription.v1 import subscription_pb2 as spb
from tenure.subscription.v1 import subscription_pb2_grpc
from tests.auth import operator, person
from tests.conftest import PG_ADMIN_URL, PG_AVAILABLE
from tests.e2e.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e
NAMES = ["subscription", "billing", "entitlement", "notification"]
OPS = operator()


class Processes:
    """The four services as processes on SQLite files, each one killable and restartable."""

    def __init__(self, tmp: Path, urls: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.addr = {n: f"127.0.0.1:{free_port()}" for n in NAMES}
        env = dict(os.environ, TENURE_CLOCK="test", TENURE_CLOCK_START="2024-06-10T08:00:00Z")
        for n in NAMES:
            p = f"TENURE_{n.upper()}_"
            env[p + "ADDR"] = self.addr[n]
            env[p + "DATABASE_URL"] = urls[n] if urls else f"sqlite:///{tmp / (n + '.db')}"
            env[p + "BILLING_ADDR"] = self.addr["billing"]
            env[p + "ENTITLEMENT_ADDR"] = self.addr["entitlement"]
            env[p + "NOTIFICATION_ADDR"] = self.addr["notification"]
            env[p + "RELAY_INTERVAL_SECONDS"] = "0.1"
            env[p + "RELAY_MAX_BACKOFF_SECONDS"] = "0.5"
        a = self.addr
        env["TENURE_SUBSCRIPTION_EVENT_SUBSCRIBERS"] = f"{a['entitlement']},{a['notification']}"
        env["TENURE_BILLING_EVENT_SUBSCRIBERS"] = (
            f"{a['subscription']},{a['entitlement']},{a['notification']}"
        )
        env["TENURE_ENTITLEMENT_EVENT_SUBSCRIBERS"] = (
            f"{a['subscription']},{a['billing']},{a['notification']}"
        )
        env["TENURE_NOTIFICATION_MAIL_DIR"] = str(tmp / "mail")
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        for n in NAMES:
            self.start(n)
        for n in NAMES:
            self.wait_healthy(n)
        self.channels = {n: grpc.insecure_channel(self.addr[n]) for n in NAMES}
        self.sub = subscription_pb2_grpc.SubscriptionServiceStub(self.channels["subscription"])
        self.billing = billing_pb2_grpc.BillingServiceStub(self.channels["billing"])
        self.notification = notification_pb2_grpc.NotificationServiceStub(self.channels["notification"])

    def start(self, name: str) -> None:
        log = open(self.tmp / f"{name}.log", "a")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )

    def wait_healthy(self, name: str, timeout: float = 60) -> None:
        stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(self.addr[name]))
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:\n" + (self.tmp / f"{name}.log").read_text()[-4000:])
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def restart(self, name: str) -> None:
        self.start(name)
        self.wait_healthy(name)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()

    def clocks(self) -> dict[str, datetime]:
        out = {}
        for n in NAMES:
            r = clock_pb2_grpc.ClockServiceStub(self.channels[n]).GetTime(
                clock_pb2.GetTimeRequest(), metadata=OPS, timeout=5
            )
            out[n] = r.now_time.ToDatetime(tzinfo=UTC)
        return out

    def mail(self) -> list[email.message.Message]:
        folder = self.tmp / "mail"
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def procs(request, tmp_path):
    """The four services as processes, on SQLite files or on fresh PostgreSQL databases."""
    urls, admin, made = None, None, []
    if request.param == "postgresql":
        if not PG_AVAILABLE:
            pytest.skip("PostgreSQL is not reachable")
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        urls = {}
        with admin.connect() as c:
            for n in NAMES:
                db = f"tenure_faults_{n}_{uuid.uuid4().hex[:8]}"
                c.execute(text(f'CREATE DATABASE "{db}"'))
                made.append(db)
                urls[n] = make_url(PG_ADMIN_URL).set(database=db).render_as_string(hide_password=False)
    p = Processes(tmp_path, urls)
    yield p
    p.stop()
    if admin is not None:
        with admin.connect() as c:
            for db in made:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def _card(p: Processes, account: str, who) -> str:
    return p.billing.AddPaymentMethod(
        billing_pb2.AddPaymentMethodRequest(
            request_id=uuid.uuid4().hex,
            account_id=account,
            type=common_pb2.PAYMENT_METHOD_TYPE_CARD,
            card_number="4242424242424242",
        ),
        metadata=who,
        timeout=10,
    ).payment_method.payment_method_id


def _order(account: str, buyer: str, pm: str, request_id: str, **kw) -> spb.CreateSubscriptionRequest:
    return spb.CreateSubscriptionRequest(
        request_id=request_id,
        account_id=account,
        buyer=spb.Buyer(email=buyer, name="Kari Nordmann", language="nb"),
        product_code="ACDLT",
        plan=common_pb2.PLAN_STANDARD,
        term=kw.get("term", common_pb2.TERM_ANNUAL),
        seats=1,
        currency_code="NOK",
        country_code="NO",
        time_zone="Europe/Oslo",
        channel=common_pb2.CHANNEL_DIRECT_ONLINE,
        payment_method_id=pm,
        auto_renew=kw.get("auto_renew", True),
    )


def _invoices(p: Processes, account: str) -> list[billing_pb2.Invoice]:
    return list(
        p.billing.ListInvoices(
            billing_pb2.ListInvoicesRequest(account_id=account, page_size=500), metadata=OPS, timeout=10
        ).invoices
    )


def test_billing_down_during_an_order_leaves_nothing_and_the_retry_books_it_once(procs):
    buyer, account = "kari@example.no", "acct-fault-1"
    who = person(buyer)
    pm = _card(procs, account, who)
    procs.kill("billing")
    order = _order(account, buyer, pm, "order-while-billing-down")
    with pytest.raises(grpc.RpcError) as e:
        procs.sub.CreateSubscription(order, metadata=who, timeout=30)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    listed = procs.sub.ListSubscriptions(
        spb.ListSubscriptionsRequest(account_id=account), metadata=OPS, timeout=10
    )
    assert list(listed.subscriptions) == []  # nothing left behind
    procs.restart("billing")
    # Subscription reconnects to billing within its reconnect back-off (at most 2 s, RECONNECT); a caller
    # that is told UNAVAILABLE meanwhile retries with the same request id, as callers are told to.
    deadline = time.monotonic() + 5
    while True:
        try:
            first = procs.sub.CreateSubscription(order, metadata=who, timeout=30)
            break
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    again = procs.sub.CreateSubscription(order, metadata=who, timeout=30)  # the same request id once more
    assert again.subscription.subscription_id == first.subscription.subscription_id
    (inv,) = _invoices(procs, account)
    assert inv.status == billing_pb2.INVOICE_STATUS_PAID
    assert len([a for a in inv.payment_attempts if a.status == billing_pb2.PAYMENT_STATUS_SUCCEEDED]) == 1


def test_notification_down_during_an_order_mails_the_confirmation_once_after(procs):
    buyer, account = "kari@example.no", "acct-fault-2"
    who = person(buyer)
    procs.kill("notification")
    pm = _card(procs, account, who)
    procs.sub.CreateSubscription(
        _order(account, buyer, pm, "order-while-mail-down"), metadata=who, timeout=30
    )
    procs.restart("notification")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        procs.notification.RunDelivery(notification_pb2.RunDeliveryRequest(), metadata=OPS, timeout=20)
        confirmations = [
            m for m in procs.mail() if "ORD-" in str(m["Subject"]) or "Ordre" in str(m["Subject"])
        ]
        if confirmations:
            break
        time.sleep(0.3)
    time.sleep(1.0)  # the relays keep running: a second delivery would show now
    procs.notification.RunDelivery(notification_pb2.RunDeliveryRequest(), metadata=OPS, timeout=20)
    kinds = Counter(
        n.kind
        for n in procs.notification.ListNotifications(
            notification_pb2.ListNotificationsRequest(account_id=account), metadata=OPS, timeout=10
        ).notifications
    )
    assert kinds[notification_pb2.NOTIFICATION_KIND_ORDER_CONFIRMATION] == 1
    assert len(procs.mail()) == sum(kinds.values())  # every planned mail was written once


@pytest.mark.parametrize("victim", ["subscription", "billing", "entitlement", "notification"])
def test_sigkill_during_advance_clock_then_again_does_everything_once(procs, victim):
    buyer = "kari@example.no"
    who = person(buyer)
    accounts = [f"acct-kill-{i}" for i in range(6)]
    subs = []
    for i, account in enumerate(accounts):
        pm = _card(procs, account, who)
        term = common_pb2.TERM_MONTHLY if i % 3 == 0 else common_pb2.TERM_ANNUAL
        subs.append(
            procs.sub.CreateSubscription(
                _order(account, buyer, pm, f"kill-{i}", term=term), metadata=who, timeout=30
            ).subscription.subscription_id
        )
    target = timestamp_pb2.Timestamp()
    target.FromDatetime(datetime(2025, 6, 12, tzinfo=UTC))
    outcome: dict[str, object] = {}

    def advance() -> None:
        try:
            outcome["first"] = procs.sub.AdvanceClock(
                spb.AdvanceClockRequest(request_id=uuid.uuid4().hex, to_time=target),
                metadata=OPS,
                timeout=120,
            )
        except grpc.RpcError as err:
            outcome["first"] = err.code()

    t = threading.Thread(target=advance)
    t.start()
    time.sleep(1.0)
    procs.kill(victim)
    procs.restart(victim)  # back while the first call may still be waiting for it
    t.join(timeout=150)
    done = procs.sub.AdvanceClock(
        spb.AdvanceClockRequest(request_id=uuid.uuid4().hex, to_time=target), metadata=OPS, timeout=180
    )
    assert done.now_time.ToDatetime(tzinfo=UTC) == datetime(2025, 6, 12, tzinfo=UTC)
    assert set(procs.clocks().values()) == {datetime(2025, 6, 12, tzinfo=UTC)}  # all four agree

    for sid, account in zip(subs, accounts, strict=True):
        got = procs.sub.GetSubscription(
            spb.GetSubscriptionRequest(subscription_id=sid), metadata=OPS, timeout=10
        )
        s = got.subscription
        assert s.stage == common_pb2.STAGE_ACTIVE, (victim, sid)
        invoices = _invoices(procs, account)
        periods = Counter((i.kind, str(i.lines[0].period_start_date) if i.lines else "") for i in invoices)
        assert max(periods.values()) == 1, (victim, periods)  # no period invoiced twice
        for inv in invoices:
            charges = [a for a in inv.payment_attempts if a.status == billing_pb2.PAYMENT_STATUS_SUCCEEDED]
            assert len(charges) == 1 and inv.status == billing_pb2.INVOICE_STATUS_PAID, (
                victim,
                inv.invoice_id,
            )
        renewals = [i for i in invoices if i.kind == billing_pb2.INVOICE_KIND_RENEWAL]
        # every renewal that came due was recorded by subscription, with exactly one invoice
        assert len(renewals) == (12 if s.term == common_pb2.TERM_MONTHLY else 1), (victim, sid, len(renewals))
    for account in accounts:
        mail = procs.notification.ListNotifications(
            notification_pb2.ListNotificationsRequest(account_id=account, page_size=500),
            metadata=OPS,
            timeout=10,
        ).notifications
        same = Counter((n.recipient_email, n.kind, n.subscription_id, n.create_time.seconds) for n in mail)
        assert max(same.values()) == 1, (victim, account)  # no e-mail twice
