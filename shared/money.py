"""Exact money: Decimal amounts rounded half up to the currency's minor unit.

Floats are refused everywhere. `to_proto`/`from_proto` convert to and from
`google.type.Money` (units + nanos).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from shared.errors import InvalidInput

if TYPE_CHECKING:
    from google.type import money_pb2

# ISO 4217 minor units of the currencies Tenure prices in (and a few more).
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "NOK": 2,
    "SEK": 2,
    "DKK": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
}

NANOS = Decimal(1_000_000_000)


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InvalidInput(f"unknown currency {currency!r}", field="currency_code") from None


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Decimal from an int, a Decimal or a decimal string; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("money is never a float; pass a Decimal, an int or a string")
    if isinstance(value, Decimal):
        return value
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"not a decimal amount: {value!r}") from None
    if not d.is_finite():
        raise InvalidInput(f"not a finite amount: {value!r}")
    return d


def round_money(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round half up to the currency's minor unit."""
    return to_decimal(amount).quantize(quantum(currency), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float):
            raise TypeError("money is never a float")
        object.__setattr__(self, "amount", to_decimal(self.amount))

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(round_money(amount, currency), currency)

    def rounded(self) -> Money:
        return Money(round_money(self.amount, self.currency), self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidInput(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("money is never multiplied by a float")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def split_evenly(total: Decimal, parts: int, currency: str) -> list[Decimal]:
    """Split `total` into `parts` amounts of the minor unit; the first carries the remainder.

    1310.00 / 3 -> [436.68, 436.66, 436.66].
    """
    if parts < 1:
        raise InvalidInput("parts must be at least 1")
    q = quantum(currency)
    total = round_money(total, currency)
    units = int((total / q).to_integral_value())
    base, rem = divmod(units, parts)
    amounts = [Decimal(base) * q for _ in range(parts)]
    amounts[0] += Decimal(rem) * q
    return [a.quantize(q) for a in amounts]


def allocate(amount: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """Share `amount` among lines in proportion to their amounts, to the minor unit (largest remainder)."""
    q = quantum(currency)
    units = int(amount / q)
    weight_units = [int(w / q) for w in weights]
    whole = sum(weight_units)
    if whole == 0:
        raise InvalidInput("lines that sum to zero cannot be allocated")
    shares = []
    fractions = []
    for i, w in enumerate(weight_units):
        floor, rem = divmod(units * w, whole)
        shares.append(floor)
        fractions.append((rem, -i))
    left = units - sum(shares)
    for _, neg_i in sorted(fractions, reverse=True)[:left]:
        shares[-neg_i] += 1
    return [Decimal(s) * q for s in shares]


def installment_shares(
    line_amounts: list[Decimal], parts: list[Decimal], currency: str
) -> list[list[Decimal]]:
    """Each line's share of each installment (`parts`: the installments' amounts, first carrying the
    remainder). The later installments share their amount among the lines in proportion; the first takes
    what is left of each line, so every line is billed exactly once in total (rules §5)."""
    later = [allocate(a, line_amounts, currency) for a in parts[1:]]
    first = [line_amounts[i] - sum(p[i] for p in later) for i in range(len(line_amounts))]
    return [first, *later]


def to_proto_fields(amount: Decimal, currency: str) -> tuple[str, int, int]:
    """(currency_code, units, nanos) for google.type.Money; signs of units and nanos agree."""
    d = round_money(amount, currency)
    units = int(d)  # truncates toward zero
    nanos = int(((d - units) * NANOS).to_integral_value())
    return currency, units, nanos


def from_proto_fields(currency: str, units: int, nanos: int) -> Decimal:
    if (units > 0 and nanos < 0) or (units < 0 and nanos > 0):
        raise InvalidInput("money units and nanos must have the same sign")
    if abs(nanos) >= 1_000_000_000:
        raise InvalidInput("money nanos out of range")
    d = Decimal(units) + Decimal(nanos) / NANOS
    q = quantum(currency)
    if d != d.quantize(q, rounding=ROUND_HALF_UP):
        raise InvalidInput(f"{currency} amounts have {minor_unit(currency)} decimals at most")
    return d.quantize(q)


def to_proto(amount: Decimal, currency: str) -> money_pb2.Money:
    """google.type.Money for an amount (imported lazily so domain code stays proto-free)."""
    from google.type import money_pb2

    code, units, nanos = to_proto_fields(amount, currency)
    return money_pb2.Money(currency_code=code, units=units, nanos=nanos)


def from_proto(msg: money_pb2.Money) -> Money:
    if not msg.currency_code:
        raise InvalidInput("money needs a currency_code")
    return Money(from_proto_fields(msg.currency_code, msg.units, msg.nanos), msg.currency_code)
