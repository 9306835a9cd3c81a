"""Who may call each BillingService RPC (rules §7), checked before the servicer runs.

The buyer does everything on billing; payers see and pay invoices; admins who are not the buyer see
invoice status and dates only (the servicer leaves the amounts out); the internal RPCs are for the
Tenure services; operators read everything and run the sweep.
"""

from __future__ import annotations

from shared.auth.policy import (
    ADMINS,
    BUYER,
    OPERATOR,
    PAYER,
    PERSON,
    SERVICE,
    ChoiceTarget,
    Directory,
    FieldTarget,
    LookupTarget,
    rule,
)
from shared.grpc.auth import Permissions

SERVICE_NAME = "tenure.billing.v1.BillingService"
STAFF = (OPERATOR, SERVICE)

TABLE = {
    # the billing profile: the buyer; a person's first profile opens the account
    "UpsertBillingProfile": rule(BUYER, OPERATOR, target="account", opens_account=True),
    "GetBillingProfile": rule(BUYER, PAYER, STAFF, target="account"),
    "MarkPrepayOnly": rule(SERVICE),
    # payment methods: the buyer manages them; payers may add one to pay with and see them
    "AddPaymentMethod": rule(BUYER, PAYER, target="account", opens_account=True),
    "ListPaymentMethods": rule(BUYER, PAYER, STAFF, target="account"),
    "RemovePaymentMethod": rule(BUYER, target="account"),
    "CheckPaymentMethod": rule(BUYER, STAFF, target="account", opens_account=True),
    # payers: named by the buyer
    "AddPayer": rule(BUYER, target="account"),
    "RemovePayer": rule(BUYER, target="account"),
    "ListPayers": rule(BUYER, PAYER, STAFF, target="account"),
    # tax preview before an order (an account may not exist yet)
    "PreviewTax": rule(BUYER, PERSON, STAFF, target="account", opens_account=True),
    # invoices
    "CreateInvoice": rule(SERVICE),
    "GetInvoice": rule(BUYER, PAYER, *ADMINS, STAFF, target="invoice"),
    "ListInvoices": rule(BUYER, PAYER, *ADMINS, STAFF, target="account"),
    "PayInvoice": rule(BUYER, PAYER, target="invoice"),
    "VoidInvoice": rule(SERVICE),
    "UpdateInvoiceDetails": rule(BUYER, target="details"),
    "GetInvoicePdf": rule(BUYER, PAYER, STAFF, target="invoice"),
    # installments
    "ListInstallments": rule(BUYER, PAYER, *ADMINS, STAFF, target="subscription"),
    "CancelInstallments": rule(SERVICE),
    # credit notes and balance
    "IssueCreditNote": rule(SERVICE),
    "ListCreditNotes": rule(BUYER, PAYER, STAFF, target="account"),
    "GetBalance": rule(BUYER, PAYER, STAFF, target="account"),
    "GetCreditNotePdf": rule(BUYER, PAYER, STAFF, target="account"),
    # operations
    "RunBillingSweep": rule(OPERATOR, SERVICE),
}


def permissions(db, directory: Directory) -> Permissions:
    def account_of_invoice(invoice_id: str) -> str | None:
        with db.reading() as uow:
            return uow.members.account_of_invoice(invoice_id)

    def account_of_subscription(subscription_id: str) -> str | None:
        with db.reading() as uow:
            return uow.members.account_of_subscription(subscription_id)

    invoice = LookupTarget("invoice_id", "invoice", "INVOICE_NOT_FOUND", account_of_invoice)
    subscription = LookupTarget("subscription_id", "subscription", "NOT_FOUND", account_of_subscription)

    def details_target(request):
        """UpdateInvoiceDetails names an invoice, or a subscription whose next invoice it prepares."""
        return (subscription if request.WhichOneof("target") == "subscription_id" else invoice), request

    return Permissions(
        SERVICE_NAME,
        TABLE,
        {
            "account": FieldTarget("account_id", "billing account", "BILLING_PROFILE_NOT_FOUND"),
            "invoice": invoice,
            "subscription": subscription,
            "details": ChoiceTarget(details_target),
        },
        directory,
    )
