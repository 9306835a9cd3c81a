"""gRPC servicer of tenure.subscription.v1.SubscriptionService: decode the request, run the handler, encode
the response. Domain exceptions propagate to the error-mapping interceptor."""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta

from services.subscription import catalog_admin, codec, handlers, previews, quotes, sweep
from services.subscription.booking import Peers
from services.subscription.domain.model import Channel
from services.subscription.permissions import order_buyer
from shared import paging
from shared.auth.principal import current
from shared.clock import Clock
from shared.db import Database, run_once, scoped_request_id
from shared.errors import InvalidInput, RuleViolation
from tenure.subscription.v1 import subscription_pb2 as pb
from tenure.subscription.v1 import subscription_pb2_grpc

#: Catalog lists are small and come whole unless the caller pages them.
CATALOG_PAGE = 500


def _slice(items: list, page_size: int, page_token: str) -> tuple[list, str]:
    offset, size = paging.offset_page(page_size, page_token, default=CATALOG_PAGE)
    return items[offset : offset + size], paging.next_offset_token(offset, size, offset + size < len(items))


#: Longer request ids are shortened (hashed) in the ids derived from them for billing.
_KEY_CHARS = 64


def _key(request) -> str:
    """The caller's request id in the caller's scope: the ids derived from it for billing (invoices,
    credit notes) are then the caller's own, whoever else used the same id. A long id is hashed, so the
    derived ids stay within what billing stores."""
    rid = request.request_id
    if len(rid) > _KEY_CHARS:
        rid = "h" + hashlib.sha256(rid.encode()).hexdigest()[:40]
    return scoped_request_id(rid)


def _person() -> str:
    """The e-mail of the person calling ("" for an operator or a service)."""
    access = current()
    return access.principal.email if access is not None and access.principal.is_person else ""


class SubscriptionServicer(subscription_pb2_grpc.SubscriptionServiceServicer):
    def __init__(self, db: Database, clock: Clock, peers: Peers, advance_clock=None) -> None:
        self.db = db
        self.clock = clock
        self.peers = peers
        self.advance_clock = advance_clock

    # -- catalog ------------------------------------------------------------------------------------
    def ListProducts(self, request, context):
        items, nxt = _slice(handlers.list_products(self.db), request.page_size, request.page_token)
        return pb.ListProductsResponse(
            products=[codec.product_pb(p, up) for p, up in items], next_page_token=nxt
        )

    def ListPrices(self, request, context):
        channel = codec.channel_of(request.channel, default=Channel.DIRECT_ONLINE)
        on = codec.date_of(request.effective_on, "effective_on")
        prices, version = handlers.list_prices(
            self.db, request.product_code, request.currency_code.upper(), channel, on
        )
        items, nxt = _slice(prices, request.page_size, request.page_token)
        return pb.ListPricesResponse(
            prices=[codec.price_pb(p) for p in items], next_page_token=nxt, price_book_version=version
        )

    def SetExchangeRate(self, request, context):
        channel = codec.channel_of(request.channel, default=Channel.DIRECT_ONLINE)

        def work(uow):
            adj = handlers.set_exchange_rate(uow, request.currency_code.upper(), channel, request.rate)
            return pb.SetExchangeRateResponse(
                applied_rate=str(adj.applied.rate.normalize()),
                capped=adj.capped,
                previous_rate=str(adj.previous.rate.normalize()),
                period=adj.applied.period,
            )

        return self.db.run_idempotent("SetExchangeRate", request, pb.SetExchangeRateResponse, work)

    # -- the managed catalog (rules §10) ------------------------------------------------------------
    def CreateProduct(self, request, context):
        product = codec.product_spec_of(request.product, new=True)

        def work(uow):
            c = catalog_admin.create_product(uow, product)
            return pb.CreateProductResponse(
                product=codec.product_pb(c.product, c.upgrades_to), price_book_version=c.version
            )

        return self.db.run_idempotent("CreateProduct", request, pb.CreateProductResponse, work)

    def UpdateProduct(self, request, context):
        product = codec.product_spec_of(request.product, new=False)

        def work(uow):
            c = catalog_admin.update_product(uow, product)
            return pb.UpdateProductResponse(
                product=codec.product_pb(c.product, c.upgrades_to), price_book_version=c.version
            )

        return self.db.run_idempotent("UpdateProduct", request, pb.UpdateProductResponse, work)

    def SetPrice(self, request, context):
        r = request
        plan, term = codec.plan_of(r.plan), codec.term_of(r.term)
        list_price = codec.money_of(r.list_price, "list_price")
        renewal_price = codec.money_of(r.renewal_price, "renewal_price")
        effective = codec.date_of(r.effective_date, "effective_date")
        code = r.product_code.strip().upper()

        def work(uow):
            c = catalog_admin.set_price(uow, code, plan, term, list_price, renewal_price, effective)
            return pb.SetPriceResponse(price=codec.price_pb(c.price), price_book_version=c.version)

        return self.db.run_idempotent("SetPrice", request, pb.SetPriceResponse, work)

    # -- quotes -------------------------------------------------------------------------------------
    def QuoteOrder(self, request, context):
        which = request.WhichOneof("order")
        if which == "create":
            c = request.create
            q: previews.QuoteRequest = previews.QuoteCreate(
                codec.order_request(c, order_buyer(current(), c.buyer.email))
            )
        elif which == "add_seats":
            q = previews.QuoteAddSeats(request.add_seats.subscription_id, request.add_seats.seats)
        elif which == "renew":
            q = previews.QuoteRenew(request.renew.subscription_id)
        elif which == "align":
            q = previews.QuoteAlign(request.align.account_id, list(request.align.subscription_ids))
        elif which == "upgrade":
            u = request.upgrade
            q = previews.QuoteUpgrade(
                u.subscription_id, u.target_product_code, codec.target_plan_of(u.target_plan)
            )
        elif which == "convert_trial":
            c = request.convert_trial
            q = previews.QuoteConvertTrial(c.subscription_id, codec.term_of(c.term), c.seats)
        elif which == "change_term":
            t = request.change_term
            q = previews.QuoteChangeTerm(t.subscription_id, codec.term_of(t.term))
        elif which == "product_switch":
            p = request.product_switch
            q = previews.QuoteProductSwitch(p.subscription_id, p.product_code)
        elif which == "reinstate":
            if not request.reinstate.auto_renew:
                raise InvalidInput("a reinstatement turns automatic renewal on", field="reinstate.auto_renew")
            q = previews.QuoteReinstate(request.reinstate.subscription_id)
        else:
            raise InvalidInput("name the order to quote", field="order")
        quote = previews.quote_order(self.db, self.peers, q)
        cur = quote.currency
        return pb.QuoteOrderResponse(
            lines=[codec.line_pb(ln) for ln in quote.lines],
            subtotal=codec.money_pb(quote.subtotal, cur),
            tax=codec.money_pb(quote.tax, cur),
            total=codec.money_pb(quote.total, cur),
            credit=codec.money_pb(quote.credit, cur),
            installments=[
                pb.PaymentInstallment(
                    sequence=p.sequence,
                    count=p.count,
                    due_date=codec.date_pb(p.due_date),
                    subtotal=codec.money_pb(p.subtotal, cur),
                    tax=codec.money_pb(p.tax, cur),
                    total=codec.money_pb(p.total, cur),
                )
                for p in quote.installments
            ],
            due_date=codec.date_pb(quote.due_date),
            due_now=codec.money_pb(quote.due_now, cur),
            applied_changes=list(quote.applied),
        )

    def ListUpcomingPayments(self, request, context):
        offset, size = paging.offset_page(request.page_size, request.page_token)
        payments = previews.list_upcoming_payments(
            self.db, self.peers, request.account_id, request.horizon_days
        )
        page = payments[offset : offset + size]
        nxt = paging.next_offset_token(offset, size, len(payments) > offset + size)
        return pb.ListUpcomingPaymentsResponse(
            payments=[codec.upcoming_payment_pb(p) for p in page], next_page_token=nxt
        )

    # -- subscriptions ------------------------------------------------------------------------------
    def CreateSubscription(self, request, context):
        req = codec.order_request(request, order_buyer(current(), request.buyer.email))
        person = _person()

        def work(uow):
            r = handlers.create_subscription(uow, self.peers, req, _key(request), person=person)
            return pb.CreateSubscriptionResponse(
                subscription=codec.subscription_pb(r.subscription),
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                total=codec.money_pb(r.total, r.subscription.currency),
            )

        return self.db.run_idempotent("CreateSubscription", request, pb.CreateSubscriptionResponse, work)

    def GetSubscription(self, request, context):
        sub = handlers.get_subscription(self.db, request.subscription_id)
        return pb.GetSubscriptionResponse(subscription=codec.subscription_pb(sub))

    def ListSubscriptions(self, request, context):
        offset, size = paging.offset_page(request.page_size, request.page_token)
        subs = handlers.list_subscriptions(
            self.db,
            request.account_id,
            codec.stage_of(request.stage),
            offset,
            size + 1,
            person=_person(),
            email=request.email,
            order_number=request.order_number,
        )
        nxt = paging.next_offset_token(offset, size, len(subs) > size)
        return pb.ListSubscriptionsResponse(
            subscriptions=[codec.subscription_pb(s) for s in subs[:size]], next_page_token=nxt
        )

    def AddSeats(self, request, context):
        def work(uow):
            r = handlers.add_seats(uow, self.peers, request.subscription_id, request.seats, _key(request))
            cur = r.subscription.currency
            return pb.AddSeatsResponse(
                subscription=codec.subscription_pb(r.subscription),
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                prorated_amount=codec.money_pb(r.subtotal, cur),
                total=codec.money_pb(r.total, cur),
                lines=[codec.line_pb(ln) for ln in r.lines],
            )

        return self.db.run_idempotent("AddSeats", request, pb.AddSeatsResponse, work)

    def SetRenewalSeats(self, request, context):
        def work(uow):
            sub = handlers.set_renewal_seats(uow, self.peers, request.subscription_id, request.seats)
            return pb.SetRenewalSeatsResponse(subscription=codec.subscription_pb(sub))

        return self.db.run_idempotent("SetRenewalSeats", request, pb.SetRenewalSeatsResponse, work)

    def ChangeTerm(self, request, context):
        term = codec.term_of(request.term)

        def work(uow):
            sub = handlers.change_term(uow, request.subscription_id, term)
            return pb.ChangeTermResponse(subscription=codec.subscription_pb(sub))

        return self.db.run_idempotent("ChangeTerm", request, pb.ChangeTermResponse, work)

    def SetAutoRenew(self, request, context):
        def work(uow):
            r = handlers.set_auto_renew(
                uow, self.peers, request.subscription_id, request.auto_renew, _key(request)
            )
            return pb.SetAutoRenewResponse(
                subscription=codec.subscription_pb(r.subscription),
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                lines=[codec.line_pb(ln) for ln in r.lines],
                credit_note_ids=r.credit_note_ids,
                refunded_amount=codec.money_pb(r.refunded, r.subscription.currency),
            )

        return self.db.run_idempotent("SetAutoRenew", request, pb.SetAutoRenewResponse, work)

    def RenewSubscription(self, request, context):
        def work(uow):
            r = handlers.renew(uow, self.peers, request.subscription_id, _key(request))
            return pb.RenewSubscriptionResponse(
                subscription=codec.subscription_pb(r.subscription),
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                total=codec.money_pb(r.total, r.subscription.currency),
            )

        return self.db.run_idempotent("RenewSubscription", request, pb.RenewSubscriptionResponse, work)

    def AlignRenewalDates(self, request, context):
        def work(uow):
            r = handlers.align(
                uow, self.peers, request.account_id, list(request.subscription_ids), _key(request)
            )
            return pb.AlignRenewalDatesResponse(
                subscriptions=[codec.subscription_pb(s) for s in r.subscriptions],
                order_number=r.order_number,
                invoice_id=r.invoice_ids[0] if r.invoice_ids else "",
                invoice_ids=r.invoice_ids,
                total=codec.money_pb(r.total, r.currency),
                lines=[codec.line_pb(ln) for ln in r.lines],
            )

        return self.db.run_idempotent("AlignRenewalDates", request, pb.AlignRenewalDatesResponse, work)

    def UpgradeSubscription(self, request, context):
        target_plan = codec.target_plan_of(request.target_plan)

        def work(uow):
            r = handlers.upgrade(
                uow,
                self.peers,
                request.subscription_id,
                request.target_product_code,
                target_plan,
                _key(request),
            )
            cur = r.new.currency
            return pb.UpgradeSubscriptionResponse(
                old_subscription=codec.subscription_pb(r.old),
                new_subscription=codec.subscription_pb(r.new),
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                credit=codec.money_pb(r.credit, cur),
                old_access_until_time=codec.ts_pb(r.old_access_until),
                serial_number_update_required=r.serial_number_update_required,
                reinstall_required=r.reinstall_required,
                total=codec.money_pb(r.total, cur),
                lines=[codec.line_pb(ln) for ln in r.lines],
            )

        return self.db.run_idempotent("UpgradeSubscription", request, pb.UpgradeSubscriptionResponse, work)

    def ScheduleProductSwitch(self, request, context):
        def work(uow):
            sub = handlers.schedule_product_switch(uow, request.subscription_id, request.product_code)
            return pb.ScheduleProductSwitchResponse(subscription=codec.subscription_pb(sub))

        return self.db.run_idempotent(
            "ScheduleProductSwitch", request, pb.ScheduleProductSwitchResponse, work
        )

    def ConvertTrial(self, request, context):
        term = codec.term_of(request.term)

        def work(uow):
            r = handlers.convert_trial(
                uow,
                self.peers,
                request.subscription_id,
                term,
                request.seats,
                request.payment_method_id,
                _key(request),
            )
            return pb.ConvertTrialResponse(
                subscription=codec.subscription_pb(r.subscription),
                order_number=r.order_number,
                invoice_id=r.invoice_id,
                total=codec.money_pb(r.total, r.subscription.currency),
            )

        return self.db.run_idempotent("ConvertTrial", request, pb.ConvertTrialResponse, work)

    def ChangePaymentMethod(self, request, context):
        def work(uow):
            sub = handlers.change_payment_method(
                uow, self.peers, request.subscription_id, request.payment_method_id
            )
            return pb.ChangePaymentMethodResponse(subscription=codec.subscription_pb(sub))

        return self.db.run_idempotent("ChangePaymentMethod", request, pb.ChangePaymentMethodResponse, work)

    def RequestRefund(self, request, context):
        def work(uow):
            r = handlers.request_refund(
                uow, self.peers, request.subscription_id, request.reason, _key(request)
            )
            return pb.RequestRefundResponse(
                subscription=codec.subscription_pb(r.subscription),
                credit_note_id=r.credit_note_ids[0] if r.credit_note_ids else "",
                credit_note_ids=r.credit_note_ids,
                refunded_amount=codec.money_pb(r.refunded, r.subscription.currency),
                lines=[codec.line_pb(ln) for ln in r.lines],
            )

        return self.db.run_idempotent("RequestRefund", request, pb.RequestRefundResponse, work)

    def GetSelfServiceOptions(self, request, context):
        options = handlers.self_service_options(self.db, request.subscription_id)
        return pb.GetSelfServiceOptionsResponse(options=[codec.option_pb(o) for o in options])

    # -- lifecycle ----------------------------------------------------------------------------------
    def GetLifecycleHistory(self, request, context):
        transitions = handlers.lifecycle_history(self.db, request.subscription_id)
        return pb.GetLifecycleHistoryResponse(transitions=[codec.transition_pb(t) for t in transitions])

    def RunLifecycle(self, request, context):
        as_of = (
            request.as_of_time.ToDatetime(tzinfo=UTC) if request.HasField("as_of_time") else self.clock.now()
        )
        c = sweep.run(self.db, self.peers.billing, as_of)
        return pb.RunLifecycleResponse(
            renewed=c.renewed,
            reminded=c.reminded,
            expired=c.expired,
            suspended=c.suspended,
            cancelled=c.cancelled,
        )

    def GetClock(self, request, context):
        return pb.GetClockResponse(now_time=codec.ts_pb(self.clock.now()), test_clock=self.clock.is_test)

    def AdvanceClock(self, request, context):
        if not self.clock.is_test:
            raise RuleViolation(
                "the clock can only be moved when the services run on the test clock (TENURE_CLOCK=test)",
                reason="TEST_CLOCK_DISABLED",
            )
        has_duration, has_to = request.HasField("duration"), request.HasField("to_time")
        if has_duration == has_to:
            raise InvalidInput("set either duration or to_time", field="duration")
        if has_duration:
            delta = request.duration.ToTimedelta()
            if delta < timedelta(0):
                raise InvalidInput("the test clock only moves forward", field="duration")

        def work() -> pb.AdvanceClockResponse:
            to = self.clock.now() + delta if has_duration else request.to_time.ToDatetime(tzinfo=UTC)
            now, steps = self.advance_clock.advance(to)
            return pb.AdvanceClockResponse(now_time=codec.ts_pb(now), steps=steps)

        return run_once(self.db, "AdvanceClock", request, pb.AdvanceClockResponse, work)

    # -- partner quotes (rules §9) ------------------------------------------------------------------
    def _caller(self) -> quotes.Caller:
        access = current()
        p = access.principal if access is not None else None
        if p is None:
            return quotes.Caller()
        return quotes.Caller(email=p.email if p.is_person else "", partner=p.partner, operator=p.is_operator)

    def _today(self, q):
        return q.today(self.clock.now())

    def CreateQuote(self, request, context):
        caller = self._caller()
        lines = [codec.quote_line_spec_of(m) for m in request.lines]
        contacts = codec.quote_contacts_of(request.buyer, request.payer_emails)

        def work(uow):
            q = quotes.create_quote(
                uow,
                caller.partner,
                request.account_id,
                contacts,
                request.currency_code,
                request.country_code,
                request.time_zone,
                lines,
                partner_email=caller.email,
                partner_language=request.partner_language,
            )
            return pb.CreateQuoteResponse(quote=codec.quote_pb(q, self._today(q)))

        return self.db.run_idempotent("CreateQuote", request, pb.CreateQuoteResponse, work)

    def IssueQuote(self, request, context):
        caller = self._caller()

        def work(uow):
            q = quotes.issue_quote(uow, self.peers, caller.partner, request.quote_number)
            return pb.IssueQuoteResponse(quote=codec.quote_pb(q, self._today(q)))

        return self.db.run_idempotent("IssueQuote", request, pb.IssueQuoteResponse, work)

    def ReviseQuote(self, request, context):
        caller = self._caller()
        contacts = (
            codec.quote_contacts_of(request.buyer, request.payer_emails)
            if request.HasField("buyer")
            else None
        )
        lines = [codec.quote_line_spec_of(m) for m in request.lines] or None

        def work(uow):
            q, old = quotes.revise_quote(
                uow, self.peers, caller.partner, request.quote_number, contacts, lines
            )
            return pb.ReviseQuoteResponse(quote=codec.quote_pb(q, self._today(q)), superseded_version=old)

        return self.db.run_idempotent("ReviseQuote", request, pb.ReviseQuoteResponse, work)

    def GetQuote(self, request, context):
        q = quotes.get_quote(self.db, self._caller(), request.quote_number, request.version)
        return pb.GetQuoteResponse(quote=codec.quote_pb(q, self._today(q)))

    def AcceptQuote(self, request, context):
        caller = self._caller()

        def work(uow):
            a = quotes.accept_quote(
                uow,
                self.peers,
                caller,
                request.quote_number,
                request.version,
                request.payment_method_id.strip(),
                _key(request),
            )
            return pb.AcceptQuoteResponse(
                quote=codec.quote_pb(a.quote, self._today(a.quote)),
                order_number=a.booked.number,
                invoice_id=a.booked.invoice_id,
                subscription=codec.subscription_pb(a.booked.sub),
            )

        return self.db.run_idempotent("AcceptQuote", request, pb.AcceptQuoteResponse, work)
