"""CheckAccess latency (issue 18, row 9): p99 open-loop at 70 % of the service's measured peak against an
empty handler's p99 at the same load.

Both servers are real `ServiceApp`s started in this process (same gRPC server, thread pool, interceptor with
the token check and the permission table); the baseline's CheckAccess returns an empty response. A client
process first finds the service's peak (a closed loop keeping `CONCURRENCY` calls in flight), then sends
calls on a fixed schedule at 70 % of it to each server in turn (rounds alternate which goes first); each
latency counts from the call's scheduled instant, so queueing behind a slow call is measured, not hidden."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import resource
import statistics
import time
import uuid

import grpc

from shared.app import ServiceApp
from tenure.common.v1 import common_pb2 as c
from tenure.entitlement.v1 import entitlement_pb2 as pb
from tenure.entitlement.v1 import entitlement_pb2_grpc
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tests.auth import person, service
from tests.bench.harness import RUNS, Result, median, record, started

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
USERS = 200
PRODUCTS = ("ACDLT", "ACD", "DOCS")
CAPABILITIES = (
    c.CAPABILITY_PRODUCT_ACCESS,
    c.CAPABILITY_USER_MANAGEMENT,
    c.CAPABILITY_DOWNLOADS,
    c.CAPABILITY_REPORTING,
    c.CAPABILITY_SUPPORT,
)


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


def run_client(ctx, addr: str, seconds: float = SECONDS) -> dict:
    parent, child = ctx.Pipe(duplex=False)
    # a product asks, with its service token (made here: the client process only sends it)
    proc = ctx.Process(target=_client_main, args=(child, addr, seconds, CONCURRENCY, service("product")))
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


async def _open_loop(addr: str, rate: float, seconds: float, metadata: list[tuple[str, str]]) -> list[float]:
    reqs = requests()
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = entitlement_pb2_grpc.EntitlementServiceStub(channel)
        for r in reqs[:100]:  # warm
            await stub.CheckAccess(r, metadata=metadata)
        latencies: list[float] = []
        errors = 0

        async def one(k: int, due: float) -> None:
            nonlocal errors
            try:
                await stub.CheckAccess(reqs[k % len(reqs)], metadata=metadata)
            except grpc.aio.AioRpcError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        n = int(rate * seconds)
        start = time.perf_counter() + 0.05
        tasks = []
        for k in range(n):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, due)))
        await asyncio.gather(*tasks)
    if errors:
        raise RuntimeError(f"{errors} CheckAccess calls failed")
    return latencies


def _open_main(conn, addr: str, rate: float, seconds: float, metadata) -> None:
    conn.send(asyncio.run(_open_loop(addr, rate, seconds, metadata)))
    conn.close()


def open_loop_p99(ctx, addr: str, rate: float, seconds: float) -> float:
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_open_main, args=(child, addr, rate, seconds, service("product")))
    proc.start()
    lat = sorted(parent.recv())
    proc.join(30)
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


def check_access_p99(start_service, seconds: float, runs: int = RUNS, load: float = 0.7) -> Result:
    app = start_service("entitlement")
    baseline = start_service("entitlement", create=create_baseline)
    populate(app)
    with started():
        ctx = mp.get_context("spawn")
        peak = max(run_client(ctx, app.addr, seconds)["rps"] for _ in range(runs))
        rate = load * peak
        p99s: dict[str, list[float]] = {"baseline": [], "service": []}
        for i in range(runs):
            order = ("baseline", "service") if i % 2 == 0 else ("service", "baseline")
            for name in order:
                p99s[name].append(
                    open_loop_p99(ctx, (baseline if name == "baseline" else app).addr, rate, seconds)
                )
    serv, base = median(p99s["service"]), median(p99s["baseline"])
    ratio = serv / base
    return record(
        Result(
            row="CheckAccess p99, open loop at 70 % of peak",
            figure=serv,
            unit="ms",
            baseline=base,
            baseline_unit="ms empty handler",
            ratio=ratio,
            goal="<= 1.5x",
            met=ratio <= 1.5,
            note=f"peak {peak:,.0f}/s closed loop ({CONCURRENCY} in flight); {rate:,.0f}/s for {seconds:.0f} s x {runs}",
            runs=p99s["service"],
            extra={"baseline_runs": p99s["baseline"], "peak": peak},
        )
    )
