"""The ``positions`` table: its DDL, the history writer and the track reader.

Every valid position is one row of ``positions``, unique on (marker_id, fix_time), so
writing the same fixes twice (a replay after a crash) adds nothing. The table is
partitioned by month (``tracker.storage.months``): the writer creates the months it needs
before it inserts.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Callable, Sequence

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from tracker.positions.model import FIX_FIELDS
from tracker.storage import months as partitions

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    marker_id   text             NOT NULL,
    fix_time    timestamptz      NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    speed       double precision,
    heading     double precision,
    altitude    double precision,
    accuracy    double precision,
    battery     double precision,
    source      text,
    attributes  jsonb,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, fix_time)
) PARTITION BY RANGE (fix_time);
ALTER TABLE positions ADD COLUMN IF NOT EXISTS attributes jsonb;
-- Before version 0.2 the optional measures were real (float32): a speed of 13.4 read back as
-- 13.3999996185. Rewritten once, at the first start after the upgrade.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
               AND table_name = 'positions' AND column_name = 'speed' AND data_type = 'real') THEN
        ALTER TABLE positions ALTER COLUMN speed TYPE double precision,
                              ALTER COLUMN heading TYPE double precision,
                              ALTER COLUMN altitude TYPE double precision,
                              ALTER COLUMN accuracy TYPE double precision,
                              ALTER COLUMN battery TYPE double precision;
    END IF;
END $$;
COMMENT ON TABLE positions IS 'Every valid GPS fix, one row per marker and fix time';
COMMENT ON COLUMN positions.speed IS 'm/s';
COMMENT ON COLUMN positions.heading IS 'degrees clockwise from north, 0-360';
COMMENT ON COLUMN positions.altitude IS 'm';
COMMENT ON COLUMN positions.accuracy IS 'm';
COMMENT ON COLUMN positions.battery IS 'percent, 0-100';
COMMENT ON COLUMN positions.received_at IS 'when the tracker accepted the fix';
COMMENT ON COLUMN positions.attributes IS 'extra values the device sent (charge, odometer, ...)';
"""

#: A fix as the history writer copies it (``FIX_FIELDS`` plus ``received_us``): the
#: ``positions`` column each field fills, and its type.
STAGING = (
    ("marker_id", "text"),
    ("fix_time", "timestamptz"),
    ("lat", "float8"),
    ("lon", "float8"),
    ("speed", "float8"),
    ("heading", "float8"),
    ("altitude", "float8"),
    ("accuracy", "float8"),
    ("battery", "float8"),
    ("source", "text"),
    ("attributes", "jsonb"),
    ("received_at", "timestamptz"),
)
POSITION_COLUMNS = tuple(column for column, _ in STAGING)
assert len(POSITION_COLUMNS) == len(FIX_FIELDS) + 1  # received_us follows the fix's fields
#: Binary COPY carries a timestamptz as int8 microseconds since 2000-01-01 (PostgreSQL's
#: epoch; integer timestamps, the only kind since PostgreSQL 10): a fix's times, in
#: microseconds since 1970, are shifted by this and sent by psycopg's int8 dumper, not as
#: a datetime built per row.
PG_EPOCH_US = (datetime(2000, 1, 1, tzinfo=timezone.utc) - partitions.EPOCH) // timedelta(microseconds=1)
ATTRIBUTES = FIX_FIELDS.index("attributes")
TIME_US = FIX_FIELDS.index("time_us")
RECEIVED_US = len(FIX_FIELDS)
ROW_WIDTH = len(STAGING)

_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, POSITION_COLUMNS))
_STAGING_TABLE = sql.Identifier("positions_incoming")
_CREATE_STAGING = sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
    _STAGING_TABLE, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind))
                                       for column, kind in STAGING))
_COPY_STAGING = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(_STAGING_TABLE, _COLUMNS)
_COPY_POSITIONS = sql.SQL("COPY positions ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS)
_MERGE = sql.SQL("INSERT INTO positions ({columns}) SELECT {columns} FROM {staging} "
                 "ON CONFLICT (marker_id, fix_time) DO NOTHING").format(columns=_COLUMNS, staging=_STAGING_TABLE)
_COPY_TYPES = ["int8" if kind == "timestamptz" else kind for _, kind in STAGING]

#: Rows copied between two chances for the worker's other tasks to run (about 10 ms).
YIELD_EVERY = 10_000


async def copy_fixes(conn: psycopg.AsyncConnection, fixes: Sequence[list], new: Sequence[list] = ()) -> int:
    """Insert ``fixes`` and ``new`` into ``positions`` in one transaction; returns the number
    of rows added.

    ``fixes`` may be there already (a replay, a phone sending a fix twice): they are
    copied into a staging table, then merged, skipping the rows there. ``new`` are fixes
    the caller knows are not (newer than any it wrote for their marker): they are copied
    straight into ``positions``, half of Postgres's work of the merge. Should one of them
    be there after all, they are merged with the others."""
    await partitions.ensure_partitions(conn, "positions", (fix[TIME_US] for part in (fixes, new) for fix in part))
    try:
        async with conn.transaction(), conn.cursor() as cur:
            added = 0
            if new:
                try:
                    async with conn.transaction():  # a savepoint: a fix there already undoes this COPY only
                        added = await _copy(cur, _COPY_POSITIONS, new)
                except psycopg.errors.UniqueViolation:
                    fixes = [*fixes, *new]
            if fixes:
                await cur.execute(_CREATE_STAGING)
                await _copy(cur, _COPY_STAGING, fixes)
                await cur.execute(_MERGE)
                added += cur.rowcount
            return added
    except psycopg.errors.CheckViolation:
        partitions.forget(conn, "positions")  # a month dropped meanwhile: the retry creates it again
        raise


async def _copy(cur: psycopg.AsyncCursor, statement: sql.Composed, fixes: Sequence[list]) -> int:
    """COPY ``fixes`` in the binary form of ``STAGING``; returns the number of rows copied."""
    async with cur.copy(statement) as copy:
        copy.set_types(_COPY_TYPES)
        for i, fix in enumerate(fixes):
            row = fix[:ROW_WIDTH]  # a copy (fields a newer intake appended are not ours to write)
            row[TIME_US] -= PG_EPOCH_US
            row[RECEIVED_US] -= PG_EPOCH_US
            if row[ATTRIBUTES] is not None:
                row[ATTRIBUTES] = Jsonb(row[ATTRIBUTES])
            await copy.write_row(row)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # let the live path run between slices of a large batch
    return cur.rowcount


#: A track point as the history endpoints show it (the query's column aliases).
TRACK_FIELDS = ("time", "lat", "lon", "speed", "heading", "altitude", "accuracy", "battery", "source")
_TRACK = sql.SQL(
    "SELECT fix_time AS time, lat, lon, speed, heading, altitude, accuracy, battery, source "
    "FROM positions WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s "
    "ORDER BY fix_time {order} LIMIT %s"
)
_HAS_MARKER = "SELECT EXISTS (SELECT 1 FROM positions WHERE marker_id = %s)"
_PAGE_END = sql.SQL(
    "SELECT fix_time FROM positions WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s "
    "ORDER BY fix_time {order} OFFSET %s LIMIT 1"
)
#: Rows fetched from a server-side cursor at a time while streaming a track.
STREAM_CHUNK = 2_000


async def read_track(conn: psycopg.AsyncConnection, marker_id: str, start, end, limit: int,
                     descending: bool) -> list[dict]:
    """Track points as dicts keyed by ``TRACK_FIELDS`` (``time`` an aware datetime), on the
    (marker_id, fix_time) primary key, in binary (a third faster than text on 100,000 rows)."""
    query = _TRACK.format(order=sql.SQL("DESC" if descending else "ASC"))
    async with conn.cursor(row_factory=_point_row, binary=True) as cur:
        await cur.execute(query, (marker_id, start, end, limit))
        return await cur.fetchall()


def _point_row(cursor) -> Callable[[Sequence], dict]:
    """A row factory for the track query: a dict per row, built by a literal (twice as fast as
    ``dict_row``'s ``dict(zip(...))`` on 100,000 rows)."""
    names = tuple(column.name for column in cursor.description or ())
    assert names in ((), TRACK_FIELDS), names

    def point(values: Sequence) -> dict:
        time, lat, lon, speed, heading, altitude, accuracy, battery, source = values
        return {"time": time, "lat": lat, "lon": lon, "speed": speed, "heading": heading,
                "altitude": altitude, "accuracy": accuracy, "battery": battery, "source": source}

    return point


async def page_end(conn: psycopg.AsyncConnection, marker_id: str, start, end, limit: int,
                   descending: bool):
    """The fix time of the first point after ``limit`` points (where the next page starts), or None."""
    query = _PAGE_END.format(order=sql.SQL("DESC" if descending else "ASC"))
    cur = await conn.execute(query, (marker_id, start, end, limit))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def stream_track(conn: psycopg.AsyncConnection, marker_id: str, start, end, limit: int,
                       descending: bool) -> AsyncIterator[list[dict]]:
    """The points of ``read_track`` in chunks of ``STREAM_CHUNK``, from a server-side cursor:
    memory holds one chunk, however long the track."""
    query = _TRACK.format(order=sql.SQL("DESC" if descending else "ASC"))
    async with conn.transaction():
        async with conn.cursor(name="track", row_factory=_point_row, binary=True) as cur:
            await cur.execute(query, (marker_id, start, end, limit))
            while chunk := await cur.fetchmany(STREAM_CHUNK):
                yield chunk


async def has_marker(conn: psycopg.AsyncConnection, marker_id: str) -> bool:
    cur = await conn.execute(_HAS_MARKER, (marker_id,))
    return (await cur.fetchone())[0]
