"""The partner quotes table (rules §9) and its repository.

`quotes`: one row per (quote number, version); the contacts, the line specs and the priced lines are
JSON (decimals and dates as strings, so nothing is rounded by the store). The partner and account are
columns, so the permission check finds "the accounts a partner has quoted" by index.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, Numeric, Text, func, select
from sqlmodel import Field, Session

from services.subscription.adapters.tables import SubscriptionModel, SubscriptionRow
from services.subscription.domain.model import Channel, OrderLine, Plan, Term
from services.subscription.domain.quotes import (
    QUOTE_NOT_FOUND,
    Contacts,
    LineKind,
    LineSpec,
    Quote,
    QuoteStatus,
)
from shared.db import UTCDateTime
from shared.errors import InvalidInput, NotFound


class QuoteRow(SubscriptionModel, table=True):
    __tablename__ = "quotes"
    __table_args__ = (Index("ix_quotes_partner_account", "partner", "account_id"),)

    quote_number: str = Field(primary_key=True, max_length=40)
    version: int = Field(primary_key=True)
    partner: str = Field(max_length=200)
    account_id: str = Field(max_length=100)
    status: str = Field(max_length=20)
    contacts: str = Field(sa_column=Column(Text, nullable=False))
    currency: str = Field(max_length=3)
    country_code: str = Field(max_length=2)
    time_zone: str = Field(max_length=64)
    lines: str = Field(sa_column=Column(Text, nullable=False))
    priced: str = Field(sa_column=Column(Text, nullable=False))
    subtotal: Decimal = Field(sa_column=Column(Numeric(18, 4), nullable=False))
    tax: Decimal = Field(sa_column=Column(Numeric(18, 4), nullable=False))
    total: Decimal = Field(sa_column=Column(Numeric(18, 4), nullable=False))
    issue_date: date | None = Field(default=None, nullable=True)
    valid_until: date | None = Field(default=None, nullable=True)
    order_number: str = Field(default="", max_length=60)
    invoice_id: str = Field(default="", max_length=100)
    subscription_id: str = Field(default="", max_length=100)
    create_time: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=False))
    update_time: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=False))


def _d(s: str | None) -> date | None:
    return date.fromisoformat(s) if s else None


def _line_json(ln: OrderLine) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in asdict(ln).items()}


def _line_of(d: dict[str, Any]) -> OrderLine:
    return OrderLine(
        description=d["description"],
        quantity=d["quantity"],
        unit_price=Decimal(d["unit_price"]),
        currency=d["currency"],
        amount=Decimal(d["amount"]),
        period_start_date=date.fromisoformat(d["period_start_date"]),
        period_end_date=date.fromisoformat(d["period_end_date"]),
        subscription_id=d.get("subscription_id", ""),
        prorated_days=d.get("prorated_days", 0),
        term_days=d.get("term_days", 0),
        term_start_date=_d(d.get("term_start_date")),
        term_end_date=_d(d.get("term_end_date")),
    )


def _spec_json(s: LineSpec) -> dict[str, Any]:
    return {
        "kind": s.kind.value,
        "subscription_id": s.subscription_id,
        "product_code": s.product_code,
        "plan": s.plan.value,
        "term": s.term.value if s.term else "",
        "seats": s.seats,
        "align_to": s.align_to,
    }


def _spec_of(d: dict[str, Any]) -> LineSpec:
    return LineSpec(
        LineKind(d["kind"]),
        d["subscription_id"],
        d["product_code"],
        Plan(d["plan"]),
        Term(d["term"]) if d["term"] else None,
        d["seats"],
        d.get("align_to", ""),
    )


def to_domain(row: QuoteRow) -> Quote:
    c = json.loads(row.contacts)
    return Quote(
        quote_number=row.quote_number,
        version=row.version,
        partner=row.partner,
        account_id=row.account_id,
        contacts=Contacts(c["buyer_email"], c["buyer_name"], c["buyer_language"], tuple(c["payer_emails"])),
        currency=row.currency,
        country_code=row.country_code,
        time_zone=row.time_zone,
        lines=[_spec_of(d) for d in json.loads(row.lines)],
        status=QuoteStatus(row.status),
        priced=[_line_of(d) for d in json.loads(row.priced)],
        subtotal=Decimal(row.subtotal),
        tax=Decimal(row.tax),
        total=Decimal(row.total),
        issue_date=row.issue_date,
        valid_until=row.valid_until,
        order_number=row.order_number,
        invoice_id=row.invoice_id,
        subscription_id=row.subscription_id,
        create_time=row.create_time,
        partner_email=c.get("partner_email", ""),
        partner_language=c.get("partner_language", "en"),
    )


def _apply(row: QuoteRow, q: Quote, now: datetime) -> None:
    row.partner = q.partner
    row.account_id = q.account_id
    row.status = q.status.value
    row.contacts = json.dumps(
        {
            "buyer_email": q.contacts.buyer_email,
            "buyer_name": q.contacts.buyer_name,
            "buyer_language": q.contacts.buyer_language,
            "payer_emails": list(q.contacts.payer_emails),
            "partner_email": q.partner_email,
            "partner_language": q.partner_language,
        }
    )
    row.currency = q.currency
    row.country_code = q.country_code
    row.time_zone = q.time_zone
    row.lines = json.dumps([_spec_json(s) for s in q.lines])
    row.priced = json.dumps([_line_json(ln) for ln in q.priced])
    row.subtotal = q.subtotal
    row.tax = q.tax
    row.total = q.total
    row.issue_date = q.issue_date
    row.valid_until = q.valid_until
    row.order_number = q.order_number
    row.invoice_id = q.invoice_id
    row.subscription_id = q.subscription_id
    row.update_time = now


class QuoteRepository:
    """Quotes of one unit of work. `latest(..., lock=True)` takes the row lock on PostgreSQL (SQLite's
    BEGIN IMMEDIATE already serializes writers), so a quote is accepted once."""

    def __init__(self, session: Session, *, postgres: bool = False) -> None:
        self.session = session
        self.postgres = postgres

    def _row(self, quote_number: str, version: int, *, lock: bool = False) -> QuoteRow | None:
        stmt = select(QuoteRow).where(QuoteRow.quote_number == quote_number)
        stmt = stmt.where(QuoteRow.version == version) if version else stmt.order_by(QuoteRow.version.desc())
        if lock and self.postgres:
            stmt = stmt.with_for_update()
        return self.session.execute(stmt.limit(1).execution_options(populate_existing=True)).scalars().first()

    def get(self, quote_number: str, version: int = 0, *, lock: bool = False) -> Quote:
        """A version of a quote (0: the newest)."""
        if not quote_number.strip():
            raise InvalidInput("quote_number is required", field="quote_number")
        row = self._row(quote_number.strip(), version, lock=lock)
        if row is None:
            what = f"quote {quote_number}" + (f" version {version}" if version else "")
            raise NotFound(f"{what} not found", reason=QUOTE_NOT_FOUND)
        return to_domain(row)

    def add(self, q: Quote, now: datetime) -> Quote:
        row = QuoteRow(quote_number=q.quote_number, version=q.version, create_time=q.create_time or now)
        _apply(row, q, now)
        self.session.add(row)
        self.session.flush()
        return to_domain(row)

    def save(self, q: Quote, now: datetime) -> Quote:
        row = self._row(q.quote_number, q.version)
        if row is None:
            return self.add(q, now)
        _apply(row, q, now)
        self.session.flush()
        return to_domain(row)

    def issued_until(self, last_valid_day: date, limit: int = 500) -> list[Quote]:
        """Issued quotes whose last valid day is `last_valid_day` or earlier, earliest first (the sweep
        decides in each quote's own zone whether its validity has ended)."""
        stmt = (
            select(QuoteRow)
            .where(QuoteRow.status == QuoteStatus.ISSUED.value, QuoteRow.valid_until <= last_valid_day)
            .order_by(QuoteRow.valid_until, QuoteRow.quote_number, QuoteRow.version)
            .limit(limit)
        )
        if self.postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return [to_domain(r) for r in self.session.execute(stmt).scalars()]

    def issued_from(self, first_valid_day: date, limit: int = 50) -> list[Quote]:
        """Issued quotes whose last valid day is `first_valid_day` or later, earliest first."""
        stmt = (
            select(QuoteRow)
            .where(QuoteRow.status == QuoteStatus.ISSUED.value, QuoteRow.valid_until >= first_valid_day)
            .order_by(QuoteRow.valid_until)
            .limit(limit)
        )
        return [to_domain(r) for r in self.session.execute(stmt).scalars()]

    def account_of(self, quote_number: str) -> str | None:
        stmt = select(QuoteRow.account_id).where(QuoteRow.quote_number == quote_number.strip()).limit(1)
        return self.session.execute(stmt).scalars().first()

    def partner_knows(self, account_id: str, partner: str) -> bool:
        """Whether `partner` has quoted the account, or sold one of its subscriptions (rules §9: a partner
        sees only those accounts)."""
        if not account_id or not partner:
            return False
        quoted = (
            select(func.count())
            .select_from(QuoteRow)
            .where(QuoteRow.account_id == account_id, QuoteRow.partner == partner)
        )
        if self.session.execute(quoted).scalar_one():
            return True
        sold = (
            select(func.count())
            .select_from(SubscriptionRow)
            .where(
                SubscriptionRow.account_id == account_id,
                SubscriptionRow.partner_name == partner,
                SubscriptionRow.channel.in_([Channel.PARTNER_QUOTE.value, Channel.RESELLER.value]),
            )
        )
        return bool(self.session.execute(sold).scalar_one())
