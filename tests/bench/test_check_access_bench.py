"""CheckAccess throughput over gRPC against an empty-handler server of the same kind.

Both servers are real `ServiceApp`s (same gRPC server, thread pool, interceptor with the token check
and the permission table, health and reflection) started in this process, and every call goes as a
product (a service token); the baseline's CheckAccess returns an empty response without doing
anything. One client process (asyncio gRPC) keeps a steady number of calls in
flight against each server in turn, for the same time, and reports completed calls and
latencies. Rounds alternate baseline / service so drift affects both alike; the best round of
each is compared.

Goal: service throughput >= 0.8 x baseline, p99 latency < 5 ms at that load.

    make bench     # or: .venv/bin/pytest tests/bench/test_check_access_bench.py -s
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import resource
import statistics
import time
import uuid

import grpc
import pytest

from shared.app import ServiceApp
from tenure.common.v1 import common_pb2 as c
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.entitlement.v1 import entitlement_pb2_grpc
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests.auth import person, service

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
USERS = 200
PRODUCTS = ("ACDLT", "ACD", "DOCS")
CAPABILITIES = (
    c.CAPABILITY_PRODUCT_ACCESS,
    c.CAPABILITY_USER_MANAGEMENT,
    c.CAPABILITY_DOWNLOADS,
    c.CAPABILITY_REPORTING,
    c.CAPABILITY_SUPPORT,
)


@pytest.fixture
def backend() -> str:
    """The cache serves CheckAccess, so one backend is enough here."""
    return "sqlite"


class EmptyCheckAccess(entitlement_pb2_grpc.EntitlementServiceServicer):
    def CheckAccess(self, request, context):
        return pb.CheckAccessResponse()


def create_baseline(settings, clock) -> ServiceApp:
    from services.entitlement.adapters.directory import TeamDirectory
    from services.entitlement.adapters.repository import EntitlementUnitOfWork
    from services.entitlement.adapters.tables import EntitlementModel
    from services.entitlement.permissions import permissions

    app = ServiceApp.create(
        "entitlement", settings, clock, EntitlementModel.metadata, uow_class=EntitlementUnitOfWork
    )
    app.add_servicer(
        entitlement_pb2_grpc.add_EntitlementServiceServicer_to_server,
        EmptyCheckAccess(),
        pb.DESCRIPTOR.services_by_name["EntitlementService"],
        entitlement_pb2_grpc.EntitlementServiceServicer,
        permissions(app.db, TeamDirectory(app.db)),  # the same token and permission check per call
    )
    return app


def requests() -> list[pb.CheckAccessRequest]:
    return [
        pb.CheckAccessRequest(
            user_email=f"user{u}@example.com", product_code=PRODUCTS[u % len(PRODUCTS)], capability=cap
        )
        for u in range(USERS)
        for cap in CAPABILITIES
    ]


# --- the client process --------------------------------------------------------------------


async def _drive(
    addr: str, seconds: float, concurrency: int, metadata: list[tuple[str, str]]
) -> tuple[int, int, float, list[float]]:
    reqs = requests()
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = entitlement_pb2_grpc.EntitlementServiceStub(channel)
        for r in reqs:  # warm up the connection and the server's cache (every user once)
            await stub.CheckAccess(r, metadata=metadata)
        latencies: list[float] = []
        errors = 0
        start = time.perf_counter()
        stop_at = start + seconds

        async def worker(i: int) -> None:
            nonlocal errors
            k = i
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                try:
                    await stub.CheckAccess(reqs[k % len(reqs)], metadata=metadata)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)
                k += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies), errors, elapsed, latencies


def _client_main(conn, addr: str, seconds: float, concurrency: int, metadata) -> None:
    conn.send(asyncio.run(_drive(addr, seconds, concurrency, metadata)))
    conn.close()


def _server_cpu() -> float:
    """CPU seconds of this process (the servers; the client is another process)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_client(ctx, addr: str) -> dict:
    parent, child = ctx.Pipe(duplex=False)
    # a product asks, with its service token (made here: the client process only sends it)
    proc = ctx.Process(target=_client_main, args=(child, addr, SECONDS, CONCURRENCY, service("product")))
    proc.start()
    cpu0 = _server_cpu()
    calls, errors, elapsed, lat = parent.recv()
    cpu = _server_cpu() - cpu0
    proc.join(30)
    lat.sort()
    return {
        "rps": calls / elapsed,
        # CPU the servers' process spent per call (includes the client's warm-up calls; the same
        # for both servers); insensitive to other load on the machine
        "cpu_us": cpu / max(calls, 1) * 1e6,
        "errors": errors,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    }


# --- the benchmark -------------------------------------------------------------------------


def populate(app) -> None:
    """200 users with seats on subscriptions of three products (one IMMEDIATE, some Expired)."""
    channel = grpc.insecure_channel(app.addr)
    sink = events_pb2_grpc.EventSinkServiceStub(channel)
    stub = entitlement_pb2_grpc.EntitlementServiceStub(channel)
    for p, product in enumerate(PRODUCTS):
        for s in range(2):
            sid = f"sub-{product}-{s}"
            snap = events_pb2.SubscriptionSnapshot(
                subscription_id=sid,
                account_id=f"acct-{s}",
                product_code=product,
                plan=c.PLAN_PREMIUM if s else c.PLAN_STANDARD,
                seats=USERS,
                stage=c.STAGE_EXPIRED if (p + s) % 3 == 0 else c.STAGE_ACTIVE,
                shutoff_policy=c.SHUTOFF_POLICY_IMMEDIATE if product == "DOCS" else c.SHUTOFF_POLICY_STANDARD,
                buyer_email=f"buyer{s}@example.com",
            )
            sink.Deliver(
                events_pb2.DeliverRequest(
                    event=events_pb2.Event(
                        event_id=str(uuid.uuid4()),
                        event_type="subscription.created",
                        subscription_created=events_pb2.SubscriptionCreated(subscription=snap),
                    )
                ),
                metadata=service("subscription"),
            )
    for u in range(USERS):
        product = PRODUCTS[u % len(PRODUCTS)]
        for s in range(2 if u % 2 else 1):
            stub.AssignSeat(
                pb.AssignSeatRequest(
                    request_id=f"bench-{u}-{s}",
                    subscription_id=f"sub-{product}-{s}",
                    user_email=f"user{u}@example.com",
                ),
                metadata=person(f"buyer{s}@example.com"),  # the primary admin of acct-{s}
            )
    r = stub.CheckAccess(
        pb.CheckAccessRequest(
            user_email="user1@example.com", product_code="ACD", capability=c.CAPABILITY_SUPPORT
        ),
        metadata=service("product"),
    )
    assert r.allowed and r.level == c.ACCESS_LEVEL_PREMIUM
    channel.close()


def test_check_access_throughput_against_empty_handler(start_service, capsys):
    service = start_service("entitlement")
    baseline = start_service("entitlement", create=create_baseline)
    populate(service)
    ctx = mp.get_context("spawn")
    results: dict[str, list[dict]] = {"baseline": [], "service": []}
    for i in range(ROUNDS):
        # alternate which server goes first so that drift in the machine's load hits both alike
        order = ("baseline", "service") if i % 2 == 0 else ("service", "baseline")
        for name in order:
            results[name].append(run_client(ctx, (baseline if name == "baseline" else service).addr))
    if os.environ.get("BENCH_VERBOSE"):
        with capsys.disabled():
            for name, rs in results.items():
                print(name, [round(r["rps"]) for r in rs], [round(r["cpu_us"]) for r in rs])
    base = max(results["baseline"], key=lambda r: r["rps"])
    serv = max(results["service"], key=lambda r: r["rps"])
    ratio = serv["rps"] / base["rps"]
    cpu_base = statistics.median(r["cpu_us"] for r in results["baseline"])
    cpu_serv = statistics.median(r["cpu_us"] for r in results["service"])
    cache = service.access_cache
    with capsys.disabled():
        print(
            f"\nCheckAccess over gRPC, concurrency {CONCURRENCY}, {SECONDS:.0f}s x {ROUNDS} rounds, "
            f"{os.cpu_count()} cores\n"
            f"  empty handler : {base['rps']:8.0f} calls/s  p50 {base['p50_ms']:.2f} ms  p99 {base['p99_ms']:.2f} ms\n"
            f"  CheckAccess   : {serv['rps']:8.0f} calls/s  p50 {serv['p50_ms']:.2f} ms  p99 {serv['p99_ms']:.2f} ms\n"
            f"  server CPU per call (median): empty {cpu_base:.0f} us, CheckAccess {cpu_serv:.0f} us "
            f"(ratio {cpu_base / cpu_serv:.2f})\n"
            f"  ratio {ratio:.2f} (goal >= 0.80), cache {len(cache)} users, "
            f"{cache.hits} hits / {cache.misses} misses"
        )
    assert serv["errors"] == 0 and base["errors"] == 0
    assert ratio >= 0.8, f"CheckAccess reaches {ratio:.2f} of the empty handler's throughput"
    assert serv["p99_ms"] < 5.0, f"p99 {serv['p99_ms']:.2f} ms"
