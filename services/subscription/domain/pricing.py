"""Pricing rules: list vs renewal price (rules §1, §3) and proration by days (rules §3, §6).

- A new purchase (and a trial conversion, an upgrade, a purchase after cancellation) pays the list price.
- A renewal — on time, early inside the 90-day window, or a reinstatement while Expired or Suspended —
  pays the renewal price of the term it renews into (a term change to 3-year renewed before expiry pays
  the 3-year renewal price). Monthly terms have no renewal discount: their renewal price is the list price.
- Prorated amounts are per-seat price x seats x days / days in the term, days counted as calendar dates
  in the subscription's zone, rounded half up once at the line total.
"""

from __future__ import annotations

from decimal import Decimal

from shared.errors import InvalidInput
from shared.money import round_money


def line_amount(unit_price: Decimal, quantity: int, currency: str) -> Decimal:
    """Full-term line total, rounded once."""
    return round_money(unit_price * quantity, currency)


def prorate(unit_price: Decimal, seats: int, days: int, term_days: int, currency: str) -> Decimal:
    """unit_price x seats x days / term_days, rounded half up once.

    470.00 x 3 x 191 / 365 = 737.84 (3 seats added on 2024-12-01 to a term 2024-06-10 -> 2025-06-10).
    """
    if term_days <= 0:
        raise InvalidInput("a term has at least one day")
    if days < 0:
        raise InvalidInput("days to prorate cannot be negative")
    return round_money(unit_price * seats * days / term_days, currency)
