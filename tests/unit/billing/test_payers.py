import pytest

from services.billing.domain.payers import PAYER_LIMIT, check_new_payer
from shared.errors import AlreadyExists, InvalidInput, LimitReached


def test_five_payers_are_allowed_and_the_sixth_is_refused():
    existing: list[str] = []
    for n in range(5):
        existing.append(check_new_payer(existing, f"payer{n}@example.com"))
    assert len(existing) == PAYER_LIMIT == 5
    with pytest.raises(LimitReached) as e:
        check_new_payer(existing, "sixth@example.com")
    assert e.value.reason == "PAYER_LIMIT_REACHED"
    assert "at most 5 payers" in e.value.message


def test_a_payer_is_named_once_case_insensitively():
    with pytest.raises(AlreadyExists) as e:
        check_new_payer(["ap@example.com"], "  AP@Example.com ")
    assert e.value.reason == "PAYER_ALREADY_EXISTS"


def test_payer_email_is_normalized_and_checked():
    assert check_new_payer([], " Kari.Nordmann@Example.NO ") == "kari.nordmann@example.no"
    with pytest.raises(InvalidInput) as e:
        check_new_payer([], "kari")
    assert e.value.field_violations[0][0] == "email"
