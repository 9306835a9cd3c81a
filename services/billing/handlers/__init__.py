"""Billing use cases, one module per job: `accounts` (profiles, payment methods, payers), `invoices`
(tax previews, an order's invoice, issuing, reading, voiding), `payments` (charging, paying, credit notes,
balance), `documents` (PO details and the PDF) and `sweep` (installments and overdue marks).

Each command runs inside the caller's `BillingUnitOfWork` and speaks only to its repositories; each read
opens `db.reading()` itself. Decisions are the pure functions of `services.billing.domain`.
"""
