"""Helpers of the billing service tests.

A call goes as the caller its RPC is for, unless it names its own (`metadata=`): the internal RPCs as
a Tenure service, the sweep as the operator, everything else as the buyer of the account the request
is about (`Billing.buyer(account)`: buyer@<account>.example unless a test names another).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import grpc
from google.protobuf import timestamp_pb2
from google.type import date_pb2
from sqlalchemy import select

from services.billing.adapters.tables import InstallmentRow, InvoiceRow
from shared.money import to_proto
from tenure.billing.v1 import billing_pb2 as pb
from tenure.billing.v1 import billing_pb2_grpc
from tenure.common.v1 import common_pb2
from tests.auth import operator, person, service

#: RPCs only the Tenure services call.
INTERNAL = frozenset(
    {"CreateInvoice", "IssueCreditNote", "VoidInvoice", "CancelInstallments", "MarkPrepayOnly"}
)


class Billing:
    """A started billing service and helpers to call it."""

    def __init__(self, app) -> None:
        self.app = app
        self.channel = grpc.insecure_channel(app.addr)
        self.stub = billing_pb2_grpc.BillingServiceStub(self.channel)
        self.buyers: dict[str, str] = {}

    def buyer(self, account: str) -> str:
        return self.buyers.get(account, f"buyer@{account}.example")

    def __getattr__(self, name):
        method = getattr(self.stub, name)

        def call(request, **kw):
            kw.setdefault("timeout", 20)
            if "metadata" not in kw:
                kw["metadata"] = self._caller_of(name, request)
            return method(request, **kw)

        return call

    def _caller_of(self, name: str, request):
        if name in INTERNAL:
            return service("subscription")
        if name == "RunBillingSweep":
            return operator()
        return person(self.buyer(self._account_of(request)))

    def _account_of(self, request) -> str:
        account = getattr(request, "account_id", "")
        if account:
            return account
        with self.app.db.read() as s:
            if getattr(request, "invoice_id", ""):
                found = s.scalar(
                    select(InvoiceRow.account_id).where(InvoiceRow.invoice_id == request.invoice_id)
                )
                return found or ""
            if getattr(request, "subscription_id", ""):
                sid = request.subscription_id
                return (
                    s.scalar(select(InvoiceRow.account_id).where(InvoiceRow.subscription_id == sid).limit(1))
                    or s.scalar(
                        select(InstallmentRow.account_id)
                        .where(InstallmentRow.subscription_id == sid)
                        .limit(1)
                    )
                    or ""
                )
        return ""

    def profile(self, account="acct-1", country="NO", region="", **kw):
        """The buyer's billing profile (`email=` names the buyer: the first profile opens the account)."""
        if "email" in kw:
            self.buyers.setdefault(account, kw["email"].lower())
        call_kw = {"metadata": kw.pop("metadata")} if "metadata" in kw else {}
        return self.UpsertBillingProfile(
            pb.UpsertBillingProfileRequest(
                account_id=account,
                buyer_email=kw.pop("email", self.buyer(account)),
                name=kw.pop("name", "Fjordbygg AS"),
                address=pb.Address(country_code=country, region=region, city="Bergen", line1="Bryggen 1"),
                **kw,
            ),
            **call_kw,
        ).profile

    def card(self, account="acct-1", number="4242424242424242"):
        return self.AddPaymentMethod(
            pb.AddPaymentMethodRequest(
                account_id=account, type=common_pb2.PAYMENT_METHOD_TYPE_CARD, card_number=number
            )
        ).payment_method

    def invoice_method(self, account="acct-1"):
        return self.AddPaymentMethod(
            pb.AddPaymentMethodRequest(account_id=account, type=common_pb2.PAYMENT_METHOD_TYPE_INVOICE)
        ).payment_method

    def create_invoice(self, pm, account="acct-1", amount="470.00", quantity=1, currency="USD", **kw):
        kw.setdefault("request_id", uuid.uuid4().hex)
        kw.setdefault("kind", pb.INVOICE_KIND_NEW)
        kw.setdefault("subscription_id", "sub-" + uuid.uuid4().hex[:8])
        line = pb.InvoiceLineInput(
            description=kw.pop("description", "AutoCAD LT, annual term"),
            quantity=quantity,
            unit_price=to_proto(Decimal(amount), currency),
            product_code="ACDLT",
        )
        if "line_amount" in kw:
            line.amount.CopyFrom(to_proto(Decimal(kw.pop("line_amount")), currency))
        call_kw = {"metadata": kw.pop("metadata")} if "metadata" in kw else {}
        return self.CreateInvoice(
            pb.CreateInvoiceRequest(
                account_id=account,
                order_number=kw.pop("order_number", "ORD-1"),
                currency_code=currency,
                lines=[line],
                payment_method_id=pm.payment_method_id,
                **kw,
            ),
            **call_kw,
        )

    def sweep(self, when):
        t = timestamp_pb2.Timestamp()
        t.FromDatetime(when)
        return self.RunBillingSweep(pb.RunBillingSweepRequest(as_of_time=t))

    def events(self) -> list[str]:
        t = self.app.db.tables["outbox"]
        with self.app.db.read() as s:
            return [r.event_type for r in s.execute(select(t.c.event_type).order_by(t.c.id))]


def dec(m) -> Decimal:
    return Decimal(m.units) + Decimal(m.nanos) / Decimal(10**9)


def day(d) -> date_pb2.Date:
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def reason(err: grpc.RpcError) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    st = rpc_status.from_call(err)
    for d in st.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info.reason
    return ""
