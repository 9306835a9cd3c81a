from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.billing.domain.invoice import (
    InvoiceState,
    LineInput,
    NewAttachment,
    check_attachments,
    due_date,
    line_amount,
    local_date,
    overdue_at,
    price_lines,
    totals,
)
from services.billing.domain.model import Address, InvoiceStatus, TaxStatus
from services.billing.domain.tax import decide_tax
from shared.errors import InvalidInput, RuleViolation

D = Decimal


def test_line_amount_is_quantity_times_unit_price_or_the_given_prorated_amount():
    assert line_amount(LineInput("AutoCAD LT 3-year", 2, D("1179.00")), "USD") == D("2358.00")
    prorated = LineInput("3 seats co-termed", 3, D("470.00"), amount=D("737.84"))
    assert line_amount(prorated, "USD") == D("737.84")
    with pytest.raises(InvalidInput):
        line_amount(LineInput("x", 1, D("1"), amount=D("737.835")), "USD")
    with pytest.raises(InvalidInput):
        line_amount(LineInput("x", 0, D("1")), "USD")
    with pytest.raises(InvalidInput):
        line_amount(LineInput(" ", 1, D("1")), "USD")


def test_norwegian_seat_addition_totals():
    tax = decide_tax(TaxStatus(Address("NO")), date(2024, 12, 1))
    lines = price_lines([LineInput("3 seats", 3, D("470.00"), amount=D("737.84"))], "NOK", tax)
    t = totals(lines)
    assert (t.subtotal, t.tax, t.total) == (D("737.84"), D("184.46"), D("922.30"))


def test_due_date_is_net_30_by_default_and_a_setting():
    assert due_date(date(2025, 1, 15)) == date(2025, 2, 14)
    assert due_date(date(2025, 1, 15), 14) == date(2025, 1, 29)


def test_issue_date_and_overdue_instant_are_local_to_the_zone():
    late_evening_utc = datetime(2024, 6, 9, 22, 30, tzinfo=UTC)
    assert local_date(late_evening_utc, "Europe/Oslo") == date(2024, 6, 10)
    assert overdue_at(date(2024, 7, 10), "Europe/Oslo") == datetime(2024, 7, 9, 22, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        local_date(late_evening_utc, "Mars/Olympus")


def test_payment_and_void_rules():
    inv = InvoiceState("INV-2025-000001", "USD", D("922.30"))
    assert inv.amount_due == D("922.30")
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        inv.pay(D("900.00"), now)
    paid = inv.pay(D("922.30"), now)
    assert (paid.status, paid.amount_paid, paid.amount_due) == (InvoiceStatus.PAID, D("922.30"), D("0"))
    with pytest.raises(RuleViolation) as e:
        paid.pay(D("922.30"), now)
    assert e.value.reason == "INVOICE_NOT_OPEN"
    with pytest.raises(RuleViolation):
        paid.void()
    assert inv.void().status == InvoiceStatus.VOID


def test_open_invoice_is_overdue_from_its_due_date():
    inv = InvoiceState("INV-2025-000002", "USD", D("10.00"))
    due = date(2025, 2, 14)
    assert not inv.is_overdue_at(datetime(2025, 2, 13, 23, 59, tzinfo=UTC), due, "UTC")
    assert inv.is_overdue_at(datetime(2025, 2, 14, 0, 0, tzinfo=UTC), due, "UTC")
    assert not inv.pay(D("10.00"), datetime(2025, 2, 1, tzinfo=UTC)).is_overdue_at(
        datetime(2025, 3, 1, tzinfo=UTC), due, "UTC"
    )


def test_po_documents_have_a_size_type_and_count_limit():
    ok = NewAttachment("po-4711.pdf", "application/pdf", 1000)
    check_attachments(0, 0, [ok] * 5)
    with pytest.raises(InvalidInput) as e:
        check_attachments(4, 0, [ok, ok])
    assert e.value.reason == "TOO_MANY_ATTACHMENTS"
    check_attachments(5, 1, [ok])
    with pytest.raises(InvalidInput) as e:
        check_attachments(0, 0, [NewAttachment("big.pdf", "application/pdf", 2 * 1024 * 1024 + 1)])
    assert e.value.reason == "ATTACHMENT_TOO_LARGE"
    with pytest.raises(InvalidInput):
        check_attachments(0, 0, [NewAttachment("po.exe", "application/octet-stream", 10)])
