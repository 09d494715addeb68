"""The worker's Postgres pool, and what a database call may raise when it cannot be done now.

The schema is created on the first connection that succeeds (``tracker.storage.schema``).
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import psycopg
from faust import Service
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tracker.storage.schema import create_schema

#: How long a request waits for a pooled connection before it fails (and answers 503).
CONNECT_TIMEOUT = 5.0

#: What a read or write may raise when Postgres is down or slow.
UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)


class DatabaseUnavailable(Exception):
    """The worker's pool is not open (starting or stopping)."""


#: Everything a request's database work may raise when it cannot be done now.
DATABASE_ERRORS = UNAVAILABLE + (DatabaseUnavailable, psycopg.Error)


class Database(Service):
    """The worker's one Postgres pool: opened in ``on_start``, closed in ``on_stop``.

    Opening does not wait for Postgres: the live path runs without it. The schema is
    created on the first connection that succeeds.
    """

    def __init__(self, url: str, *, max_size: int = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.max_size = max_size
        self.pool: AsyncConnectionPool | None = None
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._opened = asyncio.Event()

    async def on_start(self) -> None:
        # After an outage psycopg_pool retries with a doubling delay; giving up after a few
        # seconds lets the next request start a fresh attempt instead of waiting it out.
        self.pool = AsyncConnectionPool(self.url, min_size=1, max_size=self.max_size, open=False,
                                        timeout=CONNECT_TIMEOUT, reconnect_timeout=CONNECT_TIMEOUT,
                                        kwargs={"autocommit": True}, name="tracker")
        await self.pool.open(wait=False)
        self._opened.set()

    async def ready(self) -> "Database":
        """Wait until the pool is open (not until Postgres answers)."""
        await self._opened.wait()
        return self

    async def on_stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def connect(self) -> psycopg.AsyncConnection:
        """A connection of its own (autocommit), for a long-lived writer that reconnects on its own terms."""
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        try:
            await self._ensure_schema(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _ensure_schema(self, conn: psycopg.AsyncConnection) -> None:
        if not self._schema_ready:
            async with self._schema_lock:
                if not self._schema_ready:
                    await create_schema(conn)
                    self._schema_ready = True

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (autocommit) on a database whose schema exists."""
        if self.pool is None or self.pool.closed:
            raise DatabaseUnavailable("the database pool is not open")
        async with self.pool.connection(timeout) as conn:
            await self._ensure_schema(conn)
            yield conn
