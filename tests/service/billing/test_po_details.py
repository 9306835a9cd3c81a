"""PO number, notes and documents saved for the renewal go on the renewal invoice only (rules §5), on
SQLite and PostgreSQL."""

from __future__ import annotations

from tenure.billing.v1 import billing_pb2 as pb


def test_po_details_saved_before_the_renewal_skip_added_seats_and_alignments(billing):
    billing.profile()
    pm = billing.card()
    billing.create_invoice(pm, subscription_id="sub-po")
    billing.UpdateInvoiceDetails(
        pb.UpdateInvoiceDetailsRequest(
            request_id="d-1",
            subscription_id="sub-po",
            po_number="PO-4711",
            notes="Attn. accounts payable",
            attachments=[
                pb.Attachment(filename="po-4711.pdf", content_type="application/pdf", content=b"%PDF-1.4")
            ],
        )
    )
    seats = billing.create_invoice(
        pm, subscription_id="sub-po", kind=pb.INVOICE_KIND_ADD_SEATS, amount="61.97"
    )
    align = billing.create_invoice(pm, subscription_id="sub-po", kind=pb.INVOICE_KIND_ALIGN, amount="12.88")
    for other in (seats.invoice, align.invoice):
        assert (other.po_number, other.notes, list(other.attachments)) == ("", "", [])
    renewal = billing.create_invoice(
        pm, subscription_id="sub-po", kind=pb.INVOICE_KIND_RENEWAL, amount="420.00"
    )
    inv = renewal.invoice
    assert (inv.po_number, inv.notes) == ("PO-4711", "Attn. accounts payable")
    assert [a.filename for a in inv.attachments] == ["po-4711.pdf"]
    after = billing.create_invoice(pm, subscription_id="sub-po", kind=pb.INVOICE_KIND_ADD_SEATS).invoice
    assert (after.po_number, list(after.attachments)) == ("", [])
