"""Previews of orders and of the payments to come (rules §3, §5): which orders billing splits into
installments, the split itself, and the renewal a subscription will get at its renewal date.

The split is billing's rule, stated here so a preview can show it without asking billing to issue anything:
a 3-year term bought, renewed or upgraded to on or after 2024-09-16 is billed in three annual parts, due on
the term start and its first and second anniversaries; the subtotal is split equally to the minor unit (the
first part carries the remainder); the later parts share their amount among the order's lines in proportion
(largest remainder) and the first takes what is left of each line. 1310.00 -> 436.68, 436.66, 436.66.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from services.subscription.domain import dates
from services.subscription.domain.aggregate import INSTALLMENTS_FROM, Outcome, Subscription
from services.subscription.domain.catalog import Catalog
from services.subscription.domain.model import OrderLine, Term
from services.subscription.domain.renewals import renew_term
from shared.money import installment_shares, split_evenly

INSTALLMENT_COUNT = 3
#: the order kinds billing splits into installments (a trial conversion is invoiced as a new purchase)
INSTALLMENT_KINDS = frozenset({"new", "trial_converted", "renewal", "upgrade"})


@dataclass(frozen=True)
class Part:
    """One installment of an order: its number, due date and the order's lines with their share."""

    sequence: int
    count: int
    due_date: date
    lines: list[OrderLine]

    @property
    def subtotal(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), Decimal(0))


def uses_installments(kind: str, term: Term, issue_day: date, lines: list[OrderLine]) -> bool:
    """Whether billing splits this order: a 3-year term of a new purchase, renewal or upgrade issued on or
    after 2024-09-16, with something to pay."""
    amount = sum((ln.amount for ln in lines), Decimal(0))
    return (
        amount > 0
        and term is Term.THREE_YEAR
        and kind in INSTALLMENT_KINDS
        and issue_day >= INSTALLMENTS_FROM
    )


def split(
    lines: list[OrderLine], term_start: date, currency: str, count: int = INSTALLMENT_COUNT
) -> list[Part]:
    """The installments of an order with these lines, due on `term_start` and its anniversaries (29 February
    falls on 28 February)."""
    amounts = [ln.amount for ln in lines]
    parts = split_evenly(sum(amounts, Decimal(0)), count, currency)
    out = []
    for k, shares in enumerate(installment_shares(amounts, parts, currency)):
        share_lines = [
            replace(ln, amount=share, description=f"{ln.description} (installment {k + 1} of {count})")
            for ln, share in zip(lines, shares, strict=True)
        ]
        out.append(Part(k + 1, count, dates.add_months(term_start, 12 * k), share_lines))
    return out


@dataclass(frozen=True)
class Renewal:
    """The renewal a subscription will get at its renewal date, as the sweep will order it."""

    before: Subscription
    outcome: Outcome
    applied: tuple[str, ...]  # the pending changes it applies: "term", "product", "seats"

    @property
    def subscription(self) -> Subscription:
        return self.outcome.subscription

    @property
    def lines(self) -> list[OrderLine]:
        return self.outcome.lines


def upcoming_renewal(sub: Subscription, catalog: Catalog, now: datetime) -> Renewal:
    """The next renewal with the pending term, product and renewal seats applied (`renew_term`, the very
    function the sweep renews with)."""
    return Renewal(sub, renew_term(sub, catalog, now, reason="renewed"), pending_changes(sub))


def pending_changes(sub: Subscription) -> tuple[str, ...]:
    """What the next renewal changes: the term, the product, the seat count."""
    applied = []
    if sub.pending_term is not None and sub.pending_term is not sub.term:
        applied.append("term")
    if sub.pending_product_code and sub.pending_product_code != sub.product_code:
        applied.append("product")
    if sub.renewal_seats != sub.seats:
        applied.append("seats")
    return tuple(applied)
