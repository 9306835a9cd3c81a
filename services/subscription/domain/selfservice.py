"""Who may change a subscription online (rules §3).

Self-service is only for direct online purchases in the US, Canada, Europe or Australia, bought in
2016 or later, of a product still supported. Everything else is refused with FAILED_PRECONDITION and a
message that says whom to contact: the partner or reseller that sold it, or support.
"""

from __future__ import annotations

from datetime import date

from services.subscription.domain.model import Channel
from shared.errors import RuleViolation

# European countries (ISO 3166-1 alpha-2): EU, EEA, the UK, Switzerland and the rest of geographic Europe.
EUROPE: frozenset[str] = frozenset(
    """AD AL AT BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GI GR HR HU IE IM IS IT JE GG LI LT LU LV MC
    MD ME MK MT NL NO PL PT RO RS SE SI SK SM UA VA XK AX SJ""".split()
)
SELF_SERVICE_COUNTRIES: frozenset[str] = frozenset({"US", "CA", "AU"}) | EUROPE
FIRST_SELF_SERVICE_YEAR = 2016
SUPPORT = "Tenure support"


def self_service_refusal(
    *,
    action: str,
    channel: Channel,
    partner_name: str,
    country_code: str,
    start_date: date,
    product_name: str,
    product_supported: bool,
) -> RuleViolation | None:
    """The refusal for `action` ("add seats", …) on this purchase, or None when self-service is open."""
    if channel.is_partner:
        seller = "reseller" if channel is Channel.RESELLER else "partner"
        who = f"your {seller} {partner_name}" if partner_name else f"the {seller} that sold it"
        return RuleViolation(
            f"cannot {action} online: this subscription was bought through {who}; contact "
            f"{partner_name or 'your ' + seller} to {action}",
            reason="SELF_SERVICE_PARTNER",
            metadata={"contact": seller, "partner_name": partner_name},
        )
    if channel is Channel.LEGACY:
        return RuleViolation(
            f"cannot {action} online: this is a legacy purchase (maintenance plan or old web store); "
            f"contact {SUPPORT} to {action}",
            reason="SELF_SERVICE_LEGACY",
            metadata={"contact": "support"},
        )
    if country_code.upper() not in SELF_SERVICE_COUNTRIES:
        return RuleViolation(
            f"cannot {action} online: self-service is only for purchases in the US, Canada, Europe or "
            f"Australia and this one was made in {country_code.upper()}; contact {SUPPORT} to {action}",
            reason="SELF_SERVICE_REGION",
            metadata={"contact": "support"},
        )
    if start_date.year < FIRST_SELF_SERVICE_YEAR:
        return RuleViolation(
            f"cannot {action} online: self-service is only for purchases from {FIRST_SELF_SERVICE_YEAR} on "
            f"and this one was bought in {start_date.year}; contact {SUPPORT} to {action}",
            reason="SELF_SERVICE_PURCHASE_YEAR",
            metadata={"contact": "support"},
        )
    if not product_supported:
        return RuleViolation(
            f"cannot {action} online: {product_name} is no longer supported; contact {SUPPORT} to {action}",
            reason="SELF_SERVICE_PRODUCT_RETIRED",
            metadata={"contact": "support"},
        )
    return None
