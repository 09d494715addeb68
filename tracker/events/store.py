"""The ``events`` table (its DDL is ``SCHEMA`` here): written once per event id, read newest first.

Rows are written by the events sink (``agents/events_sink.py``) from ``gps.events``; a
replayed event finds its id already there and adds nothing. The table is partitioned by
month of ``event_time`` (``tracker.storage.months``), so its key is (event id, event time);
an event id is derived from its time, so it is unique all the same. Reads filter by
what the caller may see: every marker for an admin, else its marker ids and prefixes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tracker.storage import months as partitions
from tracker.accounts.permissions import Access

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id    text             NOT NULL,
    marker_id   text             NOT NULL,
    type        text             NOT NULL,
    event_time  timestamptz      NOT NULL,
    lat         double precision,
    lon         double precision,
    event       jsonb            NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
) PARTITION BY RANGE (event_time);
CREATE INDEX IF NOT EXISTS events_by_marker ON events (marker_id, event_time DESC);
CREATE INDEX IF NOT EXISTS events_by_time ON events (event_time DESC);
COMMENT ON TABLE events IS 'What happened to markers (geofence_enter, overspeed, offline, ...), one row per event id, as written to gps.events';
COMMENT ON COLUMN events.event_id IS 'deterministic (marker, type, fix time, detail): a replay writes nothing twice; unique with event_time, the partition key';
COMMENT ON COLUMN events.event IS 'the event exactly as published on gps.events';
"""

_INSERT = sql.SQL(
    "INSERT INTO events (event_id, marker_id, type, event_time, lat, lon, event) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id, event_time) DO NOTHING")


async def write_events(conn: psycopg.AsyncConnection, records: Sequence[dict]) -> int:
    """Insert the events (records as on ``gps.events``) in one transaction; the rows added."""
    rows = [(r["id"], r["marker_id"], r["type"], datetime.fromisoformat(r["time"]),
             (r.get("position") or {}).get("lat"), (r.get("position") or {}).get("lon"), Jsonb(r))
            for r in records]
    await partitions.ensure_partitions(conn, "events", (row[3] for row in rows))
    try:
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(_INSERT, rows)
            return max(cursor.rowcount, 0)
    except psycopg.errors.CheckViolation:
        partitions.forget(conn, "events")  # a month dropped meanwhile: the retry creates it again
        raise


@dataclass(frozen=True)
class EventQuery:
    start: datetime | None = None
    end: datetime | None = None
    marker_id: str | None = None
    types: tuple[str, ...] = ()
    limit: int = 100


async def read_events(conn: psycopg.AsyncConnection, access: Access, query: EventQuery) -> list[dict]:
    """The events (records as on ``gps.events``) matching ``query`` that ``access`` may see,
    newest first (by event time, then id)."""
    where, values = [], []
    if query.marker_id is not None:
        where.append(sql.SQL("marker_id = %s"))
        values.append(query.marker_id)
    if query.types:
        where.append(sql.SQL("type = ANY(%s)"))
        values.append(list(query.types))
    if query.start is not None:
        where.append(sql.SQL("event_time >= %s"))
        values.append(query.start)
    if query.end is not None:
        where.append(sql.SQL("event_time < %s"))
        values.append(query.end)
    if not access.is_admin:
        where.append(sql.SQL("(marker_id = ANY(%s) OR marker_id LIKE ANY(%s))"))
        values += [sorted(access.marker_ids), [_like_prefix(p) for p in access.prefixes]]
    statement = sql.SQL("SELECT event FROM events {} ORDER BY event_time DESC, event_id DESC LIMIT %s").format(
        sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(statement, [*values, query.limit])
        return [row["event"] for row in await cursor.fetchall()]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
