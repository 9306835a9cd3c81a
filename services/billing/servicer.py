"""The gRPC servicer of BillingService: decode the request, run one handler, encode the response.

The permission table (`permissions.py`) has let the caller in before a method runs; what the caller may
see of an invoice (amounts or status only) is read from the verified principal here.
"""

from __future__ import annotations

from datetime import UTC

from services.billing import codec
from services.billing.domain.access import Caller, sees_amounts
from services.billing.domain.gateway import PaymentGateway
from services.billing.handlers import accounts, credits, documents, invoices, payments, sweep
from services.billing.handlers.common import Policy
from shared.auth.principal import current
from shared.clock import Clock
from shared.db import Database
from tenure.billing.v1 import billing_pb2 as pb
from tenure.billing.v1 import billing_pb2_grpc


def _sees_amounts() -> bool:
    access = current()
    return access is None or sees_amounts(access.principal.is_person, access.roles)


def _caller() -> Caller:
    access = current()
    if access is None:
        return Caller()
    p = access.principal
    return Caller(email=p.email) if p.is_person else Caller(actor=p.on_behalf_of or p.label)


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, db: Database, clock: Clock, gateway: PaymentGateway, policy: Policy) -> None:
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.policy = policy

    def _once(self, method: str, request, response_cls, fn):
        return self.db.run_idempotent(method, request, response_cls, fn)

    # --- profiles ---

    def UpsertBillingProfile(self, request, context):
        cmd, caller = codec.profile_input(request), _caller()

        def work(uow):
            row = accounts.upsert_profile(uow, cmd, caller)
            return pb.UpsertBillingProfileResponse(profile=codec.profile(row))

        return self._once("UpsertBillingProfile", request, pb.UpsertBillingProfileResponse, work)

    def GetBillingProfile(self, request, context):
        row = accounts.get_profile(self.db, request.account_id)
        return pb.GetBillingProfileResponse(profile=codec.profile(row))

    def MarkPrepayOnly(self, request, context):
        def work(uow):
            row = accounts.mark_prepay_only(uow, request.account_id, request.reason)
            return pb.MarkPrepayOnlyResponse(profile=codec.profile(row))

        return self._once("MarkPrepayOnly", request, pb.MarkPrepayOnlyResponse, work)

    # --- payment methods ---

    def AddPaymentMethod(self, request, context):
        method, caller = codec.method_type(request.type), _caller()

        def work(uow):
            row = accounts.add_payment_method(
                uow,
                self.gateway,
                request.account_id,
                method,
                request.card_number,
                request.paypal_email,
                caller,
            )
            return pb.AddPaymentMethodResponse(payment_method=codec.payment_method(row))

        return self._once("AddPaymentMethod", request, pb.AddPaymentMethodResponse, work)

    def ListPaymentMethods(self, request, context):
        rows = accounts.list_payment_methods(self.db, request.account_id)
        return pb.ListPaymentMethodsResponse(payment_methods=[codec.payment_method(r) for r in rows])

    def RemovePaymentMethod(self, request, context):
        def work(uow):
            row = accounts.remove_payment_method(uow, request.account_id, request.payment_method_id)
            return pb.RemovePaymentMethodResponse(payment_method=codec.payment_method(row))

        return self._once("RemovePaymentMethod", request, pb.RemovePaymentMethodResponse, work)

    def CheckPaymentMethod(self, request, context):
        method = codec.method_type(request.type)
        channel = codec.enum_in(codec.CHANNEL_FROM_PB, request.channel, "channel")
        result = accounts.check_payment_method(
            self.db, request.account_id, request.payment_method_id, method, channel, request.quote
        )
        return pb.CheckPaymentMethodResponse(
            allowed=result.allowed,
            reason=f"ERROR_REASON_{result.reason}" if result.reason else "",
            message=result.message,
        )

    # --- payers ---

    def AddPayer(self, request, context):
        caller = _caller()

        def work(uow):
            row = accounts.add_payer(
                uow, request.account_id, request.email, request.name, request.language, caller
            )
            return pb.AddPayerResponse(payer=codec.payer(row))

        return self._once("AddPayer", request, pb.AddPayerResponse, work)

    def RemovePayer(self, request, context):
        caller = _caller()

        def work(uow):
            row = accounts.remove_payer(uow, request.account_id, request.email, caller)
            return pb.RemovePayerResponse(payer=codec.payer(row))

        return self._once("RemovePayer", request, pb.RemovePayerResponse, work)

    def ListPayers(self, request, context):
        rows = accounts.list_payers(self.db, request.account_id)
        return pb.ListPayersResponse(payers=[codec.payer(p) for p in rows])

    # --- tax ---

    def PreviewTax(self, request, context):
        currency = codec.currency_code(request.currency_code)
        lines = codec.line_inputs(request.lines, currency)
        priced = invoices.preview_tax(
            self.db, request.account_id, currency, lines, request.country_code, request.region
        )
        return codec.preview_tax(priced, currency)

    # --- invoices ---

    def CreateInvoice(self, request, context):
        cmd = codec.create_invoice(request)

        def work(uow):
            issued = invoices.create_invoice(uow, self.gateway, self.policy, cmd)
            amounts = _sees_amounts()
            return pb.CreateInvoiceResponse(
                invoice=codec.invoice_view(issued.invoice, amounts),
                payment=codec.payment(issued.payment),
                installments=[codec.installment_for(i, amounts) for i in issued.installments],
            )

        return self._once("CreateInvoice", request, pb.CreateInvoiceResponse, work)

    def GetInvoice(self, request, context):
        view = invoices.get_invoice(self.db, request.invoice_id)
        return pb.GetInvoiceResponse(invoice=codec.invoice_view(view, _sees_amounts()))

    def ListInvoices(self, request, context):
        # People always name an account (the permission check refuses them otherwise); an operator or a
        # service may leave it empty to look across accounts, e.g. every overdue invoice.
        status = codec.enum_in(codec.STATUS_FROM_PB, request.status, "status")
        page = invoices.list_invoices(
            self.db,
            request.account_id,
            status,
            request.subscription_id,
            request.page_size,
            request.page_token,
        )
        amounts = _sees_amounts()
        return pb.ListInvoicesResponse(
            invoices=[codec.invoice_view(v, amounts) for v in page.invoices],
            next_page_token=page.next_page_token,
        )

    def PayInvoice(self, request, context):
        codec.required_request_id(request, "a retried payment from charging twice")

        def work(uow):
            view, payment = payments.pay_invoice(
                uow, self.gateway, request.request_id, request.invoice_id, request.payment_method_id
            )
            return pb.PayInvoiceResponse(
                invoice=codec.invoice_view(view, _sees_amounts()), payment=codec.payment(payment)
            )

        return self._once("PayInvoice", request, pb.PayInvoiceResponse, work)

    def VoidInvoice(self, request, context):
        def work(uow):
            view = invoices.void_invoice(uow, request.invoice_id)
            return pb.VoidInvoiceResponse(invoice=codec.invoice_view(view, _sees_amounts()))

        return self._once("VoidInvoice", request, pb.VoidInvoiceResponse, work)

    def UpdateInvoiceDetails(self, request, context):
        cmd = codec.details_update(request)

        def work(uow):
            d = documents.update_details(uow, self.policy, cmd)
            details = pb.InvoiceDetails(
                po_number=d.po_number, notes=d.notes, attachments=[codec.attachment(a) for a in d.attachments]
            )
            invoice = codec.invoice_view(d.invoice, _sees_amounts()) if d.invoice is not None else None
            return pb.UpdateInvoiceDetailsResponse(invoice=invoice, details=details)

        return self._once("UpdateInvoiceDetails", request, pb.UpdateInvoiceDetailsResponse, work)

    def GetInvoicePdf(self, request, context):
        pdf, filename = documents.invoice_pdf(self.db, request.invoice_id, self.policy)
        return pb.GetInvoicePdfResponse(pdf=pdf, filename=filename)

    def GetCreditNotePdf(self, request, context):
        pdf, filename = documents.credit_note_pdf(
            self.db, request.account_id, request.credit_note_id, self.policy
        )
        return pb.GetCreditNotePdfResponse(pdf=pdf, filename=filename)

    # --- installments ---

    def ListInstallments(self, request, context):
        rows = sweep.list_installments(self.db, request.subscription_id)
        amounts = _sees_amounts()
        return pb.ListInstallmentsResponse(installments=[codec.installment_for(r, amounts) for r in rows])

    def CancelInstallments(self, request, context):
        def work(uow):
            return pb.CancelInstallmentsResponse(
                cancelled=sweep.cancel_installments(uow, request.subscription_id)
            )

        return self._once("CancelInstallments", request, pb.CancelInstallmentsResponse, work)

    # --- credit notes and balance ---

    def IssueCreditNote(self, request, context):
        codec.required_request_id(request, "a retried refund from paying twice")
        amount = codec.amount_input(request.amount) if request.HasField("amount") else None
        settlement = codec.settlement_in(request.settlement)

        def work(uow):
            note = credits.issue_credit_note(
                uow, self.gateway, request.request_id, request.invoice_id, amount, request.reason, settlement
            )
            return pb.IssueCreditNoteResponse(credit_note=codec.credit_note(note))

        return self._once("IssueCreditNote", request, pb.IssueCreditNoteResponse, work)

    def ListCreditNotes(self, request, context):
        account_id = codec.required(request.account_id, "account_id")
        page = credits.list_credit_notes(self.db, account_id, request.page_size, request.page_token)
        return pb.ListCreditNotesResponse(
            credit_notes=[codec.credit_note(r) for r in page.credit_notes],
            next_page_token=page.next_page_token,
        )

    def GetBalance(self, request, context):
        wanted, all_ = credits.get_balance(self.db, request.account_id, request.currency_code)
        return pb.GetBalanceResponse(balance=codec.balance(wanted), balances=[codec.balance(b) for b in all_])

    # --- sweep ---

    def RunBillingSweep(self, request, context):
        as_of = (
            request.as_of_time.ToDatetime(tzinfo=UTC) if request.HasField("as_of_time") else self.clock.now()
        )
        r = sweep.sweep(self.db, self.gateway, self.policy, as_of)
        return pb.RunBillingSweepResponse(
            issued=r.issued,
            overdue=r.overdue,
            paid=r.paid,
            payment_failed=r.payment_failed,
            next_due_time=codec.ts(r.next_due),
            retried=r.retried,
            retries_paid=r.retries_paid,
        )
