"""When the next shutoff stage comes, so that a stage e-mail can say "renew before …".

The durations are a policy table (rules §4): Expired lasts 15 days; Suspended lasts 30 days for
annual and 3-year terms and 15 days for monthly ones; then Cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class ShutoffPolicy:
    expired_days: int = 15
    suspended_days: dict[str, int] = field(
        default_factory=lambda: {"MONTHLY": 15, "ANNUAL": 30, "THREE_YEAR": 30}
    )

    def next_stage_date(self, to_stage: str, term: str, entered: date) -> date | None:
        """The local date the stage entered on `entered` ends; None for stages that do not end."""
        if to_stage == "EXPIRED":
            return entered + timedelta(days=self.expired_days)
        if to_stage == "SUSPENDED":
            days = self.suspended_days.get(term)
            return entered + timedelta(days=days) if days is not None else None
        return None
