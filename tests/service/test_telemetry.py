"""What an operator sees of a running stack: the four services' /metrics after an order, one trace that
follows the order from the subscription service to billing and through the event pipe to entitlement
and notification (on both transports), and the JSON log line of an RPC."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import urllib.request
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from shared.outbox import OUTBOX_COLUMNS, events_of
from shared.telemetry.logs import json_formatter
from tenure.subscription.v1 import subscription_pb2 as pb
from tests import nats_support
from tests.auth import person
from tests.service.subscription.conftest import KARI, OPERATOR, Stack, rid

NAMES = ("subscription", "billing", "entitlement", "notification")
SUBSCRIPTION = "tenure.subscription.v1.SubscriptionService"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


@pytest.fixture(params=["grpc", "nats"])
def transport(request, monkeypatch):
    """`grpc`: each relay pushes to its `event_subscribers`; `nats`: every app publishes to and consumes
    from a JetStream stream of the test's own (deleted afterwards)."""
    if request.param == "grpc":
        yield "grpc"
        return
    if not nats_support.NATS_AVAILABLE:
        pytest.skip("NATS with JetStream is not reachable")
    bus = nats_support.unique_bus()
    for k, v in nats_support.env_of(bus).items():
        monkeypatch.setenv(k, v)
    yield "nats"
    nats_support.delete_stream(bus)


def start_four(start_service, clock, tmp_path, extra_subscriber: str = "") -> tuple[Stack, dict]:
    """The four services wired as deployed, each with a metrics endpoint on a free port; the subscription
    service's events also go to `extra_subscriber` when given (a consumer that is down)."""
    addr = {n: f"127.0.0.1:{_free_port()}" for n in NAMES}
    apps = {}
    apps["notification"] = start_service(
        "notification",
        addr=addr["notification"],
        metrics_addr="127.0.0.1:0",
        entitlement_addr=addr["entitlement"],
        billing_addr=addr["billing"],
        mail_dir=str(tmp_path / "mail"),
        delivery_interval_seconds=0.2,
    )
    apps["entitlement"] = start_service(
        "entitlement",
        addr=addr["entitlement"],
        metrics_addr="127.0.0.1:0",
        event_subscribers=",".join(addr[n] for n in ("subscription", "billing", "notification")),
    )
    apps["billing"] = start_service(
        "billing",
        addr=addr["billing"],
        metrics_addr="127.0.0.1:0",
        sweep_interval_seconds=0,
        event_subscribers=",".join(addr[n] for n in ("subscription", "entitlement", "notification")),
    )
    subscribers = [addr["entitlement"], addr["notification"]] + (
        [extra_subscriber] if extra_subscriber else []
    )
    apps["subscription"] = start_service(
        "subscription",
        addr=addr["subscription"],
        metrics_addr="127.0.0.1:0",
        billing_addr=addr["billing"],
        entitlement_addr=addr["entitlement"],
        notification_addr=addr["notification"],
        lifecycle_interval_seconds=0,
        event_subscribers=",".join(subscribers),
    )
    return Stack.at(apps["subscription"], apps["billing"], clock, addr["subscription"], addr["billing"]), apps


def scrape(app) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the app's /metrics: (name, sorted labels) → value."""
    assert app.metrics.port, f"{app.name} serves no metrics"
    with urllib.request.urlopen(f"http://127.0.0.1:{app.metrics.port}/metrics", timeout=5) as r:
        assert r.status == 200
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_of_a_running_stack_after_an_order(start_service, clock, tmp_path):
    down = f"127.0.0.1:{_free_port()}"  # a consumer of subscription events that is not running
    stack, apps = start_four(start_service, clock, tmp_path, extra_subscriber=down)
    stack.buy("acct-m")
    clock.advance(timedelta(seconds=90))

    # the notification service sent the order's mail (as many e-mails as .eml files), none retried or failed
    def sent_as_written():
        sent = sample(scrape(apps["notification"]), "tenure_emails_total", result="sent")
        return sent and sent == len(list((tmp_path / "mail").glob("*.eml")))

    assert wait_for(sent_as_written)
    mail = scrape(apps["notification"])
    assert sample(mail, "tenure_emails_total", result="retried") == 0
    assert sample(mail, "tenure_emails_total", result="failed") == 0

    sub = scrape(apps["subscription"])
    ok = {"service": SUBSCRIPTION, "method": "CreateSubscription"}
    assert sample(sub, "tenure_rpc_requests_total", code="OK", **ok) == 1
    assert sample(sub, "tenure_rpc_duration_seconds_count", **ok) == 1
    assert 0 < sample(sub, "tenure_rpc_duration_seconds_sum", **ok) < 10
    assert sample(sub, "tenure_rpc_duration_seconds_bucket", le="+Inf", **ok) == 1
    # the order's events reached entitlement and notification; the consumer that is down has every one
    # of them waiting, the oldest since the order 90 s ago on the service clock
    with apps["subscription"].db.read() as s:
        rows = s.execute(select(apps["subscription"].db.tables["outbox"].c.seq)).all()
    assert rows
    assert wait_for(
        lambda: (
            sample(
                scrape(apps["subscription"]),
                "tenure_outbox_backlog",
                subscriber=stack_addr(apps, "entitlement"),
            )
            == 0
        )
    )
    sub = scrape(apps["subscription"])
    assert sample(sub, "tenure_outbox_oldest_age_seconds", subscriber=stack_addr(apps, "entitlement")) == 0
    assert sample(sub, "tenure_outbox_backlog", subscriber=down) == len(rows)
    assert sample(sub, "tenure_outbox_oldest_age_seconds", subscriber=down) == 90

    # billing charged the card once and answered the subscription service's calls
    bill = scrape(apps["billing"])
    assert sample(bill, "tenure_payment_attempts_total", result="succeeded") == 1
    assert sample(bill, "tenure_payment_attempts_total", result="declined") == 0
    billing_calls = [
        v
        for (name, labels), v in bill.items()
        if name == "tenure_rpc_requests_total" and ("service", "tenure.billing.v1.BillingService") in labels
    ]
    assert sum(billing_calls) >= 2  # the payment method added, the order's invoice


def stack_addr(apps, name: str) -> str:
    return f"127.0.0.1:{apps[name].port}"


def test_sweeps_are_timed_and_counted_by_stage(start_service, clock, tmp_path):
    """A year on: the lifecycle sweep renews the annual term (one row at stage `renewed`) and billing's
    sweep passes are timed, when the test clock's AdvanceClock runs them."""
    from datetime import UTC, datetime

    from google.protobuf import timestamp_pb2

    from shared.telemetry.metrics import metrics_of, record_sweep

    stack, apps = start_four(start_service, clock, tmp_path)
    stack.buy("acct-s")
    to = timestamp_pb2.Timestamp()
    to.FromDatetime(datetime(2025, 6, 12, tzinfo=UTC))  # past the renewal date 2025-06-10
    stack.sub.AdvanceClock(pb.AdvanceClockRequest(request_id=rid(), to_time=to), metadata=OPERATOR)
    sub = scrape(apps["subscription"])
    assert sample(sub, "tenure_sweep_rows_total", sweep="lifecycle", stage="renewed") == 1
    assert sample(sub, "tenure_sweep_duration_seconds_count", sweep="lifecycle") >= 1
    assert sample(scrape(apps["billing"]), "tenure_sweep_duration_seconds_count", sweep="billing") >= 1
    # a pass that did nothing adds to the duration's count, not to any stage
    before = sample(sub, "tenure_sweep_duration_seconds_count", sweep="lifecycle")
    record_sweep(apps["subscription"].db, "lifecycle", 0.5, {"renewed": 0, "expired": 0})
    after = scrape(apps["subscription"])
    assert sample(after, "tenure_sweep_duration_seconds_count", sweep="lifecycle") == before + 1
    assert sample(after, "tenure_sweep_rows_total", sweep="lifecycle", stage="renewed") == 1
    assert sample(after, "tenure_sweep_rows_total", sweep="lifecycle", stage="expired") is None
    assert metrics_of(apps["billing"].db) is apps["billing"].metrics


def test_one_trace_follows_an_order_across_the_four_services(start_service, clock, tmp_path, transport):
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the first in this process: a provider as services make it
        from shared.telemetry.tracing import setup

        provider = setup()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        stack, apps = start_four(start_service, clock, tmp_path)
        req = stack.order("acct-t")
        stack.sub.CreateSubscription(req, metadata=person(req.buyer.email))

        def order_trace():
            spans = exporter.get_finished_spans()
            (order,) = [s for s in spans if s.name == f"{SUBSCRIPTION}/CreateSubscription"]
            return order.context.trace_id, [s for s in spans if s.context.trace_id == order.context.trace_id]

        def consumed_by_both():
            _, spans = order_trace()
            return {
                s.attributes["tenure.service"] for s in spans if s.name == "apply subscription.created"
            } == {"entitlement", "notification"}

        assert wait_for(consumed_by_both)
        trace_id, spans = order_trace()
        assert {s.attributes.get("tenure.service") for s in spans} >= set(NAMES)
        # subscription called billing within the order: billing's server span is a child of the call's span
        billing_server = [
            s
            for s in spans
            if s.kind == trace.SpanKind.SERVER and s.name.startswith("tenure.billing.v1.BillingService/")
        ]
        assert billing_server
        clients = {s.context.span_id for s in spans if s.kind == trace.SpanKind.CLIENT}
        assert all(s.parent is not None and s.parent.span_id in clients for s in billing_server)
        # the events in the outbox carry the order's trace and request id
        db = apps["subscription"].db
        ob = db.tables["outbox"]
        with db.read() as s:
            rows = s.execute(select(*(ob.c[c] for c in OUTBOX_COLUMNS))).all()
        created = [ev for row in rows for ev in events_of(row) if ev.event_type == "subscription.created"]
        assert [ev.request_id for ev in created] == [req.request_id]
        assert created[0].traceparent.split("-")[1] == format(trace_id, "032x")
        # each consumer's span hangs under a span of the order's trace (none is a root of its own)
        ids = {s.context.span_id for s in spans}
        consumed = [s for s in spans if s.name == "apply subscription.created"]
        assert consumed and all(s.parent is not None and s.parent.span_id in ids for s in consumed)
    finally:
        exporter.shutdown()


def test_an_rpc_is_logged_as_one_json_object_with_its_fields(start_service, clock, tmp_path):
    stack, apps = start_four(start_service, clock, tmp_path)
    resp = stack.buy("acct-l")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    rpc_log = logging.getLogger("tenure.rpc")
    rpc_log.addHandler(handler)
    old_level = rpc_log.level
    rpc_log.setLevel(logging.INFO)
    try:
        stack.sub.GetSubscription(
            pb.GetSubscriptionRequest(subscription_id=resp.subscription.subscription_id),
            metadata=[("x-request-id", "req-log-1"), *person(KARI)],
        )
    finally:
        rpc_log.removeHandler(handler)
        rpc_log.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (line,) = [x for x in lines if x.get("request_id") == "req-log-1"]
    assert line["level"] == "info" and line["logger"] == "tenure.rpc"
    assert line["time"].endswith("Z") and line["time"][:4].isdigit()
    assert line["service"] == "subscription"
    assert line["method"] == f"/{SUBSCRIPTION}/GetSubscription"
    assert line["code"] == "OK"
    assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
    assert len(line["trace_id"]) == 32 and int(line["trace_id"], 16)
    assert line["principal"] == KARI
    assert line["account"] == "acct-l"


def test_health_checks_are_counted_and_logged_only_at_debug(start_service, caplog):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    app = start_service("billing", metrics_addr="127.0.0.1:0", sweep_interval_seconds=0)
    caplog.set_level(logging.DEBUG, logger="tenure.rpc")
    with grpc.insecure_channel(app.addr) as ch:
        for _ in range(3):
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    checks = [r for r in caplog.records if r.name == "tenure.rpc" and "Health/Check" in r.getMessage()]
    assert len(checks) == 3 and {r.levelno for r in checks} == {logging.DEBUG}
    got = sample(
        scrape(app), "tenure_rpc_requests_total", service="grpc.health.v1.Health", method="Check", code="OK"
    )
    assert got == 3
