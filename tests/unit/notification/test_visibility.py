"""Rules §7: each person sees the e-mail sent to them; the buyer all of the account's mail; admins the
account's mail of the kinds routed to admins (§8); operators and services everything."""

from __future__ import annotations

from services.notification.domain.model import BILLING_AND_RENEWAL_KINDS, Kind
from services.notification.domain.visibility import (
    ADMIN_ROUTED_KINDS,
    EVERYTHING,
    NOBODY,
    person_reader,
)

A, B = "acct_a", "acct_b"


def test_the_kinds_routed_to_admins_are_product_access_and_team_changes_and_no_billing() -> None:
    assert ADMIN_ROUTED_KINDS == {Kind.PRODUCT_ACCESS, Kind.ROLE_CHANGED, Kind.USER_ASSIGNED}
    assert not ADMIN_ROUTED_KINDS & BILLING_AND_RENEWAL_KINDS


def test_the_buyer_sees_all_of_their_accounts_mail_and_only_their_own_elsewhere() -> None:
    buyer = person_reader("Kari@Example.com", A, {"BUYER"})
    assert all(buyer.sees(A, "pia@example.com", kind) for kind in Kind)
    assert not buyer.sees(B, "pia@example.com", Kind.INVOICE_ISSUED)
    assert buyer.sees(B, "KARI@example.com", Kind.INVOICE_ISSUED)  # sent to her


def test_an_admin_sees_admin_mail_of_the_account_and_no_billing_mail_to_others() -> None:
    admin = person_reader("ola@example.com", A, {"SECONDARY_ADMIN"})
    assert admin.sees(A, "kari@example.com", Kind.PRODUCT_ACCESS)
    assert admin.sees(A, "anne@example.com", Kind.ROLE_CHANGED)
    assert not admin.sees(A, "kari@example.com", Kind.RENEWAL_REMINDER)
    assert not admin.sees(A, "per@example.com", Kind.SEAT_ASSIGNED)
    assert not admin.sees(B, "kari@example.com", Kind.PRODUCT_ACCESS)
    assert admin.sees(A, "ola@example.com", Kind.INVOICE_ISSUED)  # their own, whatever the kind


def test_payers_and_users_see_only_their_own_mail() -> None:
    for roles in ({"PAYER"}, {"USER"}, {"PAYER", "USER"}, set()):
        reader = person_reader("pia@example.com", A, roles)
        assert reader.sees(A, "pia@example.com", Kind.INVOICE_ISSUED)
        assert reader.sees("", "pia@example.com", Kind.SEAT_ASSIGNED)
        assert not reader.sees(A, "kari@example.com", Kind.INVOICE_ISSUED)
        assert not reader.sees(A, "kari@example.com", Kind.PRODUCT_ACCESS)


def test_naming_no_account_a_person_sees_only_their_own_mail_whatever_their_roles() -> None:
    reader = person_reader("kari@example.com", "", {"BUYER", "PRIMARY_ADMIN"})
    assert reader.sees(A, "kari@example.com", Kind.ORDER_CONFIRMATION)
    assert not reader.sees(A, "ola@example.com", Kind.PRODUCT_ACCESS)
    assert not reader.sees("", "per@example.com", Kind.SEAT_ASSIGNED)


def test_operators_and_services_see_everything_and_no_one_else_sees_anything_by_default() -> None:
    assert EVERYTHING.sees("", "per@example.com", Kind.SEAT_ASSIGNED)
    assert EVERYTHING.sees(A, "kari@example.com", Kind.INVOICE_ISSUED)
    assert not NOBODY.sees("", "", Kind.SEAT_ASSIGNED)
    assert not NOBODY.sees(A, "kari@example.com", Kind.INVOICE_ISSUED)
