"""Document numbers: per year, sequential, without gaps, such as INV-2025-000001 and CN-2025-000001.

The sequence itself is a counter row per (series, year) that the issuing transaction increments, so a
number is only used when the document it names is committed.
"""

from __future__ import annotations

import re

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"

_NUMBER = re.compile(r"^([A-Z]+)-(\d{4})-(\d{6,})$")


def format_number(series: str, year: int, sequence: int) -> str:
    if sequence < 1:
        raise ValueError("sequences start at 1")
    return f"{series}-{year:04d}-{sequence:06d}"


def parse_number(number: str) -> tuple[str, int, int]:
    m = _NUMBER.match(number)
    if not m:
        raise ValueError(f"not a document number: {number!r}")
    return m.group(1), int(m.group(2)), int(m.group(3))


def is_gapless(numbers: list[str]) -> bool:
    """True when the numbers of each (series, year) are exactly 1..n."""
    seen: dict[tuple[str, int], list[int]] = {}
    for n in numbers:
        series, year, seq = parse_number(n)
        seen.setdefault((series, year), []).append(seq)
    return all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in seen.values())
