"""Partner quotes (rules §9): a partner prepares a quote for an account, the buyer named on it accepts it,
and accepting books the order through the same paths as a direct order.

A quote is one version of a numbered document: `DRAFT` → `ISSUED` → `ACCEPTED`, or `EXPIRED` after its
validity date, or `SUPERSEDED` when the partner changes its contacts or lines (the change is issued as the
next version). Each line is one kind of order: a new subscription, a renewal (optionally with another
term or seat count), a product switch (a renewal to another product) or added seats. Renewals and switches
take effect at the renewal instant; a renewal accepted while Expired or Suspended reinstates (rules §3).

Partner-channel subscriptions are not self-service (§3); the quote paths here check what a quote needs
(the 90-day window, the stage, the switch dates) and price with the same functions as the direct orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from services.subscription.domain import dates
from services.subscription.domain.aggregate import (
    PRODUCT_SWITCH_FROM,
    Outcome,
    Subscription,
    require_before_renewal,
    require_no_unpaid_invoice,
    require_open,
    valid_seats,
)
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.model import Channel, OrderLine, Plan, ShutoffPolicy, Stage, Term
from services.subscription.domain.orders import OrderRequest, create
from services.subscription.domain.pricing import prorate
from services.subscription.domain.renewals import extend_to, renew_term
from shared.errors import InvalidInput, NotFound, RuleViolation

#: decision (rules §9): a quote is valid for 30 days from its issue date (the setting's default)
VALIDITY_DAYS = 30
#: IMMEDIATE (construction cloud) products may switch only when bought or renewed from this date (§9)
IMMEDIATE_SWITCH_FROM = date(2024, 11, 18)
QUOTE_NOT_FOUND = "QUOTE_NOT_FOUND"


class QuoteStatus(StrEnum):
    DRAFT = "DRAFT"
    ISSUED = "ISSUED"
    ACCEPTED = "ACCEPTED"
    EXPIRED = "EXPIRED"
    SUPERSEDED = "SUPERSEDED"


class LineKind(StrEnum):
    NEW_SUBSCRIPTION = "NEW_SUBSCRIPTION"
    RENEWAL = "RENEWAL"
    PRODUCT_SWITCH = "PRODUCT_SWITCH"
    ADDED_SEATS = "ADDED_SEATS"
    EXTENSION = "EXTENSION"


@dataclass(frozen=True)
class LineSpec:
    """What one line of a quote orders. `subscription_id` for every kind but a new subscription; `term`,
    `seats`: a new subscription's, or a renewal's changes (None / 0: as the subscription renews);
    `product_code`: a new subscription's product or the switch's target; `align_to`: an extension's
    subscription whose renewal date it is extended to."""

    kind: LineKind
    subscription_id: str = ""
    product_code: str = ""
    plan: Plan = Plan.STANDARD
    term: Term | None = None
    seats: int = 0
    align_to: str = ""


@dataclass(frozen=True)
class Contacts:
    buyer_email: str
    buyer_name: str = ""
    buyer_language: str = "en"
    payer_emails: tuple[str, ...] = ()


@dataclass
class Quote:
    quote_number: str
    version: int
    partner: str
    account_id: str
    contacts: Contacts
    currency: str
    country_code: str
    time_zone: str
    lines: list[LineSpec]
    status: QuoteStatus = QuoteStatus.DRAFT
    priced: list[OrderLine] = field(default_factory=list)
    subtotal: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    issue_date: date | None = None
    valid_until: date | None = None
    order_number: str = ""
    invoice_id: str = ""
    subscription_id: str = ""
    create_time: datetime | None = None
    partner_email: str = ""  # whom at the partner to tell (the staff member who made the quote)
    partner_language: str = "en"

    def status_on(self, today: date) -> QuoteStatus:
        """The status as of `today`: an issued quote past its validity date is expired (the sweep records
        it; until then it reads as expired already)."""
        if self.status is QuoteStatus.ISSUED and self.valid_until is not None and today > self.valid_until:
            return QuoteStatus.EXPIRED
        return self.status

    def today(self, now: datetime) -> date:
        return dates.local_date(now, self.time_zone)

    @property
    def expiry_time(self) -> datetime | None:
        """The instant an issued quote expires: the start of the day after its last valid day, in the
        customer's zone (None: not issued, or no longer open)."""
        if self.status is not QuoteStatus.ISSUED or self.valid_until is None:
            return None
        return dates.local_midnight(self.valid_until + timedelta(days=1), self.time_zone)


def expire(q: Quote, now: datetime) -> Quote | None:
    """The quote as the sweep records it at `now`: expired once its validity date has passed; None when it
    is not due (not issued, or still valid)."""
    at = q.expiry_time
    if at is None or now < at:
        return None
    return replace(q, status=QuoteStatus.EXPIRED)


# -- making and changing a quote -----------------------------------------------------------------------


def valid_contacts(c: Contacts) -> Contacts:
    email = c.buyer_email.strip().lower()
    if not email or "@" not in email:
        raise InvalidInput("the quote names its buyer's e-mail address", field="buyer.email")
    payers = tuple(p.strip().lower() for p in c.payer_emails if p.strip())
    if any("@" not in p for p in payers):
        raise InvalidInput("payer e-mails are e-mail addresses", field="payer_emails")
    return Contacts(email, c.buyer_name.strip(), c.buyer_language or "en", payers)


def valid_lines(lines: list[LineSpec]) -> list[LineSpec]:
    if len(lines) != 1:
        raise InvalidInput("a quote has exactly one line (one order)", field="lines")
    for ln in lines:
        if ln.kind is LineKind.NEW_SUBSCRIPTION:
            if not ln.product_code:
                raise InvalidInput("a new subscription names its product", field="lines.product_code")
            if ln.term is None:
                raise InvalidInput("a new subscription names its term", field="lines.term")
            valid_seats(ln.seats, "lines.seats")
        else:
            if not ln.subscription_id:
                raise InvalidInput(
                    f"a {ln.kind.value.lower()} line names its subscription", field="lines.subscription_id"
                )
            if ln.kind is LineKind.PRODUCT_SWITCH and not ln.product_code:
                raise InvalidInput(
                    "a product switch names the product to switch to", field="lines.product_code"
                )
            if ln.kind is LineKind.EXTENSION:
                if not ln.align_to:
                    raise InvalidInput(
                        "an extension names the subscription to align to",
                        field="lines.align_to_subscription_id",
                    )
                if ln.align_to == ln.subscription_id:
                    raise InvalidInput(
                        "an extension aligns to another subscription", field="lines.align_to_subscription_id"
                    )
            if ln.kind is LineKind.ADDED_SEATS or ln.seats:
                valid_seats(ln.seats, "lines.seats")
    return lines


#: the languages partner mail is written in (rules §8: at least these)
PARTNER_LANGUAGES = ("en", "nb", "fr", "sv")


def valid_partner_language(language: str) -> str:
    lang = (language or "en").strip().lower()
    if lang not in PARTNER_LANGUAGES:
        raise InvalidInput(
            f"partner_language is one of {', '.join(PARTNER_LANGUAGES)}", field="partner_language"
        )
    return lang


def draft(
    quote_number: str,
    partner: str,
    account_id: str,
    contacts: Contacts,
    currency: str,
    country_code: str,
    time_zone: str,
    lines: list[LineSpec],
    now: datetime,
    *,
    partner_email: str = "",
    partner_language: str = "en",
) -> Quote:
    if not partner:
        raise InvalidInput("only a partner makes quotes: the token names no partner", field="partner")
    if not account_id.strip():
        raise InvalidInput("account_id is required", field="account_id")
    if len(country_code) != 2 or not country_code.isalpha():
        raise InvalidInput("country_code is an ISO 3166-1 alpha-2 code such as NO", field="country_code")
    dates.zone(time_zone)
    return Quote(
        quote_number,
        1,
        partner,
        account_id.strip(),
        valid_contacts(contacts),
        currency.upper(),
        country_code.upper(),
        time_zone,
        valid_lines(lines),
        create_time=now,
        partner_email=partner_email.strip().lower(),
        partner_language=valid_partner_language(partner_language),
    )


def require_partner(q: Quote, partner: str, action: str) -> None:
    """Only the partner that made a quote changes it; to another partner it does not exist."""
    if q.partner != partner:
        raise NotFound(f"quote {q.quote_number} not found", reason=QUOTE_NOT_FOUND)
    if q.status in (QuoteStatus.ACCEPTED, QuoteStatus.SUPERSEDED):
        raise RuleViolation(
            f"cannot {action}: version {q.version} of quote {q.quote_number} is {q.status.value.lower()}",
            reason="QUOTE_NOT_OPEN",
        )


def issue(
    q: Quote, priced: list[OrderLine], subtotal: Decimal, tax: Decimal, total: Decimal, today: date
) -> Quote:
    """Issued today, valid for `VALIDITY_DAYS` days (the last valid day is today + 30)."""
    if q.status is not QuoteStatus.DRAFT:
        raise RuleViolation(
            f"quote {q.quote_number} version {q.version} is {q.status.value.lower()}; only a draft is issued",
            reason="QUOTE_NOT_OPEN",
        )
    return replace(
        q,
        status=QuoteStatus.ISSUED,
        priced=list(priced),
        subtotal=subtotal,
        tax=tax,
        total=total,
        issue_date=today,
        valid_until=today + timedelta(days=VALIDITY_DAYS),
    )


def revise(q: Quote, contacts: Contacts | None, lines: list[LineSpec] | None) -> tuple[Quote, Quote]:
    """(the old version superseded, the next version as a draft to price and issue). A draft is changed in
    place (it was never issued): the same version comes back twice."""
    if contacts is None and not lines:
        raise InvalidInput("name new contacts or new lines", field="buyer")
    nxt = replace(
        q,
        contacts=valid_contacts(contacts) if contacts is not None else q.contacts,
        lines=valid_lines(lines) if lines else q.lines,
        status=QuoteStatus.DRAFT,
        priced=[],
        issue_date=None,
        valid_until=None,
    )
    if q.status is QuoteStatus.DRAFT:
        return nxt, nxt
    return replace(q, status=QuoteStatus.SUPERSEDED), replace(nxt, version=q.version + 1)


# -- who sees a quote, and accepting it -----------------------------------------------------------------


def visible_to(q: Quote, *, operator: bool, partner: str, email: str) -> bool:
    """The operator, the partner that made it and the buyer it names see a quote; to anyone else it does
    not exist."""
    return operator or (bool(partner) and q.partner == partner) or q.contacts.buyer_email == email.lower()


def check_accept(q: Quote, version: int, email: str, today: date) -> None:
    """Only the buyer named on the quote accepts an issued, unexpired version of it, once."""
    if q.contacts.buyer_email != email.strip().lower():
        raise RuleViolation(
            f"only the buyer named on quote {q.quote_number} ({q.contacts.buyer_email}) can accept it",
            reason="QUOTE_NOT_YOUR_QUOTE",
        )
    if version and version != q.version:
        raise RuleViolation(
            f"version {version} of quote {q.quote_number} was superseded by version {q.version}; accept "
            "the current version",
            reason="QUOTE_SUPERSEDED",
            metadata={"current_version": str(q.version)},
        )
    status = q.status_on(today)
    if status is QuoteStatus.EXPIRED:
        assert q.valid_until is not None
        raise RuleViolation(
            f"quote {q.quote_number} was valid until {q.valid_until.isoformat()}; ask {q.partner} for a new one",
            reason="QUOTE_EXPIRED",
            metadata={"valid_until_date": q.valid_until.isoformat()},
        )
    if status is not QuoteStatus.ISSUED:
        raise RuleViolation(
            f"quote {q.quote_number} version {q.version} is {status.value.lower()} and cannot be accepted",
            reason="QUOTE_NOT_OPEN",
        )


# -- pricing a line (at issue) and the order it books (at acceptance) --------------------------------------


def _check_subscription(q: Quote, sub: Subscription) -> None:
    if sub.account_id != q.account_id:
        raise NotFound(f"subscription {sub.subscription_id} not found", reason="SUBSCRIPTION_NOT_FOUND")
    if sub.currency != q.currency:
        raise InvalidInput(
            f"the subscription is billed in {sub.currency}; quote it in {sub.currency}", field="currency_code"
        )


def check_renewal(sub: Subscription, now: datetime, action: str = "quote a renewal") -> None:
    """A renewal is quoted from 90 days before the renewal date, or while Expired or Suspended."""
    require_open(sub, action)
    require_no_unpaid_invoice(sub, action)
    if sub.stage is Stage.ACTIVE:
        if sub.access_until is not None:
            raise RuleViolation(
                f"cannot {action}: the subscription's access is ending", reason="STAGE_NOT_ALLOWED"
            )
        opens = dates.renewal_window_opens(sub.renewal_date)
        if sub.today(now) < opens:
            raise RuleViolation(
                f"a renewal is quoted from 90 days before the renewal date {sub.renewal_date.isoformat()}, "
                f"from {opens.isoformat()}",
                reason="RENEWAL_WINDOW_NOT_OPEN",
                metadata={"window_opens_date": opens.isoformat()},
            )


def check_switch(sub: Subscription, target_policy: ShutoffPolicy, now: datetime) -> None:
    """A switch needs a term bought or renewed on or after 2024-09-16 (2024-11-18 when either product is an
    IMMEDIATE construction-cloud product), inside the 90 days before renewal; it takes effect at renewal."""
    check_renewal(sub, now, "quote a product switch")
    if sub.stage is not Stage.ACTIVE:
        raise RuleViolation(
            f"cannot switch product while the subscription is {sub.stage.value.lower()}; quote a renewal",
            reason="STAGE_NOT_ALLOWED",
        )
    require_before_renewal(sub, now, "quote a product switch")
    immediate = ShutoffPolicy.IMMEDIATE in (sub.shutoff_policy, target_policy)
    since = IMMEDIATE_SWITCH_FROM if immediate else PRODUCT_SWITCH_FROM
    if sub.current_period_start_date < since:
        raise RuleViolation(
            f"only subscriptions bought or renewed on or after {since.isoformat()} can switch product; this "
            f"term started on {sub.current_period_start_date.isoformat()}",
            reason="PRODUCT_SWITCH_NOT_ELIGIBLE",
        )


def _tagged(q: Quote, lines: list[OrderLine]) -> list[OrderLine]:
    """Lines that carry the quote's number, so the order and its invoice name the quote."""
    tag = f"Quote {q.quote_number} v{q.version}: "
    return [replace(ln, description=tag + ln.description) for ln in lines]


def order_of(
    q: Quote,
    sub: Subscription | None,
    catalog: Catalog,
    now: datetime,
    *,
    subscription_id: str = "",
    payment_method_id: str = "quote",
    align_to: Subscription | None = None,
) -> Outcome:
    """The order the quote's line books: the subscription as it leaves it and the lines, priced from the
    price book (list price for a new purchase, the renewal price for renewals, switches and reinstatement),
    on the partner channel and naming the partner."""
    (ln,) = q.lines
    if ln.kind is LineKind.NEW_SUBSCRIPTION:
        req = OrderRequest(
            account_id=q.account_id,
            buyer_email=q.contacts.buyer_email,
            product_code=ln.product_code,
            seats=ln.seats,
            currency=q.currency,
            country_code=q.country_code,
            time_zone=q.time_zone,
            plan=ln.plan,
            term=ln.term,
            buyer_name=q.contacts.buyer_name,
            buyer_language=q.contacts.buyer_language,
            channel=Channel.PARTNER_QUOTE,
            payment_method_id=payment_method_id,
            partner_name=q.partner,
        )
        out = create(req, catalog, subscription_id, now)
        return Outcome(out.subscription, _tagged(q, out.lines), out.transitions)
    if sub is None or sub.subscription_id != ln.subscription_id:
        raise NotFound(f"subscription {ln.subscription_id} not found", reason="SUBSCRIPTION_NOT_FOUND")
    _check_subscription(q, sub)
    if ln.kind is LineKind.ADDED_SEATS:
        return _added_seats(q, sub, ln.seats, now, payment_method_id)
    if ln.kind is LineKind.EXTENSION:
        if align_to is None or align_to.subscription_id != ln.align_to or align_to.account_id != q.account_id:
            raise NotFound(f"subscription {ln.align_to} not found", reason="SUBSCRIPTION_NOT_FOUND")
        return _extension(q, sub, align_to, now, payment_method_id)
    if ln.kind is LineKind.PRODUCT_SWITCH:
        target = catalog.product(ln.product_code)
        if not target.supported:
            raise RuleViolation(f"{target.name} can no longer be bought", reason="PRODUCT_NOT_SUPPORTED")
        if target.code == sub.product_code:
            raise RuleViolation(f"the subscription already is {target.name}", reason="NOTHING_TO_CHANGE")
        check_switch(sub, target.shutoff_policy, now)
        changed = replace(sub, pending_product_code=target.code)
    else:
        check_renewal(sub, now)
        changed = replace(
            sub,
            pending_term=ln.term if ln.term is not None else sub.pending_term,
            renewal_seats=ln.seats or sub.renewal_seats,
        )
    on_partner = replace(changed, channel=Channel.PARTNER_QUOTE, partner_name=q.partner)
    out = renew_term(on_partner, catalog, now, reason="renewed by quote")
    new = replace(out.subscription, auto_renew=True, payment_method_id=payment_method_id)
    return Outcome(new, _tagged(q, out.lines), out.transitions)


def _added_seats(q: Quote, sub: Subscription, seats: int, now: datetime, payment_method_id: str) -> Outcome:
    """Co-termed and prorated as in §3: per-seat price x seats x days left / days in the term."""
    require_open(sub, "quote added seats")
    if sub.stage is not Stage.ACTIVE or sub.access_until is not None:
        raise RuleViolation("seats are added to an active subscription only", reason="STAGE_NOT_ALLOWED")
    require_before_renewal(sub, now, "quote added seats")
    today = sub.today(now)
    days_left = dates.days_between(today, sub.renewal_date)
    amount = prorate(sub.unit_price, seats, days_left, sub.term_days, sub.currency)
    line = OrderLine(
        description=f"{sub.product_name}: {seats} seat(s) added, co-termed to {sub.renewal_date.isoformat()}",
        quantity=seats,
        unit_price=sub.unit_price,
        currency=sub.currency,
        amount=amount,
        period_start_date=today,
        period_end_date=sub.renewal_date,
        subscription_id=sub.subscription_id,
        prorated_days=days_left,
        term_days=sub.term_days,
        term_start_date=sub.current_period_start_date,
        term_end_date=sub.term_end_date,
    )
    new = replace(
        sub,
        seats=sub.seats + seats,
        renewal_seats=sub.renewal_seats + seats,
        payment_method_id=payment_method_id,
    )
    return Outcome(new, _tagged(q, [line]))


def _extension(
    q: Quote, sub: Subscription, target: Subscription, now: datetime, payment_method_id: str
) -> Outcome:
    """Extended to `target`'s renewal date (alignment, rules §3): the extra days of all its seats, prorated
    over the days of its term as bought (a day costs the same before and after the extension). The term's
    start stays; the term as bought is kept (`aligned_from_*`) for the prorations of the rest of the term."""
    for s, action in ((sub, "quote an extension"), (target, "align to it")):
        require_open(s, action)
        if s.stage is not Stage.ACTIVE or s.access_until is not None:
            raise RuleViolation("only active subscriptions are aligned", reason="STAGE_NOT_ALLOWED")
    require_before_renewal(sub, now, "quote an extension")
    if sub.term is not target.term:
        raise RuleViolation(
            "only subscriptions with the same term length can be aligned", reason="ALIGN_TERM_MISMATCH"
        )
    if target.currency != sub.currency:
        raise RuleViolation(
            "only subscriptions in the same currency can be aligned", reason="ALIGN_PAYMENT_METHOD_MISMATCH"
        )
    if target.renewal_date <= sub.renewal_date:
        raise RuleViolation(
            f"an extension moves the renewal date later: {sub.renewal_date.isoformat()} is not before "
            f"{target.renewal_date.isoformat()}",
            reason="NOTHING_TO_CHANGE",
        )
    extended, line = extend_to(sub, target)
    new = replace(extended, payment_method_id=payment_method_id)
    return Outcome(new, _tagged(q, [line]))
