"""Who is told what (rules §8), as one table: event type → audience → kind of e-mail.

| recipient | receives |
| buyer  | order confirmation, renewal done, renewal reminders, expiry and each shutoff stage,
|        | co-term seat additions, invoices due, refunds |
| admins | user management (a user given a seat), product access (a new subscription, an upgrade, |
|        | seats added) (and downloads, activation, training) |
| payers | invoices and invoice reminders (7 days before the due date and on it, while unpaid) |
| users  | you have been given access to a product: sign in and download |
| partner | (rules §9) its quote accepted, its quote expired, a subscription it sold renews in 90 days |
| quote's buyer | the quote issued to them, with the quote as a PDF |

Admins get no billing or renewal e-mail unless they are also the buyer; someone who is both buyer
and payer gets one e-mail per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.notification.domain.languages import resolve_language
from services.notification.domain.model import (
    ADMIN_ROLES,
    BILLING_AND_RENEWAL_KINDS,
    ROLE_PRECEDENCE,
    EventFacts,
    Kind,
    Person,
    Planned,
    Role,
    normalize_email,
)
from services.notification.domain.reminders import INVOICE_REMINDER_EVENT, RENEWAL_OPPORTUNITY_EVENT


class Audience(StrEnum):
    BUYER = "BUYER"  # the account's buyer
    ADMINS = "ADMINS"  # primary and secondary admins
    PAYERS = "PAYERS"  # the payers of the invoice (at most five)
    SUBJECT = "SUBJECT"  # the person the event is about (new user, member whose role changed)
    PARTNER = "PARTNER"  # the partner's contact the event names (rules §9)


# The role a recipient gets the mail for, by audience (SUBJECT: see `_subject_role`).
_AUDIENCE_ROLE: dict[Audience, Role] = {
    Audience.BUYER: Role.BUYER,
    Audience.PAYERS: Role.PAYER,
}

Condition = Callable[[EventFacts], bool]


def _always(_: EventFacts) -> bool:
    return True


def _stage_is(stage: str, *, unless_reason: Iterable[str] = ()) -> Condition:
    excluded = frozenset(unless_reason)

    def check(event: EventFacts) -> bool:
        return event.to_stage == stage and event.reason not in excluded

    return check


_TEAM_ROLES = frozenset({Role.BUYER.value, Role.PRIMARY_ADMIN.value, Role.SECONDARY_ADMIN.value})


def _team_change_made_by_someone(event: EventFacts) -> bool:
    """A change of the account team (buyer, admins) that someone made. Role changes without an actor
    are the automatic set-up of a new account team (the first buyer becomes buyer and primary admin);
    the order confirmation already tells about that. A person becoming or ceasing to be a user (their
    first seat, their last one) or a payer is told by the seat e-mail and by billing: no role mail."""
    return bool(event.facts.actor_email) and event.facts.role in _TEAM_ROLES


def _change_is(*changes: str) -> Condition:
    wanted = frozenset(changes)

    def check(event: EventFacts) -> bool:
        return event.change in wanted

    return check


@dataclass(frozen=True, slots=True)
class Route:
    event_type: str
    kind: Kind
    audiences: frozenset[Audience]
    when: Condition = _always


def _route(event_type: str, kind: Kind, *audiences: Audience, when: Condition = _always) -> Route:
    return Route(event_type, kind, frozenset(audiences), when)


B, A, P, S = Audience.BUYER, Audience.ADMINS, Audience.PAYERS, Audience.SUBJECT
PT = Audience.PARTNER

ROUTES: tuple[Route, ...] = (
    _route("subscription.created", Kind.ORDER_CONFIRMATION, B),
    _route("subscription.created", Kind.PRODUCT_ACCESS, A),
    _route("subscription.renewed", Kind.RENEWAL_CONFIRMATION, B),
    _route("subscription.renewal_reminder", Kind.RENEWAL_REMINDER, B),
    _route("subscription.stage_changed", Kind.SUBSCRIPTION_EXPIRED, B, when=_stage_is("EXPIRED")),
    _route("subscription.stage_changed", Kind.SUBSCRIPTION_SUSPENDED, B, when=_stage_is("SUSPENDED")),
    # A refund and the end of an upgrade's old side have their own mail; no "cancelled" on top.
    _route(
        "subscription.stage_changed",
        Kind.SUBSCRIPTION_CANCELLED,
        B,
        when=_stage_is("CANCELLED", unless_reason=("refunded", "upgraded")),
    ),
    # Every order is confirmed with its number: a trial converted and an alignment are orders too
    # (an alignment of several subscriptions: one mail per subscription extended, each with the order).
    _route(
        "subscription.changed",
        Kind.ORDER_CONFIRMATION,
        B,
        when=_change_is("trial_converted", "aligned"),
    ),
    _route("subscription.seats_added", Kind.SEATS_ADDED, B),
    _route("subscription.seats_added", Kind.PRODUCT_ACCESS, A),
    _route("subscription.upgraded", Kind.UPGRADE_CONFIRMATION, B),
    _route("subscription.upgraded", Kind.PRODUCT_ACCESS, A),
    _route("subscription.refunded", Kind.REFUND_CONFIRMATION, B),
    _route("billing.invoice_issued", Kind.INVOICE_ISSUED, B, P),
    _route("billing.invoice_overdue", Kind.INVOICE_OVERDUE, B, P),
    _route("billing.payment_failed", Kind.PAYMENT_FAILED, B, P),  # dunning: the buyer and the payers
    # scheduled by this service from billing.invoice_issued (domain/reminders.py), dropped when paid
    _route(INVOICE_REMINDER_EVENT, Kind.INVOICE_REMINDER, B, P),
    _route("entitlement.role_changed", Kind.ROLE_CHANGED, A, S, when=_team_change_made_by_someone),
    _route("entitlement.seat_assigned", Kind.SEAT_ASSIGNED, S),
    _route("entitlement.seat_assigned", Kind.USER_ASSIGNED, A),  # user management
    # partner quotes (rules §9): the quote goes to the buyer it names (the subject), the rest to the partner
    _route("subscription.quote_issued", Kind.QUOTE_ISSUED, S),
    _route("subscription.quote_accepted", Kind.QUOTE_ACCEPTED, PT),
    _route("subscription.quote_expired", Kind.QUOTE_EXPIRED, PT),
    # scheduled by this service from a partner's sale or renewal (domain/reminders.py)
    _route(RENEWAL_OPPORTUNITY_EVENT, Kind.RENEWAL_OPPORTUNITY, PT),
)

ROUTED_EVENT_TYPES: frozenset[str] = frozenset(r.event_type for r in ROUTES)

#: The events this service makes itself (invoice reminders, partners' renewal opportunities).
OWN_EVENT_TYPES: frozenset[str] = frozenset({INVOICE_REMINDER_EVENT, RENEWAL_OPPORTUNITY_EVENT})

#: The routed events other services send.
CONSUMED_EVENT_TYPES: frozenset[str] = ROUTED_EVENT_TYPES - OWN_EVENT_TYPES


def routes_for(event: EventFacts) -> list[Route]:
    return [r for r in ROUTES if r.event_type == event.event_type and r.when(event)]


# ---------------------------------------------------------------------------------------------
# The people of an account


@dataclass(frozen=True, slots=True)
class Directory:
    """The people of one account, merged from every source by e-mail address."""

    people: tuple[Person, ...]

    def get(self, email: str) -> Person | None:
        email = normalize_email(email)
        return next((p for p in self.people if p.email == email), None)

    def with_role(self, roles: Iterable[Role]) -> list[Person]:
        wanted = frozenset(roles)
        return [p for p in self.people if p.roles & wanted]

    @property
    def buyer(self) -> Person | None:
        found = self.with_role({Role.BUYER})
        return found[0] if found else None


def _merge(a: Person, b: Person) -> Person:
    return Person(
        email=a.email,
        name=a.name or b.name,
        language=a.language or b.language,
        roles=a.roles | b.roles,
    )


def build_directory(
    members: Iterable[Person] = (),
    payers: Iterable[Person] = (),
    event_buyer: Person | None = None,
    payer_emails: Iterable[str] = (),
) -> Directory:
    """Merge the account team (entitlement), the payers (billing) and the buyer the event names.

    - The team's buyer wins; the event's buyer counts only when the team has none yet (the event
      may arrive before the entitlement service has built the team).
    - With no admin on the team yet, the buyer is the primary admin (rules §7: "the buyer at first").
    - When the event lists the invoice's payers, those are the payers; names and languages come
      from the billing service's list.
    """
    by_email: dict[str, Person] = {}

    def add(person: Person) -> None:
        if not person.email:
            return
        known = by_email.get(person.email)
        by_email[person.email] = _merge(known, person) if known else person

    for m in members:
        add(m)
    team_has_buyer = any(Role.BUYER in p.roles for p in by_email.values())
    team_has_admin = any(p.is_admin for p in by_email.values())
    if event_buyer is not None and event_buyer.email and not team_has_buyer:
        roles = {Role.BUYER} | ({Role.PRIMARY_ADMIN} if not team_has_admin else set())
        add(Person(event_buyer.email, event_buyer.name, event_buyer.language, frozenset(roles)))

    listed = {normalize_email(e) for e in payer_emails if e.strip()}
    billing_payers = {p.email: p for p in payers}
    payer_set = listed or set(billing_payers)
    for email in sorted(payer_set):
        known = billing_payers.get(email)
        add(
            Person(
                email,
                known.name if known else "",
                known.language if known else "",
                frozenset({Role.PAYER}),
            )
        )
    # Roles of PAYER held by people not payers of this invoice do not count.
    people = []
    for p in by_email.values():
        held = p.roles if p.email in payer_set else p.roles - {Role.PAYER}
        people.append(Person(p.email, p.name, p.language, held))
    return Directory(tuple(people))


# ---------------------------------------------------------------------------------------------
# Planning


def _audience_people(
    audience: Audience, event: EventFacts, directory: Directory
) -> list[tuple[Person, Role]]:
    if audience is Audience.BUYER:
        buyer = directory.buyer
        return [(buyer, Role.BUYER)] if buyer else []
    if audience is Audience.ADMINS:
        return [(p, _best_role(p.roles & ADMIN_ROLES)) for p in directory.with_role(ADMIN_ROLES)]
    if audience is Audience.PAYERS:
        return [(p, Role.PAYER) for p in directory.with_role({Role.PAYER})]
    if audience is Audience.SUBJECT:
        if event.subject is None or not event.subject.email:
            return []
        known = directory.get(event.subject.email)
        person = _merge(event.subject, known) if known else event.subject
        return [(person, _subject_role(event.subject))]
    if audience is Audience.PARTNER:
        if event.partner is None or not event.partner.email:
            return []  # a partner without a contact (e.g. a sale recorded by an operator) is not written to
        return [(event.partner, Role.PARTNER)]
    raise ValueError(f"unknown audience {audience}")


def _subject_role(subject: Person) -> Role:
    return _best_role(subject.roles) if subject.roles else Role.USER


def _best_role(roles: Iterable[Role]) -> Role:
    held = set(roles)
    return next(r for r in ROLE_PRECEDENCE if r in held)


def plan(event: EventFacts, directory: Directory) -> list[Planned]:
    """The e-mails an event causes: one per (recipient, kind), in a stable order."""
    out: list[Planned] = []
    for route in routes_for(event):
        chosen: dict[str, tuple[Person, set[Role]]] = {}
        for audience in sorted(route.audiences):
            for person, role in _audience_people(audience, event, directory):
                if person.email in chosen:
                    chosen[person.email][1].add(role)
                else:
                    chosen[person.email] = (person, {role})
        for email in sorted(chosen):
            person, roles = chosen[email]
            if route.kind in BILLING_AND_RENEWAL_KINDS and not roles & {Role.BUYER, Role.PAYER}:
                continue  # admins get no billing or renewal mail unless they are the buyer
            out.append(
                Planned(
                    event_id=event.event_id,
                    kind=route.kind,
                    recipient=person,
                    role=_best_role(roles),
                    language=resolve_language(person.language),
                    facts=event.facts.for_recipient(person),
                )
            )
    return out
