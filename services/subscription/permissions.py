"""Who may call each SubscriptionService RPC (rules §7), checked before the servicer runs.

Operators read everything and run the operator actions; a person acts on an account by their role on
its team; anyone signed in may read the catalog and open an account with their first order, as its
buyer (`order_buyer`: only an operator may name someone else).
"""

from __future__ import annotations

from shared.auth.membership import ProjectionDirectory
from shared.auth.policy import (
    ADMINS,
    BUYER,
    OPERATOR,
    PARTNER,
    PAYER,
    PERSON,
    SERVICE,
    ChoiceTarget,
    FieldTarget,
    LookupTarget,
    Resolved,
    rule,
)
from shared.auth.principal import Access
from shared.errors import NotAllowed, NotFound
from shared.grpc.auth import Permissions

SERVICE_NAME = "tenure.subscription.v1.SubscriptionService"
READERS = (BUYER, *ADMINS, OPERATOR, SERVICE)
NOT_FOUND = "SUBSCRIPTION_NOT_FOUND"

TABLE = {
    # catalog
    "ListProducts": rule(PERSON, OPERATOR, SERVICE),
    "ListPrices": rule(PERSON, OPERATOR, SERVICE),
    "SetExchangeRate": rule(OPERATOR),
    "CreateProduct": rule(OPERATOR),  # the managed catalog (rules §10)
    "UpdateProduct": rule(OPERATOR),
    "SetPrice": rule(OPERATOR),
    # orders: the buyer; a person's first order opens the account; an operator may open one for a buyer
    "QuoteOrder": rule(BUYER, OPERATOR, SERVICE, target="quote", opens_account=True),
    "CreateSubscription": rule(BUYER, OPERATOR, target="account", opens_account=True),
    # coming payments carry amounts: the buyer and payers, not the admins (rules §7)
    "ListUpcomingPayments": rule(BUYER, PAYER, OPERATOR, SERVICE, target="account"),
    # reads: the buyer and admins of the account
    "GetSubscription": rule(READERS, PARTNER, target="subscription"),
    "ListSubscriptions": rule(READERS, PERSON, PARTNER, target="account"),
    "GetSelfServiceOptions": rule(READERS, target="subscription"),
    "GetLifecycleHistory": rule(READERS, target="subscription"),
    # changes, renewals and refunds: the buyer only
    "AddSeats": rule(BUYER, target="subscription"),
    "SetRenewalSeats": rule(BUYER, target="subscription"),
    "ChangeTerm": rule(BUYER, target="subscription"),
    "SetAutoRenew": rule(BUYER, target="subscription"),
    "RenewSubscription": rule(BUYER, target="subscription"),
    "AlignRenewalDates": rule(BUYER, target="align"),
    "UpgradeSubscription": rule(BUYER, target="subscription"),
    "ScheduleProductSwitch": rule(BUYER, target="subscription"),
    "ConvertTrial": rule(BUYER, target="subscription"),
    "ChangePaymentMethod": rule(BUYER, target="subscription"),
    "RequestRefund": rule(BUYER, target="subscription"),
    # operations
    "RunLifecycle": rule(OPERATOR, SERVICE),
    "GetClock": rule(PERSON, OPERATOR, SERVICE),
    "AdvanceClock": rule(OPERATOR),
    # partner quotes (rules §9): a partner quotes an account it has quoted or sold to, or a new one; the
    # quote's own partner changes it (the handler hides it from other partners); the buyer named on the
    # quote reads and accepts it (the handler checks the e-mail: to anyone else it does not exist)
    "CreateQuote": rule(PARTNER, target="account", opens_account=True),
    "IssueQuote": rule(PARTNER, target="quote_number"),
    "ReviseQuote": rule(PARTNER, target="quote_number"),
    "GetQuote": rule(PERSON, OPERATOR),
    "AcceptQuote": rule(PERSON),
}

#: The roles whose holders see an account's subscriptions in a ListSubscriptions that names no account.
LISTS = frozenset({BUYER, *ADMINS})


def order_buyer(access: Access | None, buyer_email: str) -> str:
    """The buyer of an order, as its caller may name them. A person orders as themselves: an order that
    names no buyer is theirs, one that names someone else is refused. An operator names anyone."""
    email = buyer_email.strip()
    if access is None or not access.principal.is_person:
        return email
    me = access.principal.email
    if not email:
        return me
    if email.lower() != me.lower():
        raise NotAllowed(
            f"you are signed in as {me}, so an order you place names you as its buyer, not {email}; "
            "only an operator may order for someone else",
            reason="PERMISSION_DENIED",
        )
    return email


class PartnerDirectory:
    """The account teams, and which partners have quoted (or sold to) each account (rules §9)."""

    def __init__(self, db, teams: ProjectionDirectory) -> None:
        self.db = db
        self.teams = teams

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        return self.teams.roles(account_id, email)

    def known(self, account_id: str) -> bool:
        return self.teams.known(account_id)

    def partner_knows(self, account_id: str, partner: str) -> bool:
        with self.db.reading() as uow:
            return bool(uow.quotes.partner_knows(account_id, partner))


def permissions(db, directory: ProjectionDirectory) -> Permissions:
    def accounts_of(subscription_ids: list[str]) -> dict[str, str]:
        with db.reading() as uow:
            return uow.subscriptions.accounts_of(subscription_ids)

    def account_of(subscription_id: str) -> str | None:
        return accounts_of([subscription_id]).get(subscription_id)

    subscription = LookupTarget("subscription_id", "subscription", NOT_FOUND, account_of)

    def quote_account_of(quote_number: str) -> str | None:
        with db.reading() as uow:
            found: str | None = uow.quotes.account_of(quote_number)
            return found

    quote_number = LookupTarget("quote_number", "quote", "QUOTE_NOT_FOUND", quote_account_of)
    account = FieldTarget("account_id")

    class Align:
        """AlignRenewalDates names an account and subscriptions of it. A subscription of another
        account is, to a person, one that does not exist (never a hint that it does)."""

        def __call__(self, request) -> Resolved:
            resolved = account(request)
            ids = sorted({sid.strip() for sid in request.subscription_ids if sid.strip()})
            if not resolved.account_id or not ids:
                return resolved
            accounts = accounts_of(ids)
            for sid in ids:
                if accounts.get(sid) != resolved.account_id:
                    return Resolved(
                        resolved.account_id, NotFound(f"subscription {sid} not found", reason=NOT_FOUND)
                    )
            return resolved

        def not_found(self, request):
            return account.not_found(request)

    align = Align()

    def quoted(request):
        """QuoteOrder names an account (create, align) or a subscription (the other orders)."""
        which = request.WhichOneof("order")
        if not which:
            return None
        inner = getattr(request, which)
        if hasattr(inner, "subscription_ids"):
            return align, inner
        return (account, inner) if hasattr(inner, "account_id") else (subscription, inner)

    return Permissions(
        SERVICE_NAME,
        TABLE,
        {
            "account": account,
            "subscription": subscription,
            "align": align,
            "quote": ChoiceTarget(quoted),
            "quote_number": quote_number,
        },
        PartnerDirectory(db, directory),
    )
