"""Operators and customers find an invoice by the number printed on it, and operators list invoices
across accounts (issue: lookups for operators)."""

from __future__ import annotations

import grpc
import pytest

from tenure.billing.v1 import billing_pb2 as pb
from tests.auth import operator, person
from tests.service.billing.helpers import reason


def test_an_invoice_is_found_by_its_printed_number_by_whoever_may_see_it(billing):
    billing.profile("acct-1", "NO")
    billing.profile("acct-2", "NO")
    first = billing.create_invoice(billing.card("acct-1"), account="acct-1").invoice
    other = billing.create_invoice(billing.card("acct-2"), account="acct-2").invoice
    assert first.invoice_number.startswith("INV-") and first.invoice_number != first.invoice_id

    by_number = billing.GetInvoice(pb.GetInvoiceRequest(invoice_id=first.invoice_number), metadata=operator())
    assert (by_number.invoice.invoice_id, by_number.invoice.account_id) == (first.invoice_id, "acct-1")
    mine = billing.GetInvoice(
        pb.GetInvoiceRequest(invoice_id=first.invoice_number), metadata=person("buyer@acct-1.example")
    )
    assert mine.invoice.invoice_id == first.invoice_id
    pdf = billing.GetInvoicePdf(
        pb.GetInvoicePdfRequest(invoice_id=first.invoice_number), metadata=person("buyer@acct-1.example")
    )
    assert pdf.pdf.startswith(b"%PDF") and first.invoice_number in pdf.filename

    # a stranger learns nothing from a number either: the same answer as an unknown one
    for number in (other.invoice_number, "INV-1999-000001"):
        with pytest.raises(grpc.RpcError) as e:
            billing.GetInvoice(
                pb.GetInvoiceRequest(invoice_id=number), metadata=person("buyer@acct-1.example")
            )
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, number
    with pytest.raises(grpc.RpcError) as e:
        billing.GetInvoice(pb.GetInvoiceRequest(invoice_id="INV-1999-000001"), metadata=operator())
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(e.value) == "ERROR_REASON_INVOICE_NOT_FOUND"


def test_operators_list_invoices_across_accounts_and_people_must_name_theirs(billing):
    billing.profile("acct-1", "NO")
    billing.profile("acct-2", "NO")
    a = billing.create_invoice(billing.card("acct-1"), account="acct-1").invoice
    b = billing.create_invoice(billing.card("acct-2", number="4000000000000002"), account="acct-2").invoice

    every = billing.ListInvoices(pb.ListInvoicesRequest(), metadata=operator()).invoices
    assert {i.invoice_id for i in every} == {a.invoice_id, b.invoice_id}
    open_ones = billing.ListInvoices(
        pb.ListInvoicesRequest(status=pb.INVOICE_STATUS_OPEN), metadata=operator()
    ).invoices
    assert [i.invoice_id for i in open_ones] == [b.invoice_id]
    page = billing.ListInvoices(pb.ListInvoicesRequest(page_size=1), metadata=operator())
    assert len(page.invoices) == 1 and page.next_page_token

    with pytest.raises(grpc.RpcError) as e:
        billing.ListInvoices(pb.ListInvoicesRequest(), metadata=person("buyer@acct-1.example"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
