"""The in-process cache behind CheckAccess: each user's seats (as `Grant`s), loaded from the
database on a miss and dropped wherever the projection changes.

Correctness:
- Every write that can change a user's seats (seat assignment, an event that changes a
  subscription the user has a seat on) calls `invalidate(users)` inside its transaction and
  again after the commit (`invalidate_after_commit`).
- A load that started before an invalidation is not stored: each invalidation moves a
  generation counter, and a loader stores its result only when the counter has not moved
  since it started reading. So a reader can never put back what a commit just replaced.
- Several processes may serve one database, and each only sees its own events and calls. So
  every such write also records the users in the `access_change` table (same transaction), and
  `AccessChangeFeed` polls it in every process (twice a second by default) to drop them there.
- Entries also expire after `ttl` seconds, a last safety net.
The database stays the source of truth; the cache holds no time-dependent answers (the upgrade
overlap end is compared with the clock on every call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, event, insert, select

from services.entitlement.adapters.tables import AccessChangeRow
from services.entitlement.domain.model import Grant

Loader = Callable[[str], tuple[Grant, ...]]


class AccessCache:
    def __init__(self, loader: Loader, *, ttl: float = 300.0, max_entries: int = 200_000) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max = max_entries
        self._data: dict[str, tuple[tuple[Grant, ...], float]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def grants(self, user_email: str) -> tuple[Grant, ...]:
        entry = self._data.get(user_email)
        now = time.monotonic()
        if entry is not None and entry[1] > now:
            self.hits += 1
            return entry[0]
        self.misses += 1
        generation = self._generation
        grants = self._loader(user_email)
        with self._lock:
            if generation == self._generation:
                if len(self._data) >= self._max:
                    self._data.clear()
                self._data[user_email] = (grants, now + self._ttl)
        return grants

    def invalidate(self, users: Iterable[str] | None = None) -> None:
        """Forget these users (everyone when None)."""
        with self._lock:
            self._generation += 1
            if users is None:
                self._data.clear()
            else:
                for u in users:
                    self._data.pop(u, None)

    def invalidate_after_commit(self, session, users: Iterable[str]) -> None:
        """Forget these users now and once more when `session` commits."""
        users = frozenset(users)
        if not users:
            return
        self.invalidate(users)
        event.listen(session, "after_commit", lambda _s: self.invalidate(users), once=True)

    def __len__(self) -> int:
        return len(self._data)


def record_access_change(session, users: Iterable[str], now: datetime) -> None:
    """Note in the change's transaction that these users' seats changed (for other processes)."""
    rows = [{"user_email": u, "change_time": now} for u in sorted(set(users))]
    if rows:
        session.execute(insert(AccessChangeRow), rows)


class AccessChangeFeed:
    """Polls `access_change` and drops the users it names from this process's cache.

    Ids are read with a look-back window so that a transaction committing after a later id was
    seen (possible on PostgreSQL) is still noticed; ids already seen are not applied twice.
    Rows older than `keep` are pruned now and then. The first poll reads every row left (and so
    also covers changes made while this process was starting).
    """

    LOOK_BACK = 1000

    def __init__(self, db, cache: AccessCache, *, keep: timedelta = timedelta(hours=1)) -> None:
        self.db = db
        self.cache = cache
        self.keep = keep
        self._seen: set[int] = set()
        self._top = 0
        self._polls = 0
        self._lock = threading.Lock()

    def poll(self) -> int:
        """Apply new changes; returns how many users were dropped."""
        with self._lock:
            return self._poll()

    def _poll(self) -> int:
        floor = max(0, self._top - self.LOOK_BACK)
        with self.db.read() as s:
            rows = s.execute(
                select(AccessChangeRow.id, AccessChangeRow.user_email).where(AccessChangeRow.id > floor)
            ).all()
        fresh = {r.user_email for r in rows if r.id not in self._seen and r.id > 0}
        self._seen = {r.id for r in rows}
        if rows:
            self._top = max(self._top, max(r.id for r in rows))
        if fresh:
            self.cache.invalidate(fresh)
        self._polls += 1
        if self._polls % 1200 == 0:
            self.prune()
        return len(fresh)

    def prune(self) -> None:
        cutoff = self.db.clock.now() - self.keep
        with self.db.unit_of_work() as uow:
            uow.session.execute(delete(AccessChangeRow).where(AccessChangeRow.change_time < cutoff))
