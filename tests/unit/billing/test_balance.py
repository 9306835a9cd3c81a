from decimal import Decimal

from services.billing.domain.balance import CreditFigures, InvoiceFigures, balances
from services.billing.domain.model import InvoiceStatus, Settlement

D = Decimal


def test_balance_adds_open_overdue_paid_credits_and_cash_per_currency():
    invoices = [
        InvoiceFigures("USD", InvoiceStatus.OPEN, D("786.00"), D("0"), overdue=True),
        InvoiceFigures("USD", InvoiceStatus.OPEN, D("100.00"), D("0")),
        InvoiceFigures("USD", InvoiceStatus.PAID, D("1310.00"), D("1310.00")),
        InvoiceFigures("USD", InvoiceStatus.VOID, D("50.00"), D("0")),
        InvoiceFigures("NOK", InvoiceStatus.PAID, D("922.30"), D("922.30")),
    ]
    notes = [
        CreditFigures("USD", D("310.00"), Settlement.REFUND),
        CreditFigures("NOK", D("100.00"), Settlement.CASH_BALANCE),
    ]
    result = balances(invoices, notes)
    usd, nok = result["USD"], result["NOK"]
    assert usd.open_amount == D("886.00")
    assert usd.overdue_amount == D("786.00")
    assert usd.open_invoices == 2
    assert usd.paid_amount == D("1310.00")
    assert (usd.credited_amount, usd.refunded_amount, usd.cash_balance) == (D("310.00"), D("310.00"), D("0"))
    assert (nok.paid_amount, nok.cash_balance, nok.open_amount) == (D("922.30"), D("100.00"), D("0"))


def test_no_invoices_means_no_balances():
    assert balances([], []) == {}
