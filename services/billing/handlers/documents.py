"""Invoice documents: the PO number, notes and PO documents the buyer adds; the invoice and credit-note
PDFs in the buyer's language; the seller they name."""

from __future__ import annotations

import json
from dataclasses import dataclass

from services.billing.adapters.invoice_pdf import render_credit_note_pdf, render_invoice_pdf
from services.billing.adapters.tables import AttachmentRow, PendingDetailsRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain.commands import DetailsUpdate
from services.billing.domain.document import (
    CreditNoteDocument,
    DocumentLine,
    InvoiceDocument,
    Seller,
    document_language,
    method_shown,
    payment_method_label,
)
from services.billing.domain.invoice import NewAttachment, check_attachments, check_details, local_date
from services.billing.domain.model import Address, MethodType
from services.billing.domain.tax import default_table
from services.billing.domain.vat import vat_id_valid
from services.billing.handlers.common import InvoiceView, Policy, invoice_view, state
from shared.db import Database, new_id
from shared.errors import InvalidInput, NotFound
from shared.settings import BillingSettings


@dataclass(frozen=True)
class Details:
    """The details after an edit: of the invoice (`invoice` set) or of the subscription's next one."""

    invoice: InvoiceView | None
    po_number: str
    notes: str
    attachments: list[AttachmentRow]


def update_details(uow: BillingUnitOfWork, policy: Policy, cmd: DetailsUpdate) -> Details:
    """Edit the PO number, notes and PO documents of an open invoice or of a subscription's next invoice."""
    check_details(cmd.po_number, cmd.notes)
    if not cmd.invoice_id and not cmd.subscription_id:
        raise InvalidInput("give an invoice_id or a subscription_id", field="target")
    now = uow.now
    inv = None
    if cmd.invoice_id:
        inv = uow.invoices.lock(cmd.invoice_id)
        state(inv).require_open()
        existing = list(uow.attachments.of_invoice(inv.invoice_id))
    else:
        existing = list(uow.attachments.pending(cmd.subscription_id))
    by_id = {a.attachment_id: a for a in existing}
    for aid in cmd.remove_attachment_ids:
        if aid not in by_id:
            raise NotFound(f"no attachment {aid!r} here", reason="NOT_FOUND")
    new = [NewAttachment(f, ct, len(content)) for f, ct, content in cmd.attachments]
    check_attachments(len(existing), len(set(cmd.remove_attachment_ids)), new, policy.attachment_max_bytes)
    for aid in set(cmd.remove_attachment_ids):
        uow.attachments.remove(by_id.pop(aid))
    kept = list(by_id.values())
    for f, ct, content in cmd.attachments:
        a = AttachmentRow(
            attachment_id=new_id("att"),
            invoice_id=inv.invoice_id if inv else "",
            subscription_id=inv.subscription_id if inv else cmd.subscription_id,
            filename=f.strip(),
            content_type=ct,
            size_bytes=len(content),
            content=content,
            create_time=now,
        )
        uow.attachments.put(a)
        kept.append(a)
    if inv is not None:
        if cmd.po_number is not None:
            inv.po_number = cmd.po_number.strip()
        if cmd.notes is not None:
            inv.notes = cmd.notes
        uow.invoices.save(inv)
        return Details(invoice_view(uow, inv), inv.po_number, inv.notes, kept)
    pending = uow.pending_details.get(cmd.subscription_id)
    if pending is None:
        pending = PendingDetailsRow(subscription_id=cmd.subscription_id, update_time=now)
    if cmd.po_number is not None:
        pending.po_number = cmd.po_number.strip()
    if cmd.notes is not None:
        pending.notes = cmd.notes
    pending.update_time = now
    uow.pending_details.save(pending)
    return Details(None, pending.po_number, pending.notes, kept)


def invoice_document(uow: BillingUnitOfWork, invoice_id: str, policy: Policy) -> InvoiceDocument:
    """What the invoice's document shows (`domain.document` says how it reads), in the buyer's language."""
    row = uow.invoices.get(invoice_id)
    method = uow.payment_methods.get(row.payment_method_id) if row.payment_method_id else None
    label = (
        payment_method_label(method.type, method.brand, method.last4, method.paypal_email) if method else ""
    )
    shown = method_shown(method.type, method.brand, method.last4, method.paypal_email) if method else ""
    count = 0
    if row.installment_sequence:
        ins = uow.installments.of_invoice(row.invoice_id)
        count = ins.count if ins else 0
    profile = uow.profiles.get(row.account_id)
    return InvoiceDocument(
        invoice_number=row.invoice_number,
        issue_date=row.issue_date,
        due_date=row.due_date,
        currency=row.currency,
        buyer_name=row.buyer_name,
        buyer_email=row.buyer_email,
        buyer_address=Address(row.country_code, row.region, row.city, row.postal_code, row.line1, row.line2),
        lines=tuple(
            DocumentLine(
                f"{ln.description}\n{ln.explanation}" if ln.explanation else ln.description,
                ln.quantity,
                ln.unit_price,
                ln.amount,
                ln.tax,
                ln.tax_rate,
                ln.period_start,
                ln.period_end,
                str(getattr(ln, "kind", "") or ""),
            )
            for ln in uow.invoices.lines(row.invoice_id)
        ),
        subtotal=row.subtotal,
        tax=row.tax,
        total=row.total,
        status=row.status,
        amount_paid=row.amount_paid,
        amount_credited=row.amount_credited,
        account_credit_applied=row.credit_applied,
        due_credited=row.amount_due_credited,
        payment_method=MethodType(row.payment_method_type) if row.payment_method_type else None,
        payment_method_label=label,
        payment_method_shown=shown,
        order_number=row.order_number,
        po_number=row.po_number,
        notes=row.notes,
        buyer_tax_id=row.tax_id,
        tax_exempt=row.tax_exempt,
        tax_name=row.tax_name or "Tax",
        payers=tuple(p["email"] for p in json.loads(row.payers_json)),
        installment_sequence=row.installment_sequence,
        installment_count=count,
        language=document_language(profile.language if profile else "en"),
        seller=policy.seller,
    )


def invoice_pdf(db: Database, invoice_id: str, policy: Policy) -> tuple[bytes, str]:
    """The invoice as a PDF, and its file name."""
    with db.reading() as uow:
        doc = invoice_document(uow, invoice_id, policy)
    return render_invoice_pdf(doc), f"{doc.invoice_number}.pdf"


def credit_note_document(
    uow: BillingUnitOfWork, account_id: str, credit_note_id: str, policy: Policy
) -> CreditNoteDocument:
    """What a credit note of the account shows: the amount, its VAT at the invoice's rate, the settlement."""
    note = next(
        (n for n in uow.credit_notes.of_account(account_id) if n.credit_note_id == credit_note_id), None
    )
    if note is None:
        raise NotFound(f"no credit note {credit_note_id!r}", reason="NOT_FOUND")
    inv = uow.invoices.get(note.invoice_id)
    profile = uow.profiles.get(note.account_id)
    return CreditNoteDocument(
        credit_note_number=note.credit_note_number,
        issue_date=local_date(note.issue_time, inv.time_zone or "UTC"),
        invoice_number=note.invoice_number or inv.invoice_number,
        currency=note.currency,
        buyer_name=inv.buyer_name,
        buyer_email=inv.buyer_email,
        buyer_address=Address(inv.country_code, inv.region, inv.city, inv.postal_code, inv.line1, inv.line2),
        amount=note.amount,
        tax_rate=inv.tax_rate,
        tax_name=inv.tax_name or "Tax",
        tax_exempt=inv.tax_exempt,
        settlement=note.settlement,
        reason=note.reason,
        buyer_tax_id=inv.tax_id,
        language=document_language(profile.language if profile else "en"),
        invoice_issue_date=inv.issue_date,
        seller=policy.seller,
    )


def credit_note_pdf(db: Database, account_id: str, credit_note_id: str, policy: Policy) -> tuple[bytes, str]:
    """The credit note as a PDF, and its file name."""
    with db.reading() as uow:
        doc = credit_note_document(uow, account_id, credit_note_id, policy)
    return render_credit_note_pdf(doc), f"{doc.credit_note_number}.pdf"


def seller_from(settings: BillingSettings) -> Seller:
    """The seller of the documents from the settings. In production (`environment = production`) a
    missing detail, a development example or a malformed VAT number refuses the start."""
    seller = Seller(
        name=settings.seller_name.strip(),
        address_lines=tuple(p.strip() for p in settings.seller_address.split(",") if p.strip()),
        country_code=settings.seller_country_code.strip().upper(),
        tax_id=settings.seller_tax_id.strip(),
        register=settings.seller_register.strip(),
        email=settings.seller_email.strip(),
        bank_name=settings.seller_bank_name.strip(),
        iban=settings.seller_iban.strip(),
        bic=settings.seller_bic.strip(),
    )
    if settings.environment.strip().lower() == "production":
        problems = [f"seller {k} is missing or a development example" for k in seller.missing()]
        if seller.tax_id and seller.country_code and not vat_id_valid(seller.country_code, seller.tax_id):
            problems.append(
                f"seller tax_id {seller.tax_id!r} is not a valid VAT number of {seller.country_code}"
            )
        home = default_table().seller_country
        if home and seller.country_code != home:
            problems.append(f"seller country {seller.country_code!r} is not the tax table's {home!r}")
        if problems:
            raise ValueError("billing refuses to start in production: " + "; ".join(problems))
    return seller
