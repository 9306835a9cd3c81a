"""The permission matrix: every RPC of the four services, called as fourteen kinds of caller.

The expected answer of each (RPC, caller) pair is generated from the service's permission table
(`services/<name>/permissions.py`) and the roles each caller holds in the world built below, never
written by hand; the few finer rules that handlers add on top of the table are listed in FINER. A
test walks the proto descriptors and fails when an RPC has no row.

Every refused call must change nothing: the rows of every table of the four databases are counted
before and after the refused calls of each RPC (with every outbox drained, so late events cannot hide
a change).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_status import rpc_status
from sqlalchemy import func, literal, select, union_all

from shared.auth.policy import MEMBER, OPERATOR, PARTNER, PERSON, SELF, SERVICE, Rule, field_value
from shared.auth.tokens import TokenIssuer
from tenure.billing.v1 import billing_pb2, billing_pb2_grpc
from tenure.common.v1 import clock_pb2, clock_pb2_grpc
from tenure.entitlement.v1 import entitlement_pb2, entitlement_pb2_grpc
from tenure.events.v1 import events_pb2, events_pb2_grpc
from tenure.notification.v1 import notification_pb2, notification_pb2_grpc
from tenure.subscription.v1 import subscription_pb2, subscription_pb2_grpc
from tests.auth import bearer, issuer, operator, person, service
from tests.e2e.conftest import free_port
from tools.permissions_table import TABLES

OK = "allowed"
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
HIDDEN = grpc.StatusCode.NOT_FOUND

ACC_A, ACC_B = "acc-matrix-a", "acc-matrix-b"
ADA = "ada@a.example"  # buyer of A; handed the primary admin role to Pam, so also a secondary admin
PAM = "pam@a.example"  # primary admin of A
SAM = "sam@a.example"  # secondary admin of A
PIA = "pia@a.example"  # payer of A
UMA = "uma@a.example"  # holds a seat on A's subscription
BO = "bo@b.example"  # buyer of B: a stranger to A
SALLY, ACME = "sally@acme.example", "ACME Reseller AS"  # staff of a partner that has quoted A (rules §9)
OLE, OTHER = "ole@other.example", "Other Partner Ltd"  # staff of a partner that has not
QUOTE_BUYER = "quote.buyer@a.example"  # the buyer ACME's quote names (nobody in the matrix accepts it)

ROLES = {
    ADA: {"BUYER", "SECONDARY_ADMIN"},
    PAM: {"PRIMARY_ADMIN"},
    SAM: {"SECONDARY_ADMIN"},
    PIA: {"PAYER"},
    UMA: {"USER"},
    BO: set(),
    SALLY: set(),
    OLE: set(),
}

#: the accounts each partner has quoted
QUOTED = {ACME: {ACC_A}, OTHER: set()}


@dataclass(frozen=True)
class Caller:
    name: str
    kind: str  # "anonymous", "person", "operator", "service"
    email: str = ""
    partner: str = ""  # a partner's staff member: the partner their token names

    def metadata(self):
        if self.name == "no token":
            return None
        if self.name == "forged header":
            return [("x-actor-role", "operator"), ("x-actor-email", ADA)]
        if self.name == "expired token":
            return bearer(issuer().operator(ttl_seconds=-600))
        if self.name == "other key":
            other = TokenIssuer(Ed25519PrivateKey.generate(), issuer().issuer, issuer().audience)
            return bearer(other.operator())
        if self.kind == "operator":
            return operator()
        if self.kind == "service":
            return service("matrix")
        if self.partner:
            return bearer(issuer().person(self.email, partner=self.partner))
        return person(self.email)


CALLERS = [
    Caller("no token", "anonymous"),
    Caller("forged header", "anonymous"),
    Caller("expired token", "anonymous"),
    Caller("other key", "anonymous"),
    Caller("stranger", "person", BO),
    Caller("buyer", "person", ADA),
    Caller("primary admin", "person", PAM),
    Caller("secondary admin", "person", SAM),
    Caller("payer", "person", PIA),
    Caller("user", "person", UMA),
    Caller("partner", "person", SALLY, ACME),
    Caller("other partner", "person", OLE, OTHER),
    Caller("service", "service"),
    Caller("operator", "operator"),
]

DESCRIPTORS = [
    subscription_pb2.DESCRIPTOR.services_by_name["SubscriptionService"],
    billing_pb2.DESCRIPTOR.services_by_name["BillingService"],
    entitlement_pb2.DESCRIPTOR.services_by_name["EntitlementService"],
    notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
    clock_pb2.DESCRIPTOR.services_by_name["ClockService"],
    events_pb2.DESCRIPTOR.services_by_name["EventSinkService"],
]

# Finer rules a handler adds on top of the table: (rpc, caller) → answer.
FINER = {
    # a secondary admin cannot name admins (rules §7); the table lets admins in, the team rules refuse
    ("AssignRole", "secondary admin"): DENIED,
    ("AssignRole", "buyer"): DENIED,  # Ada is a secondary admin since she handed the primary role on
    ("RevokeRole", "secondary admin"): DENIED,
    ("RevokeRole", "buyer"): DENIED,
    # an RPC for partners' staff only refuses a person whose token names no partner before looking at the
    # account (rules §9), so a stranger is refused, not told it does not exist
    **{(rpc, "stranger"): DENIED for rpc in ("CreateQuote", "IssueQuote", "ReviseQuote")},
    # the order confirmation is the buyer's mail: other members are told it does not exist (rules §7, §8)
    **{
        (rpc, who): HIDDEN
        for rpc in ("GetNotification", "ResendNotification")
        for who in ("primary admin", "secondary admin", "payer", "user")
    },
}


def expected(rpc: str, rule: Rule, caller: Caller, request) -> object:
    """The answer the table gives `caller` on `request` (about account A's objects)."""
    if caller.kind == "anonymous":
        return UNAUTH
    if (rpc, caller.name) in FINER:
        return FINER[(rpc, caller.name)]
    if caller.kind in ("operator", "service"):
        return OK if (OPERATOR if caller.kind == "operator" else SERVICE) in rule.allow else DENIED
    if not rule.allow - {OPERATOR, SERVICE}:
        return DENIED
    about_self = SELF in rule.allow and field_value(request, rule.self_field).lower() == caller.email
    if about_self:
        return OK
    if not rule.target:
        return OK if PERSON in rule.allow else DENIED
    roles = set(ROLES[caller.email])
    if caller.partner and PARTNER in rule.allow and ACC_A in QUOTED[caller.partner]:
        roles.add(PARTNER)
    if not roles:
        return HIDDEN
    return OK if MEMBER in rule.allow or roles & rule.allow else DENIED


# --- the world ---------------------------------------------------------------------------------------


@dataclass
class World:
    apps: dict
    stubs: dict
    sub_a: str = ""
    inv_a: str = ""
    pm_a: str = ""
    notification_a: str = ""
    quote_a: str = ""

    def drain(self) -> None:
        """Deliver until no outbox has anything pending (an event may cause events in other services)."""
        for _ in range(6):
            busy = [app for app in self.apps.values() if app.relay.pending()]
            if not busy:
                return
            for app in busy:
                assert app.relay.drain(10)
        raise AssertionError("the outboxes did not drain")


def _start(start_service) -> World:
    ports = {n: free_port() for n in ("subscription", "billing", "entitlement", "notification")}
    addr = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
    quiet = {"relay_interval_seconds": 0.05}
    apps = {
        "entitlement": start_service(
            "entitlement",
            addr=addr["entitlement"],
            event_subscribers=f"{addr['subscription']},{addr['billing']},{addr['notification']}",
            **quiet,
        ),
        "notification": start_service(
            "notification",
            addr=addr["notification"],
            entitlement_addr=addr["entitlement"],
            billing_addr=addr["billing"],
            delivery_interval_seconds=0,
            **quiet,
        ),
        "billing": start_service(
            "billing",
            addr=addr["billing"],
            event_subscribers=f"{addr['subscription']},{addr['entitlement']},{addr['notification']}",
            sweep_interval_seconds=0,
            **quiet,
        ),
        "subscription": start_service(
            "subscription",
            addr=addr["subscription"],
            billing_addr=addr["billing"],
            entitlement_addr=addr["entitlement"],
            notification_addr=addr["notification"],
            event_subscribers=f"{addr['entitlement']},{addr['notification']}",
            lifecycle_interval_seconds=0,
            **quiet,
        ),
    }
    stubs = {
        "tenure.subscription.v1.SubscriptionService": subscription_pb2_grpc.SubscriptionServiceStub,
        "tenure.billing.v1.BillingService": billing_pb2_grpc.BillingServiceStub,
        "tenure.entitlement.v1.EntitlementService": entitlement_pb2_grpc.EntitlementServiceStub,
        "tenure.notification.v1.NotificationService": notification_pb2_grpc.NotificationServiceStub,
        "tenure.common.v1.ClockService": clock_pb2_grpc.ClockServiceStub,
        "tenure.events.v1.EventSinkService": events_pb2_grpc.EventSinkServiceStub,
    }
    home = {
        "tenure.subscription.v1.SubscriptionService": "subscription",
        "tenure.billing.v1.BillingService": "billing",
        "tenure.entitlement.v1.EntitlementService": "entitlement",
        "tenure.notification.v1.NotificationService": "notification",
        "tenure.common.v1.ClockService": "billing",
        "tenure.events.v1.EventSinkService": "entitlement",
    }
    return World(apps, {k: cls(grpc.insecure_channel(addr[home[k]])) for k, cls in stubs.items()})


def _order(w: World, account: str, buyer: str, name: str) -> tuple[str, str]:
    b = w.stubs["tenure.billing.v1.BillingService"]
    s = w.stubs["tenure.subscription.v1.SubscriptionService"]
    pm = b.AddPaymentMethod(
        billing_pb2.AddPaymentMethodRequest(
            request_id=f"pm-{account}", account_id=account, type=1, card_number="4242424242424242"
        ),
        metadata=person(buyer),
        timeout=10,
    ).payment_method.payment_method_id
    req = json_format.ParseDict(
        {
            "request_id": f"order-{account}",
            "account_id": account,
            "buyer": {"email": buyer, "name": name, "language": "nb"},
            "product_code": "ACDLT",
            "plan": "PLAN_STANDARD",
            "term": "TERM_ANNUAL",
            "seats": 3,
            "currency_code": "USD",
            "country_code": "NO",
            "time_zone": "Europe/Oslo",
            "channel": "CHANNEL_DIRECT_ONLINE",
            "payment_method_id": pm,
        },
        subscription_pb2.CreateSubscriptionRequest(),
    )
    created = s.CreateSubscription(req, metadata=person(buyer), timeout=20)
    return created.subscription.subscription_id, created.invoice_id, pm


def _partner_quote(w: World) -> str:
    """ACME's draft quote for account A, made before A's first order (a quote for a new customer)."""
    req = json_format.ParseDict(
        {
            "request_id": "quote-a",
            "account_id": ACC_A,
            "buyer": {"email": QUOTE_BUYER, "name": "Quinn", "language": "en"},
            "currency_code": "USD",
            "country_code": "NO",
            "time_zone": "Europe/Oslo",
            "lines": [
                {
                    "kind": "QUOTE_LINE_KIND_NEW_SUBSCRIPTION",
                    "product_code": "ACDLT",
                    "term": "TERM_ANNUAL",
                    "seats": 1,
                }
            ],
        },
        subscription_pb2.CreateQuoteRequest(),
    )
    s = w.stubs["tenure.subscription.v1.SubscriptionService"]
    partner = bearer(issuer().person(SALLY, partner=ACME))
    return s.CreateQuote(req, metadata=partner, timeout=20).quote.quote_number


def build_world(start_service) -> World:
    w = _start(start_service)
    w.quote_a = _partner_quote(w)
    w.sub_a, w.inv_a, w.pm_a = _order(w, ACC_A, ADA, "Ada Lovelace")
    _order(w, ACC_B, BO, "Bo Ek")
    w.drain()
    e = w.stubs["tenure.entitlement.v1.EntitlementService"]
    b = w.stubs["tenure.billing.v1.BillingService"]
    e.AssignRole(
        entitlement_pb2.AssignRoleRequest(request_id="r1", account_id=ACC_A, email=PAM, role=2),
        metadata=person(ADA),
        timeout=10,
    )
    e.AssignRole(
        entitlement_pb2.AssignRoleRequest(request_id="r2", account_id=ACC_A, email=SAM, role=3),
        metadata=person(PAM),
        timeout=10,
    )
    b.AddPayer(
        billing_pb2.AddPayerRequest(request_id="p1", account_id=ACC_A, email=PIA, name="Pia"),
        metadata=person(ADA),
        timeout=10,
    )
    e.AssignSeat(
        entitlement_pb2.AssignSeatRequest(request_id="s1", subscription_id=w.sub_a, user_email=UMA),
        metadata=person(PAM),
        timeout=10,
    )
    w.drain()
    n = w.stubs["tenure.notification.v1.NotificationService"]
    n.RunDelivery(notification_pb2.RunDeliveryRequest(), metadata=operator(), timeout=20)
    mail = n.ListNotifications(
        notification_pb2.ListNotificationsRequest(account_id=ACC_A, kind=1), metadata=operator(), timeout=10
    ).notifications
    assert [m.recipient_email for m in mail] == [ADA], "the order confirmation went to the buyer"
    w.notification_a = mail[0].notification_id
    return w


# --- one request per RPC, about account A's objects ------------------------------------------------


def requests(w: World) -> dict[str, dict]:
    rid = {"request_id": "x"}  # replaced per call
    line = {
        "description": "Seat",
        "quantity": 1,
        "unit_price": {"currency_code": "USD", "units": "10"},
        "amount": {"currency_code": "USD", "units": "10"},
    }
    return {
        # subscription
        "ListProducts": {},
        "ListPrices": {"product_code": "ACDLT", "currency_code": "USD"},
        "SetExchangeRate": {**rid, "currency_code": "NOK", "rate": "10.5"},
        "CreateProduct": {
            **rid,
            "product": {
                "product_code": "MATRIX",
                "name": "Matrix",
                "kind": "PRODUCT_KIND_FULL",
                "release_year": 2024,
            },
        },
        "UpdateProduct": {
            **rid,
            "product": {
                "product_code": "DOCS",
                "name": "Autodesk Docs",
                "kind": "PRODUCT_KIND_FULL",
                "shutoff_policy": "SHUTOFF_POLICY_IMMEDIATE",
                "release_year": 2022,
                "supported": True,
            },
        },
        "SetPrice": {
            **rid,
            "product_code": "ACDLT",
            "plan": "PLAN_STANDARD",
            "term": "TERM_ANNUAL",
            "list_price": {"currency_code": "USD", "units": "500"},
            "renewal_price": {"currency_code": "USD", "units": "450"},
            "effective_date": {"year": 2099, "month": 1, "day": 1},
        },
        "QuoteOrder": {"add_seats": {"subscription_id": w.sub_a, "seats": 1}},
        "CreateQuote": {
            **rid,
            "account_id": ACC_A,
            "buyer": {"email": ADA},
            "currency_code": "USD",
            "country_code": "NO",
            "time_zone": "Europe/Oslo",
            "lines": [{"kind": "QUOTE_LINE_KIND_RENEWAL", "subscription_id": w.sub_a}],
        },
        "IssueQuote": {**rid, "quote_number": w.quote_a},
        "ReviseQuote": {**rid, "quote_number": w.quote_a, "buyer": {"email": QUOTE_BUYER}},
        "GetQuote": {"quote_number": w.quote_a},
        "AcceptQuote": {**rid, "quote_number": w.quote_a, "payment_method_id": w.pm_a},
        "ListUpcomingPayments": {"account_id": ACC_A},
        "CreateSubscription": {
            **rid,
            "account_id": ACC_A,
            "buyer": {"email": ADA},
            "product_code": "ACDLT",
            "term": "TERM_ANNUAL",
            "seats": 1,
            "currency_code": "USD",
            "country_code": "NO",
            "payment_method_id": w.pm_a,
        },
        "GetSubscription": {"subscription_id": w.sub_a},
        "ListSubscriptions": {"account_id": ACC_A},
        "AddSeats": {**rid, "subscription_id": w.sub_a, "seats": 1},
        "SetRenewalSeats": {**rid, "subscription_id": w.sub_a, "seats": 3},
        "ChangeTerm": {**rid, "subscription_id": w.sub_a, "term": "TERM_ANNUAL"},
        "SetAutoRenew": {**rid, "subscription_id": w.sub_a, "auto_renew": True},
        "RenewSubscription": {**rid, "subscription_id": w.sub_a},
        "AlignRenewalDates": {**rid, "account_id": ACC_A, "subscription_ids": [w.sub_a]},
        "UpgradeSubscription": {**rid, "subscription_id": w.sub_a, "target_product_code": "NOPE"},
        "ScheduleProductSwitch": {**rid, "subscription_id": w.sub_a, "product_code": "NOPE"},
        "ConvertTrial": {**rid, "subscription_id": w.sub_a, "term": "TERM_ANNUAL", "seats": 1},
        "ChangePaymentMethod": {**rid, "subscription_id": w.sub_a, "payment_method_id": w.pm_a},
        "RequestRefund": {**rid, "subscription_id": w.sub_a, "reason": "matrix"},
        "GetSelfServiceOptions": {"subscription_id": w.sub_a},
        "GetLifecycleHistory": {"subscription_id": w.sub_a},
        "RunLifecycle": {},
        "GetClock": {},
        "AdvanceClock": {**rid, "duration": "1s"},
        # billing
        "UpsertBillingProfile": {
            **rid,
            "account_id": ACC_A,
            "name": "A AS",
            "address": {"country_code": "NO"},
        },
        "GetBillingProfile": {"account_id": ACC_A},
        "AddPaymentMethod": {**rid, "account_id": ACC_A, "type": 2, "paypal_email": "pp@a.example"},
        "ListPaymentMethods": {"account_id": ACC_A},
        "RemovePaymentMethod": {**rid, "account_id": ACC_A, "payment_method_id": "pm-none"},
        "CheckPaymentMethod": {"account_id": ACC_A, "payment_method_id": w.pm_a},
        "AddPayer": {**rid, "account_id": ACC_A, "email": "pay2@a.example"},
        "RemovePayer": {**rid, "account_id": ACC_A, "email": "nobody@a.example"},
        "ListPayers": {"account_id": ACC_A},
        "PreviewTax": {"account_id": ACC_A, "currency_code": "USD", "lines": [line], "country_code": "NO"},
        "CreateInvoice": {
            **rid,
            "account_id": "acc-matrix-other",
            "currency_code": "USD",
            "lines": [line],
            "kind": "INVOICE_KIND_NEW",
            "buyer_email": "other@c.example",
            "country_code": "NO",
        },
        "GetInvoice": {"invoice_id": w.inv_a},
        "ListInvoices": {"account_id": ACC_A},
        "PayInvoice": {**rid, "invoice_id": w.inv_a, "payment_method_id": w.pm_a},
        "VoidInvoice": {**rid, "invoice_id": "inv-none"},
        "UpdateInvoiceDetails": {**rid, "subscription_id": w.sub_a, "po_number": "PO-7"},
        "GetInvoicePdf": {"invoice_id": w.inv_a},
        "ListInstallments": {"subscription_id": w.sub_a},
        "CancelInstallments": {**rid, "subscription_id": "sub-none"},
        "IssueCreditNote": {**rid, "invoice_id": "inv-none", "reason": "matrix"},
        "ListCreditNotes": {"account_id": ACC_A},
        "GetBalance": {"account_id": ACC_A},
        "GetCreditNotePdf": {"account_id": ACC_A, "credit_note_id": "cn-none"},
        "MarkPrepayOnly": {**rid, "account_id": "acc-matrix-other", "reason": "matrix"},
        "RunBillingSweep": {},
        # entitlement
        "ListMembers": {"account_id": ACC_A},
        "FindAccounts": {"email": ADA},
        "AssignRole": {**rid, "account_id": ACC_A, "email": SAM, "role": "ROLE_SECONDARY_ADMIN"},
        "RevokeRole": {
            **rid,
            "account_id": ACC_A,
            "email": "nobody@a.example",
            "role": "ROLE_SECONDARY_ADMIN",
        },
        "ChangeBuyer": {**rid, "account_id": ACC_A, "email": ADA},
        "AssignSeat": {**rid, "subscription_id": w.sub_a, "user_email": UMA},
        "UnassignSeat": {**rid, "subscription_id": w.sub_a, "user_email": "nobody@a.example"},
        "ListAssignments": {"account_id": ACC_A},
        "CheckAccess": {"user_email": UMA, "product_code": "ACDLT"},
        "GetUserEntitlements": {"user_email": UMA},
        "GetSubscriptionAccess": {"subscription_id": w.sub_a},
        "RecordActivation": {**rid, "user_email": UMA, "product_code": "ACDLT"},
        "GetSeatUsageReport": {"account_id": ACC_A},
        # notification
        "ListNotifications": {"account_id": ACC_A},
        "GetNotification": {"notification_id": w.notification_a},
        "RenderTemplate": {"kind": "NOTIFICATION_KIND_ORDER_CONFIRMATION", "language": "nb"},
        "ResendNotification": {**rid, "notification_id": w.notification_a},
        "RunDelivery": {},
        # clock and events
        "GetTime": {},
        "SetTime": {},
        "DrainOutbox": {"timeout_seconds": 1},
        "Deliver": {
            "event": {
                "event_id": "00000000-0000-4000-8000-00000000f0f0",
                "event_type": "subscription.created",
                "source": "subscription",
                "account_id": ACC_A,
                "subscription_id": "sub-forged",
            }
        },
        "DeliverBatch": {
            "events": [
                {
                    "event_id": "00000000-0000-4000-8000-00000000f0f1",
                    "event_type": "subscription.created",
                    "source": "subscription",
                    "account_id": ACC_A,
                    "subscription_id": "sub-forged",
                }
            ]
        },
    }


# Destructive RPCs go last, in this order (the refund ends Ada's subscription).
LAST = ["RequestRefund"]


def row_counts(w: World) -> dict[tuple[str, str], int]:
    counts = {}
    for name, app in w.apps.items():
        tables = app.db.metadata.sorted_tables
        every = union_all(*(select(literal(t.name), func.count()).select_from(t) for t in tables))
        with app.db.read() as s:  # one round trip per database
            for table, n in s.execute(every):
                counts[(name, table)] = n
    return counts


def _call(w: World, service: str, method, request, caller: Caller):
    stub = w.stubs[service]
    try:
        getattr(stub, method.name)(request, metadata=caller.metadata(), timeout=20)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as err:
        st = rpc_status.from_call(err)
        return err.code(), (st.message if st else err.details())


def test_every_rpc_has_a_row_in_its_services_permission_table():
    missing = [
        f"{d.full_name}/{m.name}" for d in DESCRIPTORS for m in d.methods if m.name not in TABLES[d.full_name]
    ]
    extra = [
        f"{d.full_name}/{name}"
        for d in DESCRIPTORS
        for name in TABLES[d.full_name]
        if name not in {m.name for m in d.methods}
    ]
    assert missing == [] and extra == []


def test_the_permission_matrix(start_service, clock):
    w = build_world(start_service)
    bodies = requests(w)
    methods = [(d, m) for d in DESCRIPTORS for m in d.methods]
    methods.sort(key=lambda dm: LAST.index(dm[1].name) + 1 if dm[1].name in LAST else 0)
    wrong: list[str] = []
    for d, m in methods:
        rule = TABLES[d.full_name][m.name]
        request = json_format.ParseDict(bodies[m.name], GetMessageClass(m.input_type)())
        plan = [(c, expected(m.name, rule, c, request)) for c in CALLERS]
        refused = [(c, e) for c, e in plan if e is not OK]
        allowed = [c for c, e in plan if e is OK]
        w.drain()
        before = row_counts(w)
        for caller, want in refused:
            if hasattr(request, "request_id"):
                request.request_id = uuid.uuid4().hex
            code, message = _call(w, d.full_name, m, request, caller)
            if code != want:
                wrong.append(f"{m.name} as {caller.name}: {code.name} ({message}), expected {want.name}")
        w.drain()
        after = row_counts(w)
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if changed:
            wrong.append(f"{m.name}: refused calls changed rows {changed}")
        for caller in allowed:
            if hasattr(request, "request_id"):
                request.request_id = uuid.uuid4().hex
            code, message = _call(w, d.full_name, m, request, caller)
            if code in (UNAUTH, DENIED) or (
                code == HIDDEN and "not found" in message and _names_a(request, message)
            ):
                wrong.append(
                    f"{m.name} as {caller.name}: {code.name} ({message}), expected to be let through"
                )
    assert wrong == [], "\n".join(wrong)


def _names_a(request, message: str) -> bool:
    """A NOT_FOUND that names account A's own objects is the answer for strangers, not for members."""
    ids = [
        field_value(request, f) for f in ("account_id", "subscription_id", "invoice_id", "notification_id")
    ]
    return any(i and i in message for i in ids)


def test_internal_rpcs_admit_only_the_services_and_operator_rpcs_no_person():
    internal = {
        ("tenure.billing.v1.BillingService", m)
        for m in ("CreateInvoice", "IssueCreditNote", "VoidInvoice", "MarkPrepayOnly", "CancelInstallments")
    } | {("tenure.events.v1.EventSinkService", m) for m in ("Deliver", "DeliverBatch")}
    for svc, rpc in internal:
        assert TABLES[svc][rpc].allow == {SERVICE}, f"{svc}/{rpc}"
    operator_actions = [
        ("tenure.entitlement.v1.EntitlementService", "ChangeBuyer"),
        ("tenure.subscription.v1.SubscriptionService", "SetExchangeRate"),
        ("tenure.subscription.v1.SubscriptionService", "AdvanceClock"),
        ("tenure.subscription.v1.SubscriptionService", "RunLifecycle"),
        ("tenure.billing.v1.BillingService", "RunBillingSweep"),
        ("tenure.notification.v1.NotificationService", "RunDelivery"),
        ("tenure.common.v1.ClockService", "SetTime"),
    ]
    for svc, rpc in operator_actions:
        assert not TABLES[svc][rpc].for_people, f"{svc}/{rpc}"


def test_a_service_acting_for_a_person_names_both_in_the_audit_line(start_service, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="tenure.rpc")
    w = _start(start_service)
    _order(w, "acc-audit", "kari@example.no", "Kari Nordmann")
    # each RPC's line carries its fields on the record (the JSON formatter writes them as one object)
    lines = [r for r in caplog.records if r.name == "tenure.rpc" and hasattr(r, "principal")]
    seen = {(r.method.rsplit("/", 1)[1], r.principal, r.account) for r in lines}
    assert ("CreateSubscription", "kari@example.no", "acc-audit") in seen
    assert ("CreateInvoice", "service:subscription for kari@example.no", "acc-audit") in seen
