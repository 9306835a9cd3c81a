"""One database per service, and the unit of work that commits once.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every
write transaction starts with `BEGIN IMMEDIATE`, so writers queue instead of
failing half-way. PostgreSQL is reached through psycopg 3.

Every service's metadata also holds the infrastructure tables: `outbox`
(events written in the same transaction as the change), `outbox_cursor` (how far
each subscriber has acknowledged), `inbox` (event ids already applied) and
`idempotency` (the first response of each `request_id`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import Select
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from shared.clock import Clock
from shared.errors import Conflict, InvalidInput
from shared.grpc.codec import timestamp

M = TypeVar("M", bound=Message)

_NUMBER_OUTBOX = text(
    """
    UPDATE outbox
       SET seq = (SELECT coalesce(max(seq), 0) FROM outbox) + fresh.n
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM outbox WHERE seq IS NULL) AS fresh
     WHERE outbox.id = fresh.id
    """
)
# From this many rows, insert_many uses COPY on PostgreSQL (cheaper than a statement per batch of values).
COPY_FROM_ROWS = 50


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_infra_tables(metadata: MetaData) -> dict[str, Table]:
    """Add the outbox, inbox and idempotency tables to a service's metadata (once)."""
    if "outbox" in metadata.tables:
        return {
            n: metadata.tables[n] for n in ("outbox", "outbox_cursor", "inbox", "idempotency", "test_clock")
        }
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(80), nullable=False),
        Column("account_id", String(80), nullable=False, default=""),
        Column("subscription_id", String(80), nullable=False, default=""),
        Column("occurred_time", UTCDateTime(), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        # NULL: the row is the one event in `payload`. Otherwise (rows written by a set-based statement) a
        # JSON array of proto3 JSON Events: the row stands for one event per element, `payload` merged with it.
        Column("batch", Text, nullable=True),
        # Delivery order: numbered when the writing transaction commits (see UnitOfWork.order_outbox),
        # so an event whose transaction commits late is never passed by the relay's cursor.
        Column("seq", BigInteger, nullable=True),
        Index("ux_outbox_seq", "seq", unique=True),
    )
    cursor = Table(
        "outbox_cursor",
        metadata,
        Column("subscriber", String(200), primary_key=True),
        Column("last_id", BigInteger, nullable=False, default=0),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=False, default=""),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(80), nullable=False),
        Column("source", String(40), nullable=False),
        Column("received_time", UTCDateTime(), nullable=False),
    )
    idem = Table(
        "idempotency",
        metadata,
        Column("method", String(120), primary_key=True),
        Column("request_id", String(200), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("response", LargeBinary, nullable=False),
        Column("create_time", UTCDateTime(), nullable=False),
    )
    clock = Table(
        "test_clock",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),  # one row, id 1
        Column("now_time", UTCDateTime(), nullable=False),
    )
    return {
        "outbox": outbox,
        "outbox_cursor": cursor,
        "inbox": inbox,
        "idempotency": idem,
        "test_clock": clock,
    }


def normalize_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


class Database:
    """Engine, sessions and units of work of one service."""

    def __init__(
        self,
        url: str,
        metadata: MetaData,
        clock: Clock,
        source: str = "",
        uow_class: type[UnitOfWork] | None = None,
    ) -> None:
        #: the unit of work handed to handlers: a service subclasses UnitOfWork to add its typed
        #: repositories (`uow.invoices`, `uow.subscriptions`, ...)
        self.uow_class = uow_class or UnitOfWork
        self.url = normalize_url(url)
        self.metadata = metadata
        self.clock = clock
        self.source = source
        self.tables = add_infra_tables(metadata)
        u = make_url(self.url)
        self.dialect = u.get_backend_name()
        self._after_commit: list[Callable[[], None]] = []
        if self.dialect == "sqlite":
            if u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=20,
                max_overflow=20,
            )
            _sqlite_pragmas(self.engine)
        else:
            self.engine = create_engine(self.url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.read_engine = self.engine.execution_options(tenure_write=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def create_all(self) -> None:
        self.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def stored_clock(self) -> datetime | None:
        """The test clock's time as last stored (None: never moved)."""
        t = self.tables["test_clock"]
        with self.read() as s:
            return s.execute(select(t.c.now_time).where(t.c.id == 1)).scalar_one_or_none()

    def store_clock(self, now: datetime) -> None:
        """Keep the test clock's time, so a restarted service resumes there (never moves it back)."""
        t = self.tables["test_clock"]
        with self.engine.begin() as c:
            moved = c.execute(update(t).where(t.c.id == 1, t.c.now_time <= now).values(now_time=now)).rowcount
            if not moved and c.execute(select(t.c.id).where(t.c.id == 1)).first() is None:
                try:
                    with c.begin_nested():
                        c.execute(insert(t).values(id=1, now_time=now))
                except IntegrityError:
                    pass  # stored by a replica at the same moment

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn` after every committed unit of work that published events (wakes the relay)."""
        self._after_commit.append(fn)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (no write lock on SQLite)."""
        with Session(self.read_engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        """A read-only unit of work (the service's repositories on a read session; nothing commits)."""
        with Session(self.read_engine, expire_on_commit=False) as s:
            yield self.uow_class(self, s)

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A write transaction: commits once at the end, rolls back on any exception."""
        session = Session(self.engine, expire_on_commit=False)
        uow = self.uow_class(self, session)
        try:
            yield uow
            if uow.published:
                uow.order_outbox()
            session.commit()
        except StaleDataError as e:
            session.rollback()
            raise Conflict(
                "the record was changed by another request at the same time; read it again and retry",
                reason="CONCURRENT_MODIFICATION",
            ) from e
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        if uow.published:
            for fn in self._after_commit:
                fn()

    def run_idempotent(
        self, method: str, request: Message, response_cls: type[M], fn: Callable[[UnitOfWork], M]
    ) -> M:
        """Run `fn` in a unit of work once per `request.request_id`; a repeat returns the first response.

        The stored response is written in the same transaction as the change, so a
        crash either loses both or keeps both. A request id reused with a different
        request is refused. Concurrent repeats queue behind the first (SQLite's write
        lock; on PostgreSQL a transaction-scoped advisory lock on the key) and then
        replay its response, so a retry racing the original never calls out twice.
        """
        request_id = scoped_request_id(getattr(request, "request_id", ""))
        if not request_id:
            with self.unit_of_work() as uow:
                return fn(uow)
        fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
        for attempt in range(3):
            try:
                with self.unit_of_work() as uow:
                    uow.lock_key(f"idem:{method}:{request_id}")
                    previous = uow.replay(method, request_id, fingerprint, response_cls)
                    if previous is not None:
                        return previous
                    response = fn(uow)
                    uow.remember(method, request_id, fingerprint, response)
                return response
            except IntegrityError:
                if attempt == 2:
                    raise
                # A concurrent request with the same id committed first: replay it.
                continue
        raise AssertionError("unreachable")


def run_once(db: Database, method: str, request: Message, response_cls: type[M], fn: Callable[[], M]) -> M:
    """Idempotency for a long call that runs its own transactions (AdvanceClock, sweeps): a repeat of
    the caller's `request_id` returns the stored first response. Unlike `run_idempotent` the call is not
    one unit of work, so a crash part-way leaves no stored response and a retry runs it again."""
    request_id = scoped_request_id(getattr(request, "request_id", ""))
    if not request_id:
        return fn()
    fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    with db.unit_of_work() as uow:
        previous = uow.replay(method, request_id, fingerprint, response_cls)
    if previous is not None:
        return previous
    response = fn()
    try:
        with db.unit_of_work() as uow:
            uow.remember(method, request_id, fingerprint, response)
    except IntegrityError:
        pass  # a concurrent repeat stored its own response first
    return response


class UnitOfWork:
    def __init__(self, db: Database, session: Session) -> None:
        self.db = db
        self.session = session
        self.published = 0

    @property
    def now(self) -> datetime:
        return self.db.clock.now()

    def publish(
        self, event_type: str, *, account_id: str = "", subscription_id: str = "", **payload: Message
    ) -> str:
        """Write an event to the outbox in this transaction. `payload` is one field of `Event.payload`,
        e.g. `publish("subscription.created", subscription_created=msg, account_id=…, subscription_id=…)`."""
        if len(payload) != 1:
            raise ValueError("publish takes exactly one payload field")
        ((field, message),) = payload.items()
        return self.publish_many([(event_type, account_id, subscription_id, field, message)])[0]

    def publish_many(self, events: Iterable[tuple[str, str, str, str, Message]]) -> list[str]:
        """Write many events to the outbox in this transaction, in order: each is (event_type,
        account_id, subscription_id, payload field, payload). Returns their event ids."""
        from shared.telemetry.context import current_request_id
        from shared.telemetry.tracing import current_traceparent
        from tenure.events.v1 import events_pb2

        now = self.now
        occurred = timestamp(now)
        source = self.db.source
        # the call (or event) that caused these events: consumers log its request id and continue its trace
        request_id, traceparent = current_request_id(), current_traceparent()
        rows: list[dict[str, Any]] = []
        for event_type, account_id, subscription_id, field, message in events:
            event_id = str(uuid.uuid4())
            ev = events_pb2.Event(
                event_id=event_id,
                event_type=event_type,
                occurred_time=occurred,
                source=source,
                account_id=account_id,
                subscription_id=subscription_id,
                request_id=request_id,
                traceparent=traceparent,
            )
            getattr(ev, field).CopyFrom(message)  # the payload: one field of the event's oneof
            rows.append(
                {
                    "event_id": event_id,
                    "event_type": event_type,
                    "account_id": account_id,
                    "subscription_id": subscription_id,
                    "occurred_time": now,
                    "payload": ev.SerializeToString(),
                }
            )
        self.insert_many(self.db.tables["outbox"], rows)
        self.published += len(rows)
        return [r["event_id"] for r in rows]

    def count_published(self, rows: int) -> None:
        """Outbox rows that a statement of the caller's wrote (such as batch rows): they are numbered at
        commit like those of `publish_many`, and the relay is woken."""
        self.published += rows

    def order_outbox(self) -> None:
        """Number this transaction's outbox rows after every committed one, just before commit.

        Ids are taken at insert, but transactions commit in any order, so a relay following ids could
        move past a row whose transaction had not committed yet and never deliver it. Rows are numbered
        instead under a lock held until commit (SQLite's write lock; a PostgreSQL advisory lock), so
        numbers are given in commit order. Other transactions' unnumbered rows are not yet visible, so
        `seq IS NULL` finds exactly this transaction's rows. The lock is taken last, after every other
        write of the transaction, so it cannot be part of a deadlock."""
        self.lock_key("outbox-order")
        self.session.execute(_NUMBER_OUTBOX)

    def insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows in this transaction: COPY on PostgreSQL for a batch, one executemany otherwise."""
        if not rows:
            return
        if not self.db.is_postgres or len(rows) < COPY_FROM_ROWS:
            self.session.execute(insert(table), rows)
            return
        columns = list(rows[0])
        raw = self.session.connection().connection.driver_connection
        assert raw is not None  # a live connection of this transaction
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([r[c] for c in columns])

    def replay(self, method: str, request_id: str, fingerprint: str, response_cls: type[M]) -> M | None:
        t = self.db.tables["idempotency"]
        row = self.session.execute(
            select(t.c.fingerprint, t.c.response).where(t.c.method == method, t.c.request_id == request_id)
        ).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise InvalidInput(
                f"request_id {_unscoped(request_id)!r} was already used for a different {method} request",
                field="request_id",
                reason="REQUEST_ID_REUSED",
            )
        return response_cls.FromString(row.response)

    def remember(self, method: str, request_id: str, fingerprint: str, response: Message) -> None:
        self.session.execute(
            insert(self.db.tables["idempotency"]).values(
                method=method,
                request_id=request_id,
                fingerprint=fingerprint,
                response=response.SerializeToString(),
                create_time=self.now,
            )
        )

    def lock_key(self, key: str) -> None:
        """Hold a lock on `key` until this unit of work ends (PostgreSQL advisory lock; SQLite's
        BEGIN IMMEDIATE already serializes every writer)."""
        if self.db.is_postgres:
            k = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": k})

    def for_update(self, stmt: Select[Any], *, skip_locked: bool = True) -> Select[Any]:
        """Lock the selected rows on PostgreSQL (SQLite's write lock already serializes writers).

        Sweeps keep the default SKIP LOCKED, so replicas split the due rows; a command that must wait
        for one row passes `skip_locked=False`."""
        if not self.db.is_postgres:
            return stmt
        return stmt.with_for_update(skip_locked=skip_locked)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - exercised by every sqlite test
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("tenure_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def scoped_request_id(request_id: str) -> str:
    """The key a request id is stored under: the caller's scope (a hash of the verified principal) and
    the id, so two callers may use the same id without touching each other's results."""
    if not request_id:
        return ""
    from shared.auth.principal import current_principal

    p = current_principal()
    return f"{p.scope}:{request_id}" if p is not None else request_id


def _unscoped(key: str) -> str:
    head, sep, rest = key.partition(":")
    return rest if sep and len(head) == 16 and all(c in "0123456789abcdef" for c in head) else key


def new_id(prefix: str) -> str:
    """Opaque ids such as `sub_3f2a…`."""
    return f"{prefix}_{uuid.uuid4().hex}"


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or used for a moment (refused or dropped connections, an
    exhausted pool, a lock not granted in time): the call may be retried, so it is UNAVAILABLE rather
    than INTERNAL."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
