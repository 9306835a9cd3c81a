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


def test_the_balance_adds_up_from_credit_notes_on_open_invoices_and_account_credit_applied():
    invoices = [
        # 500.00 owed, 125.00 of it credited by a credit note while open
        InvoiceFigures("NOK", InvoiceStatus.OPEN, D("500.00"), D("0"), due_credited=D("125.00")),
        # 1250.00 paid by card, then 250.00 of it kept as account credit
        InvoiceFigures("NOK", InvoiceStatus.PAID, D("1250.00"), D("1250.00")),
        # the renewal: 250.00 account credit applied, 750.00 charged
        InvoiceFigures("NOK", InvoiceStatus.PAID, D("1000.00"), D("750.00"), credit_applied=D("250.00")),
    ]
    notes = [
        CreditFigures("NOK", D("125.00"), Settlement.AMOUNT_DUE),
        CreditFigures("NOK", D("250.00"), Settlement.CASH_BALANCE),
    ]
    nok = balances(invoices, notes)["NOK"]
    assert nok.invoiced_amount == D("2750.00")
    assert (nok.paid_amount, nok.credit_applied_amount, nok.due_credited_amount) == (
        D("2000.00"),
        D("250.00"),
        D("125.00"),
    )
    assert nok.open_amount == D("375.00") and nok.open_invoices == 1
    assert (
        nok.invoiced_amount
        == nok.paid_amount + nok.credit_applied_amount + nok.due_credited_amount + nok.open_amount
    )
    assert (nok.credited_amount, nok.account_credit_amount, nok.cash_balance) == (
        D("375.00"),
        D("250.00"),
        D(0),
    )
