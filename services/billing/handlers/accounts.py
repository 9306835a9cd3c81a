"""Accounts as billing sees them: billing profiles and their buyer, payment methods, payers."""

from __future__ import annotations

from collections.abc import Sequence

from services.billing import events
from services.billing.adapters.tables import PayerRow, PaymentMethodRow, ProfileRow
from services.billing.adapters.uow import BillingUnitOfWork
from services.billing.domain.access import Caller, buyer_after_profile, require_role
from services.billing.domain.commands import ProfileInput
from services.billing.domain.gateway import PaymentGateway, normalize_email
from services.billing.domain.invoice import local_date
from services.billing.domain.model import Address, Channel, MethodType, TaxStatus
from services.billing.domain.payers import check_new_payer
from services.billing.domain.payment_rules import Eligibility, eligibility
from services.billing.domain.tax import decide_tax
from services.billing.domain.vat import normalize_vat_id
from services.billing.handlers import dunning
from services.billing.handlers.common import require, usable_method
from shared.auth.policy import BUYER, PAYER, PRIMARY_ADMIN
from shared.db import Database, new_id
from shared.errors import InvalidInput, NotFound
from tenure.common.v1 import common_pb2

# --- accounts and their buyer ---------------------------------------------------------------------


def enter_account(
    uow: BillingUnitOfWork, account_id: str, caller: Caller, allowed: tuple[str, ...], what: str
) -> bool:
    """Lock the account for this unit of work; True when `caller` (a person) opens it now.

    The permission table let a person without a role in because the account had no team. Under the
    lock that is checked again: when someone else opened it meanwhile, the person goes on only with a
    role the table would have accepted (a stranger gets NOT_FOUND, as from the table)."""
    uow.lock_key(f"account:{account_id}")
    if not caller.is_person:
        return False
    roles = uow.members.roles(account_id, caller.email)
    if roles & set(allowed):
        return False
    if not uow.members.known(account_id):
        return True
    require_role(roles, allowed, account_id, what)
    return False


def open_account(
    uow: BillingUnitOfWork, prof: ProfileRow, buyer_email: str, *, announce: bool = True
) -> None:
    """Make `buyer_email` the account's buyer and primary admin here, in this transaction (so they can act
    at once), and (`announce`) tell entitlement, which builds the team and echoes the roles back.

    A payment method added before the first order does not announce the account: it knows neither the
    buyer's name nor language, and the order that follows (or a billing profile) opens the team with them
    (rules §7: an account comes into being with its first order or billing profile)."""
    for role in (BUYER, PRIMARY_ADMIN):
        uow.members.grant(prof.account_id, buyer_email, role)
    prof.buyer_email = buyer_email
    if announce:
        events.account_opened(uow, prof.account_id, buyer_email, prof.name, prof.language)


def record_order_buyer(uow: BillingUnitOfWork, prof: ProfileRow, buyer_email: str) -> None:
    """An order on an account billing knows no buyer of: subscription opened the account with this
    order, so its buyer is the account's buyer and primary admin here too (entitlement, told by
    subscription, builds the team)."""
    if not buyer_email.strip() or uow.members.buyer(prof.account_id):
        return
    uow.lock_key(f"account:{prof.account_id}")
    if uow.members.buyer(prof.account_id):
        return
    email = normalize_email(buyer_email, "buyer_email")
    for role in (BUYER, PRIMARY_ADMIN):
        uow.members.grant(prof.account_id, email, role)
    prof.buyer_email = email


# --- billing profiles ---------------------------------------------------------------------------


def upsert_profile(uow: BillingUnitOfWork, cmd: ProfileInput, caller: Caller) -> ProfileRow:
    """Create or change the billing profile. The first profile of an account without a team opens it
    (`buyer_after_profile` says who its buyer is); the buyer of an account that has one never changes
    here: it follows entitlement's role events (`role_changed`)."""
    account_id = require(cmd.account_id, "account_id")
    requested = normalize_email(cmd.buyer_email, "buyer_email") if cmd.buyer_email.strip() else ""
    country = (cmd.address.country_code or "").strip().upper()
    region = (cmd.address.region or "").strip().upper()
    status = TaxStatus(
        Address(country, region), cmd.tax_exempt, cmd.exemption_certificate.strip(), cmd.exemption_expiry_date
    )
    # Validates the country and region against the rate table (bad input changes nothing).
    decide_tax(status, local_date(uow.now, "UTC"))
    if cmd.tax_exempt and not cmd.exemption_certificate.strip():
        raise InvalidInput(
            "a tax exemption needs the reference of its certificate",
            field="exemption_certificate",
            reason="EXEMPTION_CERTIFICATE_REQUIRED",
        )
    enter_account(uow, account_id, caller, (BUYER,), "change the billing profile")
    current = uow.members.buyer(account_id)
    buyer = buyer_after_profile(current, requested, caller)
    now = uow.now
    row = uow.profiles.get(account_id)
    if row is None:
        row = ProfileRow(account_id=account_id, create_time=now)
    row.buyer_email = buyer or row.buyer_email
    row.name = cmd.name.strip()
    row.language = (cmd.language or row.language or "en").strip()
    row.country_code = country
    row.region = region
    row.city = cmd.address.city.strip()
    row.postal_code = cmd.address.postal_code.strip()
    row.line1 = cmd.address.line1.strip()
    row.line2 = cmd.address.line2.strip()
    row.tax_id = normalize_vat_id(country, cmd.tax_id)  # format and check digits (rules §5 Tax)
    row.tax_exempt = cmd.tax_exempt
    row.exemption_certificate = cmd.exemption_certificate.strip()
    row.exemption_expiry_date = cmd.exemption_expiry_date
    row.update_time = now
    if buyer and not current:
        open_account(uow, row, buyer)
    uow.profiles.save(row)
    return row


def get_profile(db: Database, account_id: str) -> ProfileRow:
    with db.reading() as uow:
        return uow.profiles.require(account_id)


def role_changed(uow: BillingUnitOfWork, event) -> None:
    """`entitlement.role_changed`: keep the projection of the teams, and the profile's buyer with it (an
    operator's ChangeBuyer grants the new buyer; the grant is what billing follows)."""
    change = event.role_changed
    uow.members.apply_role_changed(change)
    if not change.granted or common_pb2.Role.Name(change.role) != f"ROLE_{BUYER}":
        return
    prof = uow.profiles.get(change.account_id)
    email = change.email.strip().lower()
    if prof is not None and prof.buyer_email != email:
        prof.buyer_email = email
        prof.update_time = uow.now
        uow.profiles.save(prof)


def mark_prepay_only(uow: BillingUnitOfWork, account_id: str, reason: str) -> ProfileRow:
    account_id = require(account_id, "account_id")
    now = uow.now
    row = uow.profiles.get(account_id)
    if row is None:
        row = ProfileRow(account_id=account_id, create_time=now, update_time=now)
    if not row.prepay_only:
        row.prepay_only = True
        row.prepay_only_reason = reason.strip() or "a subscription was cancelled for an unpaid invoice"
        row.update_time = now
    uow.profiles.save(row)
    return row


# --- payment methods ----------------------------------------------------------------------------


def add_payment_method(
    uow: BillingUnitOfWork,
    gateway: PaymentGateway,
    account_id: str,
    method: MethodType | None,
    card_number: str,
    paypal_email: str,
    caller: Caller,
) -> PaymentMethodRow:
    """Store a payment method. A person's first one on an account without a team opens the account
    with them as its buyer (and a billing profile naming them, filled in later)."""
    account_id = require(account_id, "account_id")
    row = PaymentMethodRow(
        payment_method_id=new_id("pm"), account_id=account_id, create_time=uow.now, type=""
    )
    if method == MethodType.CARD:
        card = gateway.tokenize_card(card_number)
        row.type, row.token, row.last4, row.brand = method.value, card.token, card.last4, card.brand
    elif method == MethodType.PAYPAL:
        email = normalize_email(paypal_email, "paypal_email")
        row.type, row.token, row.paypal_email = method.value, gateway.tokenize_paypal(email), email
    elif method == MethodType.INVOICE:
        row.type = method.value
    else:
        raise InvalidInput("type must be card, PayPal or invoice", field="type")
    if enter_account(uow, account_id, caller, (BUYER, PAYER), "add payment methods"):
        prof = uow.profiles.get(account_id)
        if prof is None:
            prof = ProfileRow(account_id=account_id, create_time=uow.now, update_time=uow.now)
        open_account(uow, prof, normalize_email(caller.email), announce=False)
        uow.profiles.save(prof)
    uow.payment_methods.save(row)
    dunning.retry_with_new_method(uow, gateway, row, uow.now)  # unpaid renewals try the new method now
    return row


def remove_payment_method(
    uow: BillingUnitOfWork, account_id: str, payment_method_id: str
) -> PaymentMethodRow:
    row = uow.payment_methods.require(payment_method_id)
    if row.account_id != account_id or row.removed:
        raise NotFound(
            f"no payment method {payment_method_id!r} on this account", reason="PAYMENT_METHOD_NOT_FOUND"
        )
    row.removed = True
    uow.payment_methods.save(row)
    return row


def list_payment_methods(db: Database, account_id: str) -> Sequence[PaymentMethodRow]:
    with db.reading() as uow:
        return uow.payment_methods.of_account(account_id)


def check_payment_method(
    db: Database,
    account_id: str,
    payment_method_id: str,
    method: MethodType | None,
    channel: Channel | None,
    quote: bool,
) -> Eligibility:
    account_id = require(account_id, "account_id")
    with db.reading() as uow:
        if payment_method_id:
            method = MethodType(usable_method(uow, account_id, payment_method_id).type)
        if method is None:
            raise InvalidInput("give a payment_method_id or a type", field="type")
        prof = uow.profiles.get(account_id)
        return eligibility(
            method,
            prepay_only=bool(prof and prof.prepay_only),
            quote=quote,
            channel=channel,
            invoice_paid_subscriptions=uow.invoices.invoice_paid_subscriptions(account_id)
            if method == MethodType.INVOICE
            else set(),
        )


# --- payers -------------------------------------------------------------------------------------


def add_payer(
    uow: BillingUnitOfWork, account_id: str, email: str, name: str, language: str, caller: Caller
) -> PayerRow:
    account_id = require(account_id, "account_id")
    # Serialize payer changes of one account, so two concurrent additions cannot both be the fifth.
    uow.payers.lock_account(account_id)
    existing = [p.email for p in uow.payers.of_account(account_id)]
    value = check_new_payer(existing, email)
    row = PayerRow(
        account_id=account_id,
        email=value,
        name=name.strip(),
        language=(language or "en").strip(),
        create_time=uow.now,
    )
    uow.payers.add(row)
    events.payer_changed(uow, row, granted=True, actor_email=caller.label)
    return row


def remove_payer(uow: BillingUnitOfWork, account_id: str, email: str, caller: Caller) -> PayerRow:
    value = normalize_email(email)
    row = uow.payers.get(require(account_id, "account_id"), value)
    if row is None:
        raise NotFound(f"{value} is not a payer of this account", reason="PAYER_NOT_FOUND")
    uow.payers.remove(row)
    events.payer_changed(uow, row, granted=False, actor_email=caller.label)
    return row


def list_payers(db: Database, account_id: str) -> Sequence[PayerRow]:
    with db.reading() as uow:
        return uow.payers.of_account(account_id)
