"""Postgres: the ``positions`` schema and the batched, idempotent history writer.

The schema lives here and nowhere else. Every valid position is one row, unique on
(marker_id, fix_time), so writing the same batch twice (a replay after a crash) adds nothing.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Iterable

import psycopg
from psycopg.types.json import Jsonb

from tracker.intake import Accepted
from tracker.metrics import HISTORY_LAG_SECONDS, HISTORY_ROWS, HISTORY_WRITE_SECONDS

log = logging.getLogger(__name__)

COLUMNS = (
    "marker_id",
    "fix_time",
    "lat",
    "lon",
    "speed",
    "heading",
    "altitude",
    "accuracy",
    "battery",
    "source",
    "attributes",
    "received_at",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    marker_id   text             NOT NULL,
    fix_time    timestamptz      NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    speed       real,
    heading     real,
    altitude    real,
    accuracy    real,
    battery     real,
    source      text,
    attributes  jsonb,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, fix_time)
);
ALTER TABLE positions ADD COLUMN IF NOT EXISTS attributes jsonb;
CREATE TABLE IF NOT EXISTS devices (
    device_id     text        PRIMARY KEY,
    name          text        NOT NULL DEFAULT '',
    secret_sha256 bytea       NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz
);
COMMENT ON TABLE devices IS 'Phones and trackers allowed to report over HTTP; device_id is their marker id';
COMMENT ON COLUMN devices.secret_sha256 IS 'SHA-256 of the device secret; the secret itself is shown once and never stored';
COMMENT ON TABLE positions IS 'Every valid GPS fix, one row per marker and fix time';
COMMENT ON COLUMN positions.speed IS 'm/s';
COMMENT ON COLUMN positions.heading IS 'degrees clockwise from north, 0-360';
COMMENT ON COLUMN positions.altitude IS 'm';
COMMENT ON COLUMN positions.accuracy IS 'm';
COMMENT ON COLUMN positions.battery IS 'percent, 0-100';
COMMENT ON COLUMN positions.received_at IS 'when the tracker accepted the fix';
COMMENT ON COLUMN positions.attributes IS 'extra values the device sent (charge, odometer, ...)';
"""

#: Serialises concurrent schema creation by several workers starting at once.
SCHEMA_LOCK_ID = 0x67707374

_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS positions_incoming "
    "(LIKE positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COLUMN_LIST = ", ".join(COLUMNS)
_COPY = f"COPY positions_incoming ({_COLUMN_LIST}) FROM STDIN"
_MERGE = (
    f"INSERT INTO positions ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM positions_incoming "
    "ON CONFLICT (marker_id, fix_time) DO NOTHING"
)


async def create_schema(conn: psycopg.AsyncConnection) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        await conn.execute(SCHEMA)


def row_of(accepted: Accepted) -> tuple[Any, ...]:
    """An accepted position as a ``positions`` row, in ``COLUMNS`` order."""
    p = accepted.position
    return (
        p.marker_id, p.time, p.lat, p.lon, p.speed, p.heading, p.altitude, p.accuracy,
        p.battery, p.source, Jsonb(p.attributes) if p.attributes else None, accepted.received_at,
    )


class HistoryWriter:
    """Writes batches of positions with one COPY and one INSERT ... ON CONFLICT DO NOTHING.

    ``write`` does not return until the batch is committed: while Postgres is unreachable
    it reconnects with backoff, so the caller's Kafka offsets are never committed past
    rows that are not stored.
    """

    def __init__(self, url: str, *, max_backoff: float = 5.0) -> None:
        self.url = url
        self.max_backoff = max_backoff
        self._conn: psycopg.AsyncConnection | None = None

    async def write(self, positions: Iterable[Accepted]) -> int:
        positions = list(positions)
        rows = [row_of(p) for p in positions]
        if not rows:
            return 0
        started = time.monotonic()
        backoff = 0.1
        while True:
            try:
                conn = await self._connection()
                inserted = await self._write_once(conn, rows)
            except psycopg.Error as exc:
                # Never drop a batch: retry until it is stored. A connection failure is
                # expected during an outage; anything else is logged as an error.
                level = logging.WARNING if isinstance(exc, psycopg.OperationalError) else logging.ERROR
                log.log(level, "history: write failed (%s); retrying in %.1f s", exc, backoff)
                await self._drop_connection()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            HISTORY_ROWS.inc(inserted)
            HISTORY_WRITE_SECONDS.observe(time.monotonic() - started)
            oldest = min(p.received_at for p in positions)
            HISTORY_LAG_SECONDS.observe((datetime.now(timezone.utc) - oldest).total_seconds())
            return inserted

    async def close(self) -> None:
        await self._drop_connection()

    async def _write_once(self, conn: psycopg.AsyncConnection, rows: list[tuple]) -> int:
        async with conn.transaction():
            async with conn.cursor() as cur:
                async with cur.copy(_COPY) as copy:
                    for row in rows:
                        await copy.write_row(row)
                await cur.execute(_MERGE)
                return cur.rowcount

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            await create_schema(conn)
            await conn.execute(_STAGING)
            self._conn = conn
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass
            self._conn = None


HISTORY_COLUMNS = ("time", "lat", "lon", "speed", "heading", "altitude", "accuracy", "battery", "source")
_HISTORY = (
    "SELECT fix_time, lat, lon, speed, heading, altitude, accuracy, battery, source "
    "FROM positions WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s "
    "ORDER BY fix_time {order} LIMIT %s"
)


#: How long a request waits for a pooled connection before it fails (and answers 503).
CONNECT_TIMEOUT = 5.0


class LazyPool:
    """A small connection pool, opened (and the schema ensured) on first use in the worker."""

    def __init__(self, url: str, max_size: int = 4) -> None:
        self.url = url
        self.max_size = max_size
        self._pool = None
        self._lock = asyncio.Lock()

    async def get(self):
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    from psycopg_pool import AsyncConnectionPool

                    pool = AsyncConnectionPool(self.url, min_size=1, max_size=self.max_size, open=False,
                                               timeout=CONNECT_TIMEOUT)
                    try:
                        await pool.open()
                        async with pool.connection() as conn:
                            await create_schema(conn)
                    except BaseException:
                        await pool.close()
                        raise
                    self._pool = pool
        return self._pool


class HistoryReader:
    """Reads a marker's track on the (marker_id, fix_time) primary key."""

    def __init__(self, url: str) -> None:
        self._pool = LazyPool(url)

    async def track(self, marker_id: str, start, end, limit: int, descending: bool) -> list[tuple]:
        """Rows in ``HISTORY_COLUMNS`` order, ``fix_time`` as an aware datetime."""
        pool = await self._pool.get()
        sql = _HISTORY.format(order="DESC" if descending else "ASC")
        async with pool.connection() as conn:
            cur = await conn.execute(sql, (marker_id, start, end, limit))
            return await cur.fetchall()

    async def has_marker(self, marker_id: str) -> bool:
        pool = await self._pool.get()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM positions WHERE marker_id = %s LIMIT 1", (marker_id,))
            return await cur.fetchone() is not None
