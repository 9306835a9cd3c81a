"""Billing under concurrency: gapless invoice numbers, one charge per request id, one invoice per
installment however many sweeps race (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import grpc
import pytest

from services.billing.app import create
from services.billing.domain.gateway import SandboxGateway
from services.billing.domain.numbering import is_gapless
from tenure.billing.v1 import billing_pb2 as pb
from tenure.common.v1 import common_pb2
from tests.service.billing.helpers import Billing, day


class CountingGateway(SandboxGateway):
    def __init__(self) -> None:
        self.charges: Counter[str] = Counter()
        self._lock = threading.Lock()

    def charge(self, token, amount, currency, *, idempotency_key):
        with self._lock:
            self.charges[idempotency_key] += 1
        return super().charge(token, amount, currency, idempotency_key=idempotency_key)


@pytest.fixture
def counted(start_service):
    gateway = CountingGateway()
    app = start_service(
        "billing", create=lambda s, c: create(s, c, gateway=gateway), sweep_interval_seconds=0
    )
    b = Billing(app)
    b.gateway = gateway
    yield b
    b.channel.close()


def test_twenty_concurrent_orders_get_gapless_numbers_and_retries_charge_once(counted):
    b = counted
    b.profile()
    good, declined = b.card(), b.card(number="4000000000000002")
    ids = [f"order-{n}:invoice" for n in range(20)]
    jobs = [(rid, good if n % 5 else declined) for n, rid in enumerate(ids)]
    jobs += [(ids[n], good if n % 5 else declined) for n in range(1, 20, 4)]  # retried at the same time
    jobs.append(("order-bad:invoice", None))  # refused: uses no number

    def order(job):
        rid, pm = job
        if pm is None:
            with pytest.raises(grpc.RpcError) as e:
                b.CreateInvoice(
                    pb.CreateInvoiceRequest(
                        request_id=rid,
                        account_id="acct-1",
                        kind=pb.INVOICE_KIND_NEW,
                        currency_code="USD",
                        payment_method_id="pm_missing",
                        lines=[pb.InvoiceLineInput(description="x", quantity=1)],
                    )
                )
            return rid, e.value.code()
        return rid, b.create_invoice(pm, request_id=rid, subscription_id=f"sub-{rid}")

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(order, jobs))

    by_request: dict[str, set[str]] = {}
    for rid, r in results:
        if rid == "order-bad:invoice":
            assert r == grpc.StatusCode.NOT_FOUND
            continue
        by_request.setdefault(rid, set()).add(r.invoice.invoice_number)
    assert all(len(numbers) == 1 for numbers in by_request.values())  # a retry returns the first invoice
    numbers = [next(iter(v)) for v in by_request.values()]
    assert len(numbers) == 20
    assert is_gapless(numbers)
    assert sorted(numbers) == [f"INV-2024-{n:06d}" for n in range(1, 21)]
    assert all(count == 1 for count in b.gateway.charges.values())
    assert len(b.gateway.charges) == 20


def test_racing_sweeps_issue_each_installment_once(counted, clock):
    b = counted
    clock.set(datetime(2024, 10, 1, 9, 0, tzinfo=UTC))
    b.profile("acct-3y", "US", "OR")
    pm = b.card("acct-3y")
    for n in range(6):
        b.create_invoice(
            pm,
            account="acct-3y",
            subscription_id=f"sub-{n}",
            amount="1310.00",
            term=common_pb2.TERM_THREE_YEAR,
            term_start_date=day(datetime(2024, 10, 1).date()),
        )
    as_of = datetime(2025, 10, 2, tzinfo=UTC)
    barrier = threading.Barrier(4)

    def run(_):
        barrier.wait()
        return b.sweep(as_of)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(4)))
    assert sum(r.issued for r in results) == 6
    assert b.sweep(as_of).issued == 0
    invoices = b.ListInvoices(pb.ListInvoicesRequest(account_id="acct-3y", page_size=100)).invoices
    per_installment = Counter((i.subscription_id, i.installment_sequence) for i in invoices)
    assert set(per_installment.values()) == {1}
    assert len(invoices) == 12
    assert is_gapless([i.invoice_number for i in invoices])
    assert sum(1 for k in b.gateway.charges if k.startswith("installment:")) == 6


def test_a_repeated_request_with_other_content_is_refused(counted):
    b = counted
    b.profile()
    pm = b.card()
    rid = uuid.uuid4().hex
    b.create_invoice(pm, request_id=rid, subscription_id="s1", amount="10.00")
    with pytest.raises(grpc.RpcError) as e:
        b.create_invoice(pm, request_id=rid, subscription_id="s1", amount="11.00")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(b.ListInvoices(pb.ListInvoicesRequest(account_id="acct-1")).invoices) == 1


def test_concurrent_payer_additions_stop_at_five(counted):
    b = counted
    b.profile()
    barrier = threading.Barrier(8)

    def add(n):
        barrier.wait()
        try:
            b.AddPayer(pb.AddPayerRequest(account_id="acct-1", email=f"p{n}@example.no"))
            return "ok"
        except grpc.RpcError as e:
            return e.code()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = Counter(pool.map(add, range(8)))
    assert outcomes == {"ok": 5, grpc.StatusCode.RESOURCE_EXHAUSTED: 3}
    assert len(b.ListPayers(pb.ListPayersRequest(account_id="acct-1")).payers) == 5
