"""Every benchmark of `make bench` at a tiny size, so none of them can rot: each runs end to end and
produces sane numbers (positive rates, ratios that are finite); the goals are for `make bench`."""

from __future__ import annotations

import math

import pytest

from tests.bench import access, clock, mail, orders, relay, sweeps
from tests.bench.harness import Result
from tests.conftest import PG_ADMIN_URL, PG_AVAILABLE


def sane(r: Result) -> None:
    assert r.figure > 0 and math.isfinite(r.figure), r
    if r.baseline is not None:
        assert r.baseline > 0 and math.isfinite(r.baseline), r
    if r.ratio is not None:
        assert r.ratio > 0 and math.isfinite(r.ratio), r


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("method", ["AddSeats", "CreateSubscription"])
def test_order_against_replay(start_service, method):
    r = orders.order_against_replay(start_service, method, n=3, replays=3, runs=2)  # runs: keys stay unique
    sane(r)
    assert r.extra["statements"]


def test_relay_drain(start_service, new_db_url, tmp_path):
    sane(relay.relay_drain(start_service, new_db_url, tmp_path, n=5, runs=1))


@pytest.mark.pg
@pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")
@pytest.mark.parametrize("backend", ["postgresql"])
def test_sweeps(new_db_url):
    url = new_db_url("sweep")
    db, _ = sweeps.build(url, idle=500)
    try:
        (r,) = sweeps.sweep_against_update(db, [20], idle=500, loaded_s=0, runs=1)
        sane(r)
        r = sweeps.two_workers(db, url, due=20, runs=1)
        sane(r)
        assert r.extra["duplicates"] == 0
    finally:
        db.dispose()


def test_mail():
    sane(mail.mail_throughput(n=4, per_pass=2, runs=1))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_advance_clock(start_service, new_db_url, tmp_path):
    (r,) = clock.advance_one_year(start_service, new_db_url, tmp_path, [2], goal_at=2)
    sane(r)
    assert r.extra["steps"] > 1  # something came due on the way


@pytest.mark.parametrize("backend", ["sqlite"])
def test_check_access(start_service):
    sane(access.check_access_p99(start_service, seconds=0.5, runs=1))


@pytest.mark.e2e
def test_orders_against_processes():
    sane(orders.order_against_processes("AddSeats", n=3, runs=1, goal=1.0))


@pytest.mark.e2e
@pytest.mark.pg
@pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")
def test_concurrent_add_seats():
    sane(orders.concurrent_add_seats(PG_ADMIN_URL, n=2, clients=2, runs=1))
