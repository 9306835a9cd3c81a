"""Two copies of every service, as processes, on one PostgreSQL database per service and one NATS
JetStream stream: orders, a renewal pass and a year's lifecycle walk driven through both copies, and
every effect happens once.

Copy 0 and copy 1 of a service share its database and its durable consumer; each copy calls the copy of
its peers with the same number, and the notification copies call the other number, so calls cross. Both
copies relay their outbox, run the sweeps when asked at the same moment, and deliver mail in the
same mail folder."""

from __future__ import annotations

import asyncio
import email
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, make_url, text

from shared.outbox import events_of
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import clock_pb2, clock_pb2_grpc, common_pb2
from tenure.events.v1 import events_pb2
from tenure.notification.v1 import notification_pb2, notification_pb2_grpc
from tenure.subscription.v1 import subscription_pb2 as spb
from tenure.subscription.v1 import subscription_pb2_grpc
from tests import nats_support
from tests.auth import operator, person
from tests.conftest import PG_ADMIN_URL, PG_AVAILABLE
from tests.e2e.conftest import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.pg]
NAMES = ["subscription", "billing", "entitlement", "notification"]
COPIES = (0, 1)
OPS = operator()
START = datetime(2024, 6, 10, 8, 0, tzinfo=UTC)
#: the direct push's subscribers: unused when events go over NATS, and nobody serves them
UNUSED_PUSH = "direct-push-unused.invalid:1"


def ts(when: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when)
    return t


class Replicas:
    """copy 0 and copy 1 of the four services; `addr[name][copy]`, stubs per copy."""

    def __init__(self, tmp: Path, urls: dict[str, str], bus) -> None:
        self.tmp, self.urls, self.bus = tmp, urls, bus
        self.addr = {n: [f"127.0.0.1:{free_port()}" for _ in COPIES] for n in NAMES}
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        for copy in COPIES:  # copy 0 migrates the databases; copy 1 starts on them as they are
            started = [self._start(n, copy) for n in NAMES]
            for n, p in zip(NAMES, started, strict=True):
                self._wait_healthy(n, copy, p)
        self.channels = {n: [grpc.insecure_channel(a) for a in self.addr[n]] for n in NAMES}
        self.sub = [subscription_pb2_grpc.SubscriptionServiceStub(c) for c in self.channels["subscription"]]
        self.billing = [billing_pb2_grpc.BillingServiceStub(c) for c in self.channels["billing"]]
        self.notification = [
            notification_pb2_grpc.NotificationServiceStub(c) for c in self.channels["notification"]
        ]

    def _env(self, copy: int) -> dict[str, str]:
        env = dict(os.environ, TENURE_CLOCK="test", TENURE_CLOCK_START=START.isoformat())
        env.update(nats_support.env_of(self.bus))
        other = 1 - copy
        for n in NAMES:
            p = f"TENURE_{n.upper()}_"
            env[p + "ADDR"] = self.addr[n][copy]
            env[p + "DATABASE_URL"] = self.urls[n]
            peer = other if n == "notification" else copy
            env[p + "BILLING_ADDR"] = self.addr["billing"][peer]
            env[p + "ENTITLEMENT_ADDR"] = self.addr["entitlement"][peer]
            env[p + "NOTIFICATION_ADDR"] = self.addr["notification"][peer]
            env[p + "RELAY_INTERVAL_SECONDS"] = "0.1"
            env[p + "RELAY_MAX_BACKOFF_SECONDS"] = "0.5"
            env[p + "METRICS_ADDR"] = ""
            # the direct push is not used when events go over NATS: an address nobody serves shows it
            env[p + "EVENT_SUBSCRIBERS"] = UNUSED_PUSH
        env["TENURE_SUBSCRIPTION_LIFECYCLE_INTERVAL_SECONDS"] = "0"  # the test runs the sweeps
        env["TENURE_BILLING_SWEEP_INTERVAL_SECONDS"] = "0"
        env["TENURE_NOTIFICATION_MAIL_DIR"] = str(self.tmp / "mail")  # one folder for both copies
        # The test clock is each process's own: AdvanceClock through one copy moves the clocks of the copies
        # it calls, and the others follow when the test sets them. Mail is planned under a lease timed by
        # the planner's clock, so two copies whose clocks disagree must not plan at the same time: the
        # background delivery is off, and the test runs both copies' delivery once all clocks agree.
        env["TENURE_NOTIFICATION_DELIVERY_INTERVAL_SECONDS"] = "0"
        return env

    def _start(self, name: str, copy: int) -> subprocess.Popen:
        path = self.tmp / f"{name}-{copy}.log"
        self.logs.append(path)
        log = open(path, "a")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=self._env(copy), stdout=log, stderr=log
        )
        self.procs.append(p)
        return p

    def _wait_healthy(self, name: str, copy: int, proc: subprocess.Popen, timeout: float = 60) -> None:
        stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(self.addr[name][copy]))
        deadline = time.monotonic() + timeout
        while True:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (self.tmp / f"{name}-{copy}.log").read_text()[-4000:]
                pytest.fail(f"{name} copy {copy} did not start:\n{log}")
            time.sleep(0.1)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    def clock(self, name: str, copy: int) -> clock_pb2_grpc.ClockServiceStub:
        return clock_pb2_grpc.ClockServiceStub(self.channels[name][copy])

    def set_time(self, when: datetime) -> None:
        for n in NAMES:
            for c in COPIES:
                self.clock(n, c).SetTime(clock_pb2.SetTimeRequest(to_time=ts(when)), metadata=OPS, timeout=10)

    def drain(self) -> None:
        """Every copy's outbox handed over and every consumer caught up (repeated: draining one can make
        work for another)."""
        for _ in range(10):
            pending = sum(
                self.clock(n, c)
                .DrainOutbox(clock_pb2.DrainOutboxRequest(timeout_seconds=30), metadata=OPS, timeout=40)
                .pending
                for n in NAMES
                for c in COPIES
            )
            if not pending:
                return
        pytest.fail("the outboxes did not drain")

    def mail(self) -> list[email.message.Message]:
        folder = self.tmp / "mail"
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


@pytest.fixture
def replicas(tmp_path):
    if not PG_AVAILABLE:
        pytest.skip("PostgreSQL is not reachable")
    if not nats_support.NATS_AVAILABLE:
        pytest.skip("NATS with JetStream is not reachable")
    bus = nats_support.unique_bus()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    urls, made = {}, []
    with admin.connect() as c:
        for n in NAMES:
            db = f"tenure_replicas_{n}_{uuid.uuid4().hex[:8]}"
            c.execute(text(f'CREATE DATABASE "{db}"'))
            made.append(db)
            urls[n] = make_url(PG_ADMIN_URL).set(database=db).render_as_string(hide_password=False)
    r = None
    try:
        r = Replicas(tmp_path, urls, bus)
        yield r
    finally:
        if r is not None:
            r.stop()
        nats_support.delete_stream(bus)
        with admin.connect() as c:
            for db in made:
                c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def order(account: str, buyer: str, pm: str, request_id: str, term: int) -> spb.CreateSubscriptionRequest:
    return spb.CreateSubscriptionRequest(
        request_id=request_id,
        account_id=account,
        buyer=spb.Buyer(email=buyer, name="Kari Nordmann", language="nb"),
        product_code="ACDLT",
        plan=common_pb2.PLAN_STANDARD,
        term=term,
        seats=1,
        currency_code="NOK",
        country_code="NO",
        time_zone="Europe/Oslo",
        channel=common_pb2.CHANNEL_DIRECT_ONLINE,
        payment_method_id=pm,
        auto_renew=True,
    )


def both(fn) -> list:
    """Call `fn(copy)` on both copies at the same moment; their answers in copy order."""
    out: list = [None, None]
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def run(copy: int) -> None:
        try:
            gate.wait(5)
            out[copy] = fn(copy)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in COPIES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return out


def outbox_events(url: str) -> list[events_pb2.Event]:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            rows = c.execute(text("SELECT seq, event_id, payload, batch FROM outbox ORDER BY seq")).all()
    finally:
        eng.dispose()
    return [ev for r in rows for ev in events_of(SimpleNamespace(**r._mapping))]


def inbox_ids(url: str) -> list[str]:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return [r for (r,) in c.execute(text("SELECT event_id FROM inbox"))]
    finally:
        eng.dispose()


def stream_events(bus) -> list[tuple[str, str, events_pb2.Event]]:
    """Every message of the stream in stream order: (subject, Nats-Msg-Id, event)."""
    import nats

    async def go():
        nc = await nats.connect(bus.url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(bus.stream)
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                m = await js.get_msg(bus.stream, seq)
                out.append(
                    (m.subject, (m.headers or {}).get("Nats-Msg-Id", ""), events_pb2.Event.FromString(m.data))
                )
            return out
        finally:
            await nc.close()

    return asyncio.run(go())


def test_two_copies_of_every_service_do_each_thing_once(replicas):
    r = replicas
    buyer = "kari@example.no"
    who = person(buyer)
    accounts = [f"acct-rep-{i}" for i in range(6)]
    terms = [common_pb2.TERM_MONTHLY if i % 2 == 0 else common_pb2.TERM_ANNUAL for i in range(6)]

    # orders through both copies; each one sent again through the other copy with the same request id
    subs = []
    for i, account in enumerate(accounts):
        copy = i % 2
        pm = (
            r.billing[copy]
            .AddPaymentMethod(
                billing_pb2.AddPaymentMethodRequest(
                    request_id=f"rep-pm-{i}",
                    account_id=account,
                    type=common_pb2.PAYMENT_METHOD_TYPE_CARD,
                    card_number="4242424242424242",
                ),
                metadata=who,
                timeout=10,
            )
            .payment_method.payment_method_id
        )
        req = order(account, buyer, pm, f"rep-order-{i}", terms[i])
        first, again = both(lambda c, req=req: r.sub[c].CreateSubscription(req, metadata=who, timeout=30))
        assert first.subscription.subscription_id == again.subscription.subscription_id
        subs.append(first.subscription.subscription_id)
    r.drain()

    # a renewal pass: both copies' lifecycle sweeps at the same instant split the due subscriptions
    r.set_time(datetime(2024, 7, 10, 10, 0, tzinfo=UTC))
    swept = both(lambda c: r.sub[c].RunLifecycle(spb.RunLifecycleRequest(), metadata=OPS, timeout=60))
    both(
        lambda c: r.billing[c].RunBillingSweep(billing_pb2.RunBillingSweepRequest(), metadata=OPS, timeout=60)
    )
    r.drain()
    renewed = sum(s.renewed for s in swept)
    assert renewed == 3, swept  # the three monthly subscriptions, each by one copy
    for i, account in enumerate(accounts):
        invoices = list(
            r.billing[i % 2]
            .ListInvoices(billing_pb2.ListInvoicesRequest(account_id=account, page_size=100), metadata=OPS)
            .invoices
        )
        assert len(invoices) == (2 if terms[i] == common_pb2.TERM_MONTHLY else 1), (account, len(invoices))

    # the lifecycle walk: a year on the test clock through copy 1, then every copy's clock is there too
    end = datetime(2025, 6, 12, tzinfo=UTC)
    r.sub[1].AdvanceClock(
        spb.AdvanceClockRequest(request_id=uuid.uuid4().hex, to_time=ts(end)), metadata=OPS, timeout=180
    )
    r.set_time(end)
    r.drain()

    for i, (sid, account) in enumerate(zip(subs, accounts, strict=True)):
        s = (
            r.sub[i % 2]
            .GetSubscription(spb.GetSubscriptionRequest(subscription_id=sid), metadata=OPS)
            .subscription
        )
        assert s.stage == common_pb2.STAGE_ACTIVE, sid
        invoices = list(
            r.billing[1 - i % 2]
            .ListInvoices(billing_pb2.ListInvoicesRequest(account_id=account, page_size=100), metadata=OPS)
            .invoices
        )
        periods = Counter(
            (inv.kind, str(inv.lines[0].period_start_date) if inv.lines else "") for inv in invoices
        )
        assert max(periods.values()) == 1, periods  # one invoice per order and per renewal
        renewals = [inv for inv in invoices if inv.kind == billing_pb2.INVOICE_KIND_RENEWAL]
        assert len(renewals) == (12 if terms[i] == common_pb2.TERM_MONTHLY else 1), (sid, len(renewals))
        for inv in invoices:
            charges = [a for a in inv.payment_attempts if a.status == billing_pb2.PAYMENT_STATUS_SUCCEEDED]
            assert len(charges) == 1 and inv.status == billing_pb2.INVOICE_STATUS_PAID, inv.invoice_id

    # mail: both copies plan and deliver at the same moment; each e-mail is planned once and written once
    sent = 0
    for _ in range(3):  # the later passes find nothing left: a second copy of a mail would show here
        done = both(
            lambda c: r.notification[c].RunDelivery(
                notification_pb2.RunDeliveryRequest(limit=1000), metadata=OPS, timeout=60
            )
        )
        sent += sum(d.sent for d in done)
    planned = []
    for account in accounts:
        planned += list(
            r.notification[0]
            .ListNotifications(
                notification_pb2.ListNotificationsRequest(account_id=account, page_size=500), metadata=OPS
            )
            .notifications
        )
    same = Counter((n.recipient_email, n.kind, n.subscription_id, n.create_time.seconds) for n in planned)
    assert planned and max(same.values()) == 1
    assert sent == len(planned) == len(r.mail())
    ids = Counter(m["Message-ID"] for m in r.mail())
    assert max(ids.values()) == 1

    # the stream holds every outbox event once, each producer's in its outbox order
    r.drain()
    published = {n: outbox_events(r.urls[n]) for n in NAMES}
    stream = stream_events(r.bus)
    msg_ids = [mid for _, mid, _ in stream]
    assert len(msg_ids) == len(set(msg_ids)) == sum(len(evs) for evs in published.values())
    assert {ev.event_id for evs in published.values() for ev in evs} == set(msg_ids)
    for _, mid, ev in stream:
        assert mid == ev.event_id
    for n in NAMES:
        in_stream = [ev.event_id for _, _, ev in stream if ev.source == n]
        assert in_stream == [ev.event_id for ev in published[n]], n  # seq order, nothing twice
    # each consuming service applied every event of the types it handles once, and nothing else
    consumers = nats_support.consumers(r.bus)
    assert set(consumers) == set(NAMES) and all(v == (0, 0) for v in consumers.values()), consumers
    for n in NAMES:
        got = inbox_ids(r.urls[n])
        assert len(got) == len(set(got))
        types = {ev.event_type for _, _, ev in stream if ev.event_id in set(got)}
        assert types or n == "billing", n  # billing takes only role changes, and this walk makes none
        want = {ev.event_id for _, _, ev in stream if ev.event_type in types}
        assert set(got) == want, n
    # and the logs say the direct push was never tried
    for path in r.logs:
        assert "direct-push-unused" not in path.read_text(), path
