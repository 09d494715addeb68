"""Answers looked up in Postgres, cached so that a lookup survives a database outage.

Used for the credentials a request carries: device secrets (``tracker.accounts.devices``) and
users' tokens, sessions and passwords (``web.auth``).

- An answer is fresh for ``ttl`` seconds: a removed or revoked credential stops working
  within that time, and a flood of requests costs one query per key per ``ttl``.
- While Postgres cannot be reached, the last answer it gave for a key is served for up to
  ``outage_grace`` seconds after it gave it; a key without one raises.
- After a failed connection, Postgres is left alone for ``retry_after`` seconds: requests
  meanwhile are answered from the cache (or refused) at once instead of each waiting for a
  connection timeout. Only a connection that fails starts that pause, never a query that
  Postgres refused (a malformed key must not lock everyone out).
- Until a connection succeeds again, a key with an answer in its grace period is answered
  from the cache at once and looked up again in the background: during an outage no
  request waits for a connection that will time out.
- When full, refusals (``None`` answers) go first: a flood of made-up keys cannot push out
  the answers that keep real callers working through an outage.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncContextManager, Awaitable, Callable, Hashable

import psycopg

from tracker.accounts.credentials import token_hash
from tracker.storage.pool import UNAVAILABLE, DatabaseUnavailable

log = logging.getLogger(__name__)


class DatabaseDown(DatabaseUnavailable):
    """Postgres was not asked: a connection failed less than ``retry_after`` seconds ago."""


Lookup = Callable[[psycopg.AsyncConnection], Awaitable[Any]]


class OutageCache:
    def __init__(self, connection: Callable[[], AsyncContextManager[psycopg.AsyncConnection]], ttl: float,
                 outage_grace: float = 600.0, retry_after: float = 2.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``connection()``: a connection to look up with; ``clock()``: seconds that only go forward."""
        self.connection = connection
        self.ttl = ttl
        self.outage_grace = outage_grace
        self.retry_after = retry_after
        self.max_entries = max_entries
        self.clock = clock
        #: key -> (when Postgres gave the answer, the answer)
        self.entries: dict[Hashable, tuple[float, Any]] = {}
        self.database_down_until = 0.0
        #: Set when a connection fails, cleared when one succeeds.
        self.in_outage = False
        self._refreshing: dict[Hashable, asyncio.Task] = {}

    async def get(self, key: Hashable, lookup: Lookup) -> Any:
        """The answer for ``key``, from the cache or ``lookup(connection)``."""
        now = self.clock()
        hit = self.entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        if hit is not None and self.in_outage and now - hit[0] < self.outage_grace:
            if key not in self._refreshing:
                self._refreshing[key] = asyncio.ensure_future(self._refresh(key, lookup))
            return hit[1]
        try:
            answer = await self._ask(lookup, now)
        except UNAVAILABLE + (DatabaseUnavailable,):
            if hit is not None and now - hit[0] < self.outage_grace:
                return hit[1]
            raise
        if len(self.entries) >= self.max_entries:
            self._make_room()
        self.entries[key] = (now, answer)
        return answer

    def fresh(self, key: Hashable) -> Any:
        """The answer cached for ``key`` if it is fresh, else None."""
        hit = self.entries.get(key)
        return hit[1] if hit is not None and self.clock() - hit[0] < self.ttl else None

    def put(self, key: Hashable, answer: Any) -> None:
        """Keep ``answer`` for ``key`` as if Postgres had just given it."""
        if len(self.entries) >= self.max_entries:
            self._make_room()
        self.entries[key] = (self.clock(), answer)

    def forget(self, key: Hashable) -> None:
        self.entries.pop(key, None)

    async def _ask(self, lookup: Lookup, now: float) -> Any:
        if now < self.database_down_until:
            raise DatabaseDown("a connection failed a moment ago; Postgres is not tried again yet")
        try:
            async with self.connection() as conn:
                answer = await lookup(conn)
        except UNAVAILABLE + (DatabaseUnavailable,) as exc:
            if not isinstance(exc, DatabaseDown):
                self.database_down_until = self.clock() + self.retry_after
                self.in_outage = True
            raise
        self.in_outage = False
        return answer

    async def _refresh(self, key: Hashable, lookup: Lookup) -> None:
        """Look ``key`` up again in the background; the cached answer stays if Postgres is away."""
        try:
            now = self.clock()
            answer = await self._ask(lookup, now)
            self.entries[key] = (now, answer)
        except UNAVAILABLE + (DatabaseUnavailable,):
            pass  # still away: the cached answer stays
        except Exception:  # noqa: BLE001 - nobody awaits this task: say it, keep the answer
            log.exception("a background lookup failed")
        finally:
            self._refreshing.pop(key, None)

    def _make_room(self) -> None:
        self.entries = {key: hit for key, hit in self.entries.items() if hit[1] is not None}
        if len(self.entries) >= self.max_entries:
            self.entries.clear()


class TokenLookup:
    """What a random credential (a device secret, a gateway token) belongs to, looked up by
    its SHA-256 with ``query(connection, digest)`` through an ``OutageCache``."""

    def __init__(self, connection, query: Callable[[psycopg.AsyncConnection, bytes], Awaitable[Any]], ttl: float,
                 outage_grace: float, retry_after: float, max_entries: int, clock=time.monotonic) -> None:
        self.query = query
        self.cache = OutageCache(connection, ttl, outage_grace, retry_after, max_entries, clock)

    async def owner(self, token: str) -> Any:
        digest = token_hash(token)
        return await self.cache.get(digest, lambda conn: self.query(conn, digest))
