"""Every benchmark of `make bench` at a tiny size, so none of them can rot: each runs end to end and
produces sane numbers (positive rates, ratios that are finite); the goals are for `make bench`."""

from __future__ import annotations

import math

import pytest

from tests.bench import orders, relay, sweeps
from tests.bench.harness import Result
from tests.conftest import PG_AVAILABLE


def sane(r: Result) -> None:
    assert r.figure > 0 and math.isfinite(r.figure), r
    if r.baseline is not None:
        assert r.baseline > 0 and math.isfinite(r.baseline), r
    if r.ratio is not None:
        assert r.ratio > 0 and math.isfinite(r.ratio), r


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("method", ["AddSeats", "CreateSubscription"])
def test_order_against_replay(start_service, method):
    r = orders.order_against_replay(start_service, method, n=3, replays=3, runs=1)
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
