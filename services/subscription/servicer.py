"""gRPC servicer of tenure.subscription.v1.SubscriptionService: decode the request, run the handler, encode
the response. Domain exceptions propagate to the error-mapping interceptor."""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta

from sqlalchemy.exc import IntegrityError

from services.subscription import codec, handlers, sweep
from services.subscription.domain import subscription as ops
from services.subscription.domain.model import Channel
from services.subscription.permissions import order_buyer
from shared.auth.principal import current
from shared.clock import Clock
from shared.db import Database, scoped_request_id
from shared.errors import InvalidInput, RuleViolation
from tenure.subscription.v1 import subscription_pb2 as pb
from tenure.subscription.v1 import subscription_pb2_grpc

DEFAULT_PAGE = 50
MAX_PAGE = 500


def _page(page_size: int, page_token: str, *, default: int = DEFAULT_PAGE) -> tuple[int, int]:
    if page_size < 0:
        raise InvalidInput("page_size cannot be negative", field="page_size")
    size = min(page_size or default, MAX_PAGE)
    if not page_token:
        return 0, size
    try:
        offset = int(page_token)
    except ValueError:
        raise InvalidInput("page_token is not a token from a previous response", field="page_token") from None
    if offset < 0:
        raise InvalidInput("page_token is not a token from a previous response", field="page_token")
    return offset, size


def _slice(items: list, page_size: int, page_token: str) -> tuple[list, str]:
    offset, size = _page(page_size, page_token, default=MAX_PAGE)
    chunk = items[offset : offset + size]
    nxt = str(offset + size) if offset + size < len(items) else ""
    return chunk, nxt


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


def _order_request(r: pb.CreateSubscriptionRequest) -> ops.OrderRequest:
    """The order as its caller may place it (a person is its buyer: `order_buyer`)."""
    return ops.OrderRequest(
        account_id=r.account_id,
        buyer_email=order_buyer(current(), r.buyer.email),
        buyer_name=r.buyer.name,
        buyer_language=r.buyer.language or "en",
        product_code=r.product_code,
        plan=codec.plan_of(r.plan, default=codec.Plan.STANDARD),
        term=None if r.term == 0 else codec.term_of(r.term),
        seats=r.seats,
        currency=r.currency_code.upper(),
        country_code=r.country_code.upper(),
        time_zone=r.time_zone,
        channel=codec.channel_of(r.channel, default=Channel.DIRECT_ONLINE),
        payment_method_id=r.payment_method_id,
        auto_renew=r.auto_renew if r.HasField("auto_renew") else True,
        start_date=codec.date_of(r.start_date, "start_date"),
        trial=r.trial,
        partner_name=r.partner_name,
    )


def _target_plan(n: int):
    return None if n == 0 else codec.plan_of(n, "target_plan")


class SubscriptionServicer(subscription_pb2_grpc.SubscriptionServiceServicer):
    def __init__(self, db: Database, clock: Clock, peers: handlers.Peers, advance_clock=None) -> None:
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
        prices = handlers.list_prices(self.db, request.product_code, request.currency_code.upper(), channel)
        items, nxt = _slice(prices, request.page_size, request.page_token)
        return pb.ListPricesResponse(prices=[codec.price_pb(p) for p in items], next_page_token=nxt)

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

    # -- quotes -------------------------------------------------------------------------------------
    def QuoteOrder(self, request, context):
        which = request.WhichOneof("order")
        p = self.peers
        if which == "create":
            q = handlers.quote_create(self.db, p, _order_request(request.create))
        elif which == "add_seats":
            q = handlers.quote_add_seats(
                self.db, p, request.add_seats.subscription_id, request.add_seats.seats
            )
        elif which == "renew":
            q = handlers.quote_renew(self.db, p, request.renew.subscription_id)
        elif which == "align":
            q = handlers.quote_align(
                self.db, p, request.align.account_id, list(request.align.subscription_ids)
            )
        elif which == "upgrade":
            u = request.upgrade
            q = handlers.quote_upgrade(
                self.db, p, u.subscription_id, u.target_product_code, _target_plan(u.target_plan)
            )
        elif which == "convert_trial":
            c = request.convert_trial
            q = handlers.quote_convert_trial(self.db, p, c.subscription_id, codec.term_of(c.term), c.seats)
        else:
            raise InvalidInput("name the order to quote", field="order")
        return pb.QuoteOrderResponse(
            lines=[codec.line_pb(ln) for ln in q.lines],
            subtotal=codec.money_pb(q.subtotal, q.currency),
            tax=codec.money_pb(q.tax, q.currency),
            total=codec.money_pb(q.total, q.currency),
            credit=codec.money_pb(q.credit, q.currency),
        )

    # -- subscriptions ------------------------------------------------------------------------------
    def CreateSubscription(self, request, context):
        req = _order_request(request)
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
        offset, size = _page(request.page_size, request.page_token)
        subs = handlers.list_subscriptions(
            self.db, request.account_id, codec.stage_of(request.stage), offset, size + 1, person=_person()
        )
        nxt = str(offset + size) if len(subs) > size else ""
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
            )

        return self.db.run_idempotent("AlignRenewalDates", request, pb.AlignRenewalDatesResponse, work)

    def UpgradeSubscription(self, request, context):
        target_plan = _target_plan(request.target_plan)

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

        return _once(self.db, "AdvanceClock", request, pb.AdvanceClockResponse, work)


def _once(db: Database, method: str, request, response_cls, fn):
    """Idempotency for a long call that runs its own transactions: a repeat of `request_id` returns the
    stored first response (the call itself is not one unit of work, so `run_idempotent` does not fit)."""
    request_id = scoped_request_id(request.request_id)
    if not request_id:
        return fn()
    fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    with db.unit_of_work() as uow:
        previous = uow.replay(method, request_id, fingerprint, response_cls)
    if previous is not None:
        return previous
    response = fn()
    try:
        with db.unit_of_work() as uow:
            uow.remember(method, request_id, fingerprint, response)
    except IntegrityError:
        pass  # a concurrent repeat stored its own response first
    return response
