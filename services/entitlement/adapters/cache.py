"""The in-process cache behind CheckAccess: each user's seats (as `Grant`s), loaded from the
database on a miss and dropped wherever the projection changes.

Correctness:
- Every write that can change a user's seats (seat assignment, an event that changes a
  subscription the user has a seat on) calls `invalidate(users)` inside its transaction and
  again after the commit (`invalidate_after_commit`).
- A load that started before an invalidation is not stored: each invalidation moves a
  generation counter, and a loader stores its result only when the counter has not moved
  since it started reading. So a reader can never put back what a commit just replaced.
- Entries also expire after `ttl` seconds, which bounds how stale another process's cache can
  be when several processes serve one database (each process only sees its own events).
The database stays the source of truth; the cache holds no time-dependent answers (the upgrade
overlap end is compared with the clock on every call).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from sqlalchemy import event

from services.entitlement.domain.model import Grant

Loader = Callable[[str], tuple[Grant, ...]]


class AccessCache:
    def __init__(self, loader: Loader, *, ttl: float = 5.0, max_entries: int = 200_000) -> None:
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
