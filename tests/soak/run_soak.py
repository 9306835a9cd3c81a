"""`make soak`: a bounded soak of the four services as processes on PostgreSQL.

50 concurrent clients (SOAK_CLIENTS) for 30 s (SOAK_SECONDS) place orders, add seats, renew, pay open
invoices and read. Afterwards, with every outbox drained:
- no answer was INTERNAL or UNKNOWN;
- every invoice's total equals its lines plus tax, and its subtotal the sum of its lines;
- every subscription's seats equal what the clients saw it bought and added;
- each order's invoice was charged at most once, and no two orders share an invoice;
and the p50/p99 latency of each RPC is printed.

    make soak                         # PostgreSQL at TENURE_TEST_PG_URL (default postgres@127.0.0.1)
    SOAK_SECONDS=10 SOAK_CLIENTS=20 make soak
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
NAMES = ["subscription", "billing", "entitlement", "notification"]
SECONDS = float(os.environ.get("SOAK_SECONDS", "30"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "50"))
PG = os.environ.get("TENURE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:  # noqa: PLR0915 - one linear script
    from sqlalchemy import create_engine, make_url, text

    keys = tempfile.mkdtemp(prefix="tenure-soak-keys-")
    os.environ["TENURE_AUTH_KEY_DIR"] = keys
    run_id = uuid.uuid4().hex[:8]
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    dbs = {n: f"tenure_soak_{n}_{run_id}" for n in NAMES}
    with admin.connect() as c:
        for db in dbs.values():
            c.execute(text(f'CREATE DATABASE "{db}"'))
    urls = {n: make_url(PG).set(database=db).render_as_string(hide_password=False) for n, db in dbs.items()}
    addr = {n: f"127.0.0.1:{free_port()}" for n in NAMES}
    env = dict(os.environ, TENURE_AUTH_KEY_DIR=keys, TENURE_LOG_LEVEL="WARNING")
    for n in NAMES:
        p = f"TENURE_{n.upper()}_"
        env[p + "ADDR"] = addr[n]
        env[p + "DATABASE_URL"] = urls[n]
        env[p + "BILLING_ADDR"] = addr["billing"]
        env[p + "ENTITLEMENT_ADDR"] = addr["entitlement"]
        env[p + "NOTIFICATION_ADDR"] = addr["notification"]
        env[p + "RELAY_INTERVAL_SECONDS"] = "0.2"
    env["TENURE_SUBSCRIPTION_EVENT_SUBSCRIBERS"] = f"{addr['entitlement']},{addr['notification']}"
    env["TENURE_BILLING_EVENT_SUBSCRIBERS"] = (
        f"{addr['subscription']},{addr['entitlement']},{addr['notification']}"
    )
    env["TENURE_ENTITLEMENT_EVENT_SUBSCRIBERS"] = (
        f"{addr['subscription']},{addr['billing']},{addr['notification']}"
    )
    env["TENURE_NOTIFICATION_MAIL_DIR"] = tempfile.mkdtemp(prefix="tenure-soak-mail-")
    logs = Path(tempfile.mkdtemp(prefix="tenure-soak-logs-"))
    procs = {
        n: subprocess.Popen(
            [sys.executable, "-m", f"services.{n}"],
            cwd=ROOT,
            env=env,
            stdout=open(logs / f"{n}.log", "w"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        for n in NAMES
    }
    try:
        return _soak(addr, urls, logs)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        with admin.connect() as c:
            for db in dbs.values():
                c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def _soak(addr: dict[str, str], urls: dict[str, str], logs: Path) -> int:  # noqa: PLR0915
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from sqlalchemy import create_engine, text

    from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
    from tenure.common.v1 import common_pb2
    from tenure.subscription.v1 import subscription_pb2 as spb
    from tenure.subscription.v1 import subscription_pb2_grpc
    from tests.auth import person

    started = time.monotonic()
    for n, a in addr.items():
        ch = grpc.insecure_channel(a)
        while True:
            try:
                r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() - started > 60:
                print(f"{n} did not start:\n" + (logs / f"{n}.log").read_text())
                return 1
            time.sleep(0.2)

    sub_ch, bill_ch = grpc.insecure_channel(addr["subscription"]), grpc.insecure_channel(addr["billing"])
    sub = subscription_pb2_grpc.SubscriptionServiceStub(sub_ch)
    bill = billing_pb2_grpc.BillingServiceStub(bill_ch)
    latencies: dict[str, list[float]] = defaultdict(list)
    codes: Counter[tuple[str, str]] = Counter()
    seats_seen: dict[str, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def call(name: str, fn, request, who):
        t0 = time.perf_counter()
        try:
            resp = fn(request, metadata=who, timeout=30)
            code = "OK"
        except grpc.RpcError as err:
            resp, code = None, err.code().name
        with lock:
            latencies[name].append(time.perf_counter() - t0)
            codes[(name, code)] += 1
        return resp

    def client(i: int) -> None:
        rnd = random.Random(i)
        account = f"acct-soak-{i}"
        buyer = f"buyer{i}@soak.example"
        who = person(buyer)
        pm = call(
            "AddPaymentMethod",
            bill.AddPaymentMethod,
            billing_pb2.AddPaymentMethodRequest(
                request_id=uuid.uuid4().hex,
                account_id=account,
                type=common_pb2.PAYMENT_METHOD_TYPE_CARD,
                card_number="4242424242424242",
            ),
            who,
        )
        if pm is None:
            return
        subs: list[str] = []
        while time.monotonic() < stop:
            action = rnd.random()
            if action < 0.25 or not subs:
                seats = rnd.randint(1, 5)
                req = spb.CreateSubscriptionRequest(
                    request_id=uuid.uuid4().hex,
                    account_id=account,
                    buyer=spb.Buyer(
                        email=buyer, name=f"Buyer {i}", language=rnd.choice(["en", "nb", "fr", "sv"])
                    ),
                    product_code=rnd.choice(["ACDLT", "ACD"]),
                    plan=common_pb2.PLAN_STANDARD,
                    term=rnd.choice([common_pb2.TERM_ANNUAL, common_pb2.TERM_MONTHLY]),
                    seats=seats,
                    currency_code="NOK",
                    country_code="NO",
                    time_zone="Europe/Oslo",
                    channel=common_pb2.CHANNEL_DIRECT_ONLINE,
                    payment_method_id=pm.payment_method.payment_method_id,
                    auto_renew=True,
                )
                r = call("CreateSubscription", sub.CreateSubscription, req, who)
                if r is not None:
                    sid = r.subscription.subscription_id
                    subs.append(sid)
                    with lock:
                        seats_seen[sid] = seats
                    if rnd.random() < 0.2:  # a retry of the same order: the same answer, no second order
                        again = call("CreateSubscription", sub.CreateSubscription, req, who)
                        assert again is None or again.subscription.subscription_id == sid
            elif action < 0.5:
                sid = rnd.choice(subs)
                n = rnd.randint(1, 3)
                req = spb.AddSeatsRequest(request_id=uuid.uuid4().hex, subscription_id=sid, seats=n)
                if call("AddSeats", sub.AddSeats, req, who) is not None:
                    with lock:
                        seats_seen[sid] += n
            elif action < 0.6:
                sid = rnd.choice(subs)
                call(
                    "RenewSubscription",
                    sub.RenewSubscription,
                    spb.RenewSubscriptionRequest(request_id=uuid.uuid4().hex, subscription_id=sid),
                    who,
                )
            elif action < 0.7:
                inv = call(
                    "ListInvoices",
                    bill.ListInvoices,
                    billing_pb2.ListInvoicesRequest(
                        account_id=account, status=billing_pb2.INVOICE_STATUS_OPEN
                    ),
                    who,
                )
                for o in (inv.invoices if inv else [])[:1]:
                    call(
                        "PayInvoice",
                        bill.PayInvoice,
                        billing_pb2.PayInvoiceRequest(request_id=uuid.uuid4().hex, invoice_id=o.invoice_id),
                        who,
                    )
            elif action < 0.85:
                call(
                    "GetSubscription",
                    sub.GetSubscription,
                    spb.GetSubscriptionRequest(subscription_id=rnd.choice(subs)),
                    who,
                )
            else:
                call(
                    "ListInvoices",
                    bill.ListInvoices,
                    billing_pb2.ListInvoicesRequest(account_id=account),
                    who,
                )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    # let every outbox drain (the relays run every 0.2 s)
    sub_db, bill_db = create_engine(urls["subscription"]), create_engine(urls["billing"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pending = 0
        for url in urls.values():
            e = create_engine(url)
            with e.connect() as c:
                top = c.execute(text("SELECT coalesce(max(seq), 0) FROM outbox")).scalar_one()
                low = c.execute(text("SELECT coalesce(min(last_id), 0) FROM outbox_cursor")).scalar_one()
                pending += max(0, int(top) - int(low))
            e.dispose()
        if not pending:
            break
        time.sleep(0.5)

    failures: list[str] = []
    bad = {k: v for k, v in codes.items() if k[1] in ("INTERNAL", "UNKNOWN")}
    if bad:
        failures.append(f"INTERNAL or UNKNOWN answers: {bad}")
    with bill_db.connect() as c:
        rows = c.execute(
            text(
                "SELECT i.invoice_id, i.subtotal, i.tax, i.total, "
                "(SELECT string_agg(l.amount || ':' || l.tax, ',') FROM invoice_lines l "
                "WHERE l.invoice_id = i.invoice_id) FROM invoices i"
            )
        ).all()
        for invoice_id, subtotal, tax, total, lines in rows:
            pairs = [p.split(":") for p in (lines or "").split(",") if p]
            amount = sum((Decimal(a) for a, _ in pairs), Decimal(0))
            line_tax = sum((Decimal(t) for _, t in pairs), Decimal(0))
            if Decimal(subtotal) != amount or Decimal(total) != Decimal(subtotal) + Decimal(tax):
                failures.append(f"invoice {invoice_id}: {subtotal} + {tax} != {total} or lines {amount}")
            if abs(line_tax - Decimal(tax)) > Decimal("0.01") * max(1, len(pairs)):
                failures.append(f"invoice {invoice_id}: tax {tax} against its lines' {line_tax}")
        charged = c.execute(
            text(
                "SELECT invoice_id, count(*) FROM payments WHERE status = 'succeeded' AND charge_id <> '' "
                "GROUP BY invoice_id HAVING count(*) > 1"
            )
        ).all()
        if charged:
            failures.append(f"invoices charged more than once: {charged[:10]}")
        invoices = len(rows)
    with sub_db.connect() as c:
        shared_invoices = c.execute(
            text(
                "SELECT invoice_id, count(DISTINCT order_number) FROM orders WHERE invoice_id <> '' "
                "GROUP BY invoice_id HAVING count(DISTINCT order_number) > 1"
            )
        ).all()
        if shared_invoices:
            failures.append(f"orders sharing an invoice: {shared_invoices[:10]}")
        seats = dict(c.execute(text("SELECT subscription_id, seats FROM subscriptions")).all())
        orders = c.execute(text("SELECT count(*) FROM orders")).scalar_one()
    for sid, n in seats_seen.items():
        if seats.get(sid) != n:
            failures.append(f"subscription {sid}: {seats.get(sid)} seats, the clients bought {n}")
    sub_db.dispose()
    bill_db.dispose()

    total = sum(codes.values())
    print(
        f"\nsoak: {CLIENTS} clients for {elapsed:.1f} s on PostgreSQL: {total} calls ({total / elapsed:.0f}/s)"
    )
    print(f"{len(seats_seen)} subscriptions, {orders} orders, {invoices} invoices")
    print(f"{'rpc':<20} {'calls':>7} {'p50 ms':>8} {'p99 ms':>8}  codes")
    for name in sorted(latencies):
        xs = sorted(latencies[name])
        p50 = xs[len(xs) // 2] * 1000
        p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))] * 1000
        by_code = {c: n for (rpc, c), n in codes.items() if rpc == name}
        print(f"{name:<20} {len(xs):>7} {p50:>8.1f} {p99:>8.1f}  {by_code}")
    if failures:
        print("\nFAILED:\n" + "\n".join(failures[:50]))
        return 1
    print("soak passed: no INTERNAL, invoices add up, seats match, each invoice charged at most once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
