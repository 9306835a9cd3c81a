"""The gRPC servicer of BillingService: decode the request, run the handler, encode the response."""

from __future__ import annotations

from datetime import UTC

from services.billing import codec, handlers
from services.billing.adapters import repository as repo
from services.billing.adapters.invoice_pdf import render_invoice_pdf
from services.billing.domain.access import Caller, sees_amounts
from services.billing.domain.gateway import PaymentGateway
from services.billing.domain.invoice import local_date
from services.billing.domain.model import Address
from shared.auth.principal import current
from shared.clock import Clock
from shared.db import Database
from shared.errors import InvalidInput
from tenure.billing.v1 import billing_pb2 as pb
from tenure.billing.v1 import billing_pb2_grpc


def _method(value: int, field: str = "type"):
    if value == 0:
        return None
    if value not in codec.METHOD_FROM_PB:
        raise InvalidInput("unknown payment method type", field=field)
    return codec.METHOD_FROM_PB[value]


def _enum(table: dict, value: int, field: str):
    if value == 0:
        return None
    if value not in table:
        raise InvalidInput(f"unknown {field} value {value}", field=field)
    return table[value]


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, db: Database, clock: Clock, gateway: PaymentGateway, policy: handlers.Policy) -> None:
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.policy = policy

    # --- encoding helpers ---

    def _invoice(self, session, row) -> pb.Invoice:
        lines = list(repo.lines(session, row.invoice_id))
        if not self._sees_amounts():
            return codec.invoice_status_only(row, lines)
        return codec.invoice(row, lines, list(repo.attachments(session, invoice_id=row.invoice_id)))

    def _installment(self, row) -> pb.Installment:
        return codec.installment(row) if self._sees_amounts() else codec.installment_status_only(row)

    def _idempotent(self, method: str, request, response_cls, fn):
        return self.db.run_idempotent(method, request, response_cls, fn)

    # --- who is calling (the permission table has already let them in) ---

    @staticmethod
    def _sees_amounts() -> bool:
        access = current()
        return access is None or sees_amounts(access.principal.is_person, access.roles)

    @staticmethod
    def _caller() -> Caller:
        access = current()
        if access is None:
            return Caller()
        p = access.principal
        return Caller(email=p.email) if p.is_person else Caller(actor=p.on_behalf_of or p.label)

    # --- profiles ---

    def UpsertBillingProfile(self, request, context):
        a = request.address
        cmd = handlers.ProfileInput(
            account_id=request.account_id,
            buyer_email=request.buyer_email,
            name=request.name,
            address=Address(a.country_code, a.region, a.city, a.postal_code, a.line1, a.line2),
            tax_id=request.tax_id,
            tax_exempt=request.tax_exempt,
            exemption_certificate=request.exemption_certificate,
            exemption_expiry_date=codec.from_pb_date(request.exemption_expiry_date, "exemption_expiry_date"),
            language=request.language,
        )
        caller = self._caller()

        def work(uow):
            return pb.UpsertBillingProfileResponse(
                profile=codec.profile(handlers.upsert_profile(uow, cmd, caller))
            )

        return self._idempotent("UpsertBillingProfile", request, pb.UpsertBillingProfileResponse, work)

    def GetBillingProfile(self, request, context):
        with self.db.read() as s:
            return pb.GetBillingProfileResponse(
                profile=codec.profile(repo.require_profile(s, request.account_id))
            )

    def MarkPrepayOnly(self, request, context):
        def work(uow):
            row = handlers.mark_prepay_only(uow, request.account_id, request.reason)
            return pb.MarkPrepayOnlyResponse(profile=codec.profile(row))

        return self._idempotent("MarkPrepayOnly", request, pb.MarkPrepayOnlyResponse, work)

    # --- payment methods ---

    def AddPaymentMethod(self, request, context):
        method = _method(request.type)
        caller = self._caller()

        def work(uow):
            row = handlers.add_payment_method(
                uow,
                self.gateway,
                request.account_id,
                method,
                request.card_number,
                request.paypal_email,
                caller,
            )
            return pb.AddPaymentMethodResponse(payment_method=codec.payment_method(row))

        return self._idempotent("AddPaymentMethod", request, pb.AddPaymentMethodResponse, work)

    def ListPaymentMethods(self, request, context):
        with self.db.read() as s:
            rows = repo.payment_methods(s, request.account_id)
            return pb.ListPaymentMethodsResponse(payment_methods=[codec.payment_method(r) for r in rows])

    def RemovePaymentMethod(self, request, context):
        def work(uow):
            row = handlers.remove_payment_method(uow, request.account_id, request.payment_method_id)
            return pb.RemovePaymentMethodResponse(payment_method=codec.payment_method(row))

        return self._idempotent("RemovePaymentMethod", request, pb.RemovePaymentMethodResponse, work)

    def CheckPaymentMethod(self, request, context):
        method = _method(request.type)
        channel = _enum(codec.CHANNEL_FROM_PB, request.channel, "channel")
        with self.db.read() as s:
            result = handlers.check_payment_method(
                s, request.account_id, request.payment_method_id, method, channel, request.quote
            )
        return pb.CheckPaymentMethodResponse(
            allowed=result.allowed,
            reason=f"ERROR_REASON_{result.reason}" if result.reason else "",
            message=result.message,
        )

    # --- payers ---

    def AddPayer(self, request, context):
        caller = self._caller()

        def work(uow):
            row = handlers.add_payer(
                uow, request.account_id, request.email, request.name, request.language, caller
            )
            return pb.AddPayerResponse(payer=codec.payer(row))

        return self._idempotent("AddPayer", request, pb.AddPayerResponse, work)

    def RemovePayer(self, request, context):
        caller = self._caller()

        def work(uow):
            return pb.RemovePayerResponse(
                payer=codec.payer(handlers.remove_payer(uow, request.account_id, request.email, caller))
            )

        return self._idempotent("RemovePayer", request, pb.RemovePayerResponse, work)

    def ListPayers(self, request, context):
        with self.db.read() as s:
            return pb.ListPayersResponse(payers=[codec.payer(p) for p in repo.payers(s, request.account_id)])

    # --- tax ---

    def PreviewTax(self, request, context):
        currency = request.currency_code.strip().upper()
        if not currency:
            raise InvalidInput("currency_code is required", field="currency_code")
        inputs = codec.line_inputs(request.lines, currency)
        today = local_date(self.clock.now(), "UTC")
        with self.db.read() as s:
            priced = handlers.preview_tax(
                s, request.account_id, currency, inputs, request.country_code, request.region, today
            )
        return pb.PreviewTaxResponse(
            subtotal=codec.money(priced.subtotal, currency),
            tax=codec.money(priced.tax, currency),
            total=codec.money(priced.total, currency),
            lines=[
                pb.InvoiceLine(
                    description=ln.description,
                    quantity=ln.quantity,
                    unit_price=codec.money(ln.unit_price, currency),
                    period_start_date=codec.pb_date(ln.period_start),
                    period_end_date=codec.pb_date(ln.period_end),
                    amount=codec.money(ln.amount, currency),
                    tax=codec.money(ln.tax, currency),
                    tax_rate=codec._rate(ln.tax_rate),
                    product_code=ln.product_code,
                )
                for ln in priced.lines
            ],
            tax_rate=codec._rate(priced.decision.rate),
            tax_name=priced.decision.name,
        )

    # --- invoices ---

    def CreateInvoice(self, request, context):
        if not request.request_id:
            raise InvalidInput(
                "request_id is required: it keeps a retried order from charging twice", field="request_id"
            )
        currency = request.currency_code.strip().upper()
        if not currency:
            raise InvalidInput("currency_code is required", field="currency_code")
        cmd = handlers.CreateInvoice(
            request_id=request.request_id,
            account_id=request.account_id,
            subscription_id=request.subscription_id,
            order_number=request.order_number,
            kind=_enum(codec.KIND_FROM_PB, request.kind, "kind"),
            currency=currency,
            lines=codec.line_inputs(request.lines, currency),
            payment_method_id=request.payment_method_id,
            plan=codec.PLAN_FROM_PB.get(request.installment_plan)
            or _enum({}, request.installment_plan, "installment_plan"),
            term=_enum(codec.TERM_FROM_PB, request.term, "term"),
            term_start_date=codec.from_pb_date(request.term_start_date, "term_start_date"),
            channel=_enum(codec.CHANNEL_FROM_PB, request.channel, "channel"),
            quote=request.quote,
            time_zone=request.time_zone or "UTC",
            buyer_email=request.buyer_email,
            buyer_name=request.buyer_name,
            country_code=request.country_code,
            region=request.region,
            language=request.language,
        )

        def work(uow):
            issued = handlers.create_invoice(uow, self.gateway, self.policy, cmd)
            return pb.CreateInvoiceResponse(
                invoice=self._invoice(uow.session, issued.invoice),
                payment=codec.payment(issued.payment),
                installments=[self._installment(i) for i in issued.installments],
            )

        return self._idempotent("CreateInvoice", request, pb.CreateInvoiceResponse, work)

    def GetInvoice(self, request, context):
        with self.db.read() as s:
            return pb.GetInvoiceResponse(invoice=self._invoice(s, repo.invoice(s, request.invoice_id)))

    def ListInvoices(self, request, context):
        if not request.account_id:
            raise InvalidInput("account_id is required", field="account_id")
        status = _enum(codec.STATUS_FROM_PB, request.status, "status")
        size, offset = repo.decode_page(request.page_size, request.page_token)
        with self.db.read() as s:
            rows, more = repo.list_invoices(
                s, request.account_id, status.value if status else "", request.subscription_id, size, offset
            )
            return pb.ListInvoicesResponse(
                invoices=[self._invoice(s, r) for r in rows],
                next_page_token=repo.encode_page_token(offset + size) if more else "",
            )

    def PayInvoice(self, request, context):
        def work(uow):
            row, payment = handlers.pay_invoice(
                uow, self.gateway, request.request_id, request.invoice_id, request.payment_method_id
            )
            return pb.PayInvoiceResponse(
                invoice=self._invoice(uow.session, row), payment=codec.payment(payment)
            )

        if not request.request_id:
            raise InvalidInput(
                "request_id is required: it keeps a retried payment from charging twice", field="request_id"
            )
        return self._idempotent("PayInvoice", request, pb.PayInvoiceResponse, work)

    def VoidInvoice(self, request, context):
        def work(uow):
            row = handlers.void_invoice(uow, request.invoice_id)
            return pb.VoidInvoiceResponse(invoice=self._invoice(uow.session, row))

        return self._idempotent("VoidInvoice", request, pb.VoidInvoiceResponse, work)

    def UpdateInvoiceDetails(self, request, context):
        target = request.WhichOneof("target")
        cmd = handlers.DetailsUpdate(
            invoice_id=request.invoice_id if target == "invoice_id" else "",
            subscription_id=request.subscription_id if target == "subscription_id" else "",
            po_number=request.po_number if request.HasField("po_number") else None,
            notes=request.notes if request.HasField("notes") else None,
            attachments=[(a.filename, a.content_type, a.content) for a in request.attachments],
            remove_attachment_ids=list(request.remove_attachment_ids),
        )

        def work(uow):
            inv, po, notes, atts = handlers.update_details(uow, self.policy, cmd)
            details = pb.InvoiceDetails(
                po_number=po, notes=notes, attachments=[codec.attachment(a) for a in atts]
            )
            return pb.UpdateInvoiceDetailsResponse(
                invoice=self._invoice(uow.session, inv) if inv is not None else None, details=details
            )

        return self._idempotent("UpdateInvoiceDetails", request, pb.UpdateInvoiceDetailsResponse, work)

    def GetInvoicePdf(self, request, context):
        with self.db.read() as s:
            doc = handlers.invoice_document(s, request.invoice_id, self.policy)
        return pb.GetInvoicePdfResponse(pdf=render_invoice_pdf(doc), filename=f"{doc.invoice_number}.pdf")

    # --- installments ---

    def ListInstallments(self, request, context):
        if not request.subscription_id:
            raise InvalidInput("subscription_id is required", field="subscription_id")
        with self.db.read() as s:
            rows = repo.installments(s, request.subscription_id)
            return pb.ListInstallmentsResponse(installments=[self._installment(r) for r in rows])

    def CancelInstallments(self, request, context):
        def work(uow):
            return pb.CancelInstallmentsResponse(
                cancelled=handlers.cancel_installments(uow, request.subscription_id)
            )

        return self._idempotent("CancelInstallments", request, pb.CancelInstallmentsResponse, work)

    # --- credit notes and balance ---

    def IssueCreditNote(self, request, context):
        if not request.request_id:
            raise InvalidInput(
                "request_id is required: it keeps a retried refund from paying twice", field="request_id"
            )

        def work(uow):
            amount = None
            if request.HasField("amount"):
                inv = repo.invoice(uow.session, request.invoice_id)
                amount = codec.money_in(request.amount, inv.currency, "amount")
            note = handlers.issue_credit_note(
                uow, self.gateway, request.request_id, request.invoice_id, amount, request.reason
            )
            return pb.IssueCreditNoteResponse(credit_note=codec.credit_note(note))

        return self._idempotent("IssueCreditNote", request, pb.IssueCreditNoteResponse, work)

    def ListCreditNotes(self, request, context):
        if not request.account_id:
            raise InvalidInput("account_id is required", field="account_id")
        size, offset = repo.decode_page(request.page_size, request.page_token)
        with self.db.read() as s:
            rows, more = repo.list_credit_notes(s, request.account_id, size, offset)
            return pb.ListCreditNotesResponse(
                credit_notes=[codec.credit_note(r) for r in rows],
                next_page_token=repo.encode_page_token(offset + size) if more else "",
            )

    def GetBalance(self, request, context):
        with self.db.read() as s:
            wanted, all_ = handlers.get_balance(
                s, request.account_id, request.currency_code, self.clock.now()
            )
        return pb.GetBalanceResponse(balance=codec.balance(wanted), balances=[codec.balance(b) for b in all_])

    # --- sweep ---

    def RunBillingSweep(self, request, context):
        as_of = (
            request.as_of_time.ToDatetime(tzinfo=UTC) if request.HasField("as_of_time") else self.clock.now()
        )
        r = handlers.sweep(self.db, self.gateway, self.policy, as_of)
        return pb.RunBillingSweepResponse(
            issued=r.issued, overdue=r.overdue, paid=r.paid, payment_failed=r.payment_failed
        )
