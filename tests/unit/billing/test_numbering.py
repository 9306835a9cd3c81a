import pytest

from services.billing.domain.numbering import format_number, is_gapless, parse_number


def test_invoice_numbers_are_per_year_and_zero_padded():
    assert format_number("INV", 2025, 1) == "INV-2025-000001"
    assert format_number("CN", 2026, 1234567) == "CN-2026-1234567"
    assert parse_number("INV-2025-000042") == ("INV", 2025, 42)
    with pytest.raises(ValueError):
        format_number("INV", 2025, 0)
    with pytest.raises(ValueError):
        parse_number("INV-25-1")


def test_gapless_check():
    assert is_gapless(["INV-2025-000002", "INV-2025-000001", "INV-2026-000001"])
    assert not is_gapless(["INV-2025-000001", "INV-2025-000003"])
    assert not is_gapless(["INV-2025-000001", "INV-2025-000001"])
