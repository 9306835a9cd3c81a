"""Payers: the buyer names up to five payer e-mail addresses per billing account."""

from __future__ import annotations

from collections.abc import Collection

from services.billing.domain.gateway import normalize_email
from shared.errors import AlreadyExists, LimitReached

PAYER_LIMIT = 5


def check_new_payer(existing: Collection[str], email: str, limit: int = PAYER_LIMIT) -> str:
    """The normalized e-mail of a new payer; refuses a repeat and the sixth payer."""
    value = normalize_email(email)
    if value in {e.lower() for e in existing}:
        raise AlreadyExists(f"{value} is already a payer of this account", reason="PAYER_ALREADY_EXISTS")
    if len(existing) >= limit:
        raise LimitReached(
            f"a billing account can have at most {limit} payers; remove one before adding {value}",
            reason="PAYER_LIMIT_REACHED",
            metadata={"limit": str(limit)},
        )
    return value
