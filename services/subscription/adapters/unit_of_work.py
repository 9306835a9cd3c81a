"""The subscription service's unit of work: its repositories on this transaction's session.

`db.unit_of_work()` (a write transaction) and `db.reading()` (a read-only one) both hand out this class
(`ServiceApp.create(..., uow_class=SubscriptionUnitOfWork)`), so handlers reach the data only through
`uow.subscriptions`, `uow.catalog` and `uow.members`."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from sqlmodel import Session

from services.subscription.adapters.quotes import QuoteRepository
from services.subscription.adapters.repository import CatalogRepository, MemberRepository, Repository
from shared.db import Database, UnitOfWork


class SubscriptionUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, session: Session) -> None:
        super().__init__(db, session)
        postgres = db.is_postgres
        #: subscriptions, their orders, renewals, history and reminders
        self.subscriptions = Repository(session, postgres=postgres)
        #: the price book
        self.catalog = CatalogRepository(session, postgres=postgres)
        #: the account teams (this service's projection)
        self.members = MemberRepository(session)
        #: partner quotes (rules §9)
        self.quotes = QuoteRepository(session, postgres=postgres)


def subscription_db(db: Database) -> Database:
    """`db` handing out this service's unit of work. The app builds its database with it; a database built
    without it (a test that sweeps a bare database) is copied with it: same engine, clock and hooks."""
    if not isinstance(db, Database) or issubclass(db.uow_class, SubscriptionUnitOfWork):
        return db  # (or a stand-in with the same methods, such as the tests' fake)
    typed = copy.copy(db)
    typed.uow_class = SubscriptionUnitOfWork
    return typed


@contextmanager
def writing(db: Database) -> Iterator[SubscriptionUnitOfWork]:
    """A write transaction of this service (`db.unit_of_work()`, typed)."""
    with subscription_db(db).unit_of_work() as uow:
        yield cast(SubscriptionUnitOfWork, uow)


@contextmanager
def reading(db: Database) -> Iterator[SubscriptionUnitOfWork]:
    """A read-only unit of work of this service (`db.reading()`, typed; nothing commits)."""
    with subscription_db(db).reading() as uow:
        yield cast(SubscriptionUnitOfWork, uow)
