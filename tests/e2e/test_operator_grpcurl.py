"""What an operator does with grpcurl against the four running services."""

from __future__ import annotations

import json
import signal

import pytest

from tests.e2e.conftest import NAMES, auth, grpcurl, token

pytestmark = pytest.mark.e2e

OWN = {n: f"tenure.{n}.v1.{n.capitalize()}Service" for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_list_shows_own_service_health_and_reflection(stack, name):
    r = grpcurl(stack["addr"][name], "list")
    assert r.returncode == 0, r.stderr
    listed = set(r.stdout.split())
    assert {
        OWN[name],
        "tenure.common.v1.ClockService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= listed
    assert "tenure.events.v1.EventSinkService" in listed  # billing too: it keeps the teams from entitlement


@pytest.mark.parametrize("name", NAMES)
def test_health_check_answers_serving(stack, name):
    r = grpcurl(stack["addr"][name], "grpc.health.v1.Health/Check")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "SERVING"
    r = grpcurl("-d", json.dumps({"service": OWN[name]}), stack["addr"][name], "grpc.health.v1.Health/Check")
    assert json.loads(r.stdout)["status"] == "SERVING"


def test_describe_shows_documented_rpcs(stack):
    r = grpcurl(stack["addr"]["subscription"], "describe", OWN["subscription"])
    assert r.returncode == 0, r.stderr
    for rpc in ("CreateSubscription", "AddSeats", "RenewSubscription", "RunLifecycle", "AdvanceClock"):
        assert f"rpc {rpc}" in r.stdout
    r = grpcurl(stack["addr"]["billing"], "describe", "tenure.billing.v1.Invoice")
    assert r.returncode == 0 and "invoice_number" in r.stdout


def test_error_call_shows_status_code_and_error_info_reason(stack):
    r = grpcurl(
        *auth(token("--service", "ops-tools")),
        stack["addr"]["notification"],
        "tenure.events.v1.EventSinkService/Deliver",
        data='{"event": {}}',
    )
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "Code: InvalidArgument" in out
    assert "ERROR_REASON_EVENT_INCOMPLETE" in out and "notification.tenure" in out
    assert "event.event_id" in out  # the BadRequest field violation


def test_a_call_without_a_token_is_unauthenticated_and_says_how(stack):
    r = grpcurl(stack["addr"]["subscription"], "tenure.subscription.v1.SubscriptionService/ListProducts")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Code: Unauthenticated" in out and "authorization: Bearer" in out
    r = grpcurl(
        *auth(token("--email", "ada@example.com")),
        stack["addr"]["subscription"],
        "tenure.subscription.v1.SubscriptionService/ListProducts",
    )
    assert r.returncode == 0 and "ACDLT" in r.stdout


def test_sigterm_stops_gracefully(stack):
    proc = stack["procs"]["entitlement"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
