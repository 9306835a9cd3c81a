"""Faults a service must ride out: its database refusing connections for a while answers UNAVAILABLE
(retryable, with the reason), never INTERNAL, and the service recovers by itself once the database is
back, with no restart."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import create_engine, make_url, text

from tenure.billing.v1 import billing_pb2 as pb
from tenure.billing.v1 import billing_pb2_grpc
from tests.auth import channel, operator
from tests.conftest import PG_ADMIN_URL, PG_AVAILABLE

pytestmark = pytest.mark.pg


def _reason(err: grpc.RpcError) -> tuple[str, dict]:
    st = rpc_status.from_call(err)
    for d in st.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info.reason, dict(info.metadata)
    return "", {}


@pytest.mark.skipif(not PG_AVAILABLE, reason="PostgreSQL is not reachable")
@pytest.mark.parametrize("backend", ["postgresql"])  # a database server that refuses connections
def test_a_database_that_refuses_connections_answers_unavailable_and_the_service_recovers(
    start_service, new_db_url
):
    url = make_url(new_db_url("faults")).update_query_dict({"application_name": "tenure-fault-billing"})
    app = start_service("billing", database_url=url.render_as_string(hide_password=False))
    billing = billing_pb2_grpc.BillingServiceStub(channel(app.addr))
    ops = operator()
    request = pb.GetBalanceRequest(account_id="acct-fault", currency_code="NOK")
    billing.GetBalance(request, metadata=ops, timeout=10)  # the pool holds a live connection

    database = url.database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false'))
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'tenure-fault-billing'"
                )
            )
        codes = []
        for _ in range(3):  # a dead pooled connection, then connections refused
            with pytest.raises(grpc.RpcError) as e:
                billing.GetBalance(request, metadata=ops, timeout=10)
            codes.append(e.value.code())
            assert _reason(e.value) == ("ERROR_REASON_PEER_UNAVAILABLE", {"peer": "database"})
            assert "retry" in e.value.details()
        assert codes == [grpc.StatusCode.UNAVAILABLE] * 3
    finally:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
    # back without a restart: the pool checks connections before use (pre-ping)
    deadline = time.monotonic() + 10
    while True:
        try:
            got = billing.GetBalance(request, metadata=ops, timeout=10)
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline
            time.sleep(0.2)
    assert got.balance.currency_code == "NOK" or got.balance is not None
