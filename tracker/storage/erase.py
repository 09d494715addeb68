"""Erasing a marker's data on request (a person's right to erasure): ``tracker history erase``.

The command (``erase_marker``), in one transaction: records the request in ``erasures``,
deletes the marker's rows in the history tables (``TABLES``) and the webhook deliveries of
its events, and revokes its share links. Then it sends an erase record down the batches
topic, on the marker's partition (``tracker.stream.batches``): the ``latest`` agent removes
the marker from its tables there (``tables.erase``), and the history sink deletes again the
rows of fixes that were on their way before the record (``erase_history``), adding what it
deleted to the request's row, so that the command can say it. Fixes the marker sends after
the record are kept. What stays elsewhere, and until when, is in ``tracker.stream.copies``.
"""
from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from tracker.positions.model import time_of

#: Table -> its time column: every table holding a marker's rows.
TABLES = {"positions": "fix_time", "events": "event_time", "trips": "start_time", "stops": "start_time",
          "journeys_dirty": "wait_for"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS erasures (
    erasure_id   bigserial   PRIMARY KEY,
    marker_id    text        NOT NULL,
    from_time    timestamptz,
    to_time      timestamptz,
    requested_at timestamptz NOT NULL DEFAULT now(),
    deleted      jsonb       NOT NULL DEFAULT '{}',
    sink_rows    bigint      NOT NULL DEFAULT 0,
    sink_done_at timestamptz
);
COMMENT ON TABLE erasures IS 'tracker history erase: what the command deleted, and what the history sink deleted after (sink_done_at once it read the erase record); no position is kept here';
"""

_DELIVERIES = """
DELETE FROM webhook_deliveries WHERE event ->> 'marker_id' = %s
AND (event ->> 'time')::timestamptz >= coalesce(%s, '-infinity'::timestamptz)
AND (event ->> 'time')::timestamptz < coalesce(%s, 'infinity'::timestamptz)
"""


async def _delete_rows(conn: psycopg.AsyncConnection, marker_id: str, from_us: int | None,
                       to_us: int | None) -> dict[str, int]:
    deleted = {}
    for table, column in TABLES.items():
        query = sql.SQL("DELETE FROM {} WHERE marker_id = %s AND {} >= coalesce(%s, '-infinity'::timestamptz) "
                        "AND {} < coalesce(%s, 'infinity'::timestamptz)").format(
            sql.Identifier(table), sql.Identifier(column), sql.Identifier(column))
        cursor = await conn.execute(query, (marker_id, _time(from_us), _time(to_us)))
        deleted[table] = cursor.rowcount
    return deleted


async def erase_marker(conn: psycopg.AsyncConnection, marker_id: str, from_us: int | None,
                       to_us: int | None) -> tuple[int, dict[str, int]]:
    """The command's part, in one transaction: (the request's id, rows deleted or links revoked
    per table)."""
    async with conn.transaction():
        cur = await conn.execute("INSERT INTO erasures (marker_id, from_time, to_time) VALUES (%s, %s, %s) "
                                 "RETURNING erasure_id", (marker_id, _time(from_us), _time(to_us)))
        erasure_id = (await cur.fetchone())[0]
        deleted = await _delete_rows(conn, marker_id, from_us, to_us)
        cur = await conn.execute(_DELIVERIES, (marker_id, _time(from_us), _time(to_us)))
        deleted["webhook_deliveries"] = cur.rowcount
        cur = await conn.execute("UPDATE shares SET revoked_at = now() WHERE marker_id = %s AND revoked_at IS NULL",
                                 (marker_id,))
        deleted["shares (revoked)"] = cur.rowcount
        await conn.execute("UPDATE erasures SET deleted = %s WHERE erasure_id = %s",
                           (Jsonb(deleted), erasure_id))
    return erasure_id, deleted


async def erase_history(conn: psycopg.AsyncConnection, marker_id: str, from_us: int | None,
                        to_us: int | None) -> dict[str, int]:
    """The history sink's part, when it reads the erase record: delete the marker's rows with a
    time in [from, to) (open bounds: None) from every table again (fixes that were on their
    way), and add the count to the newest request for them; the rows deleted per table."""
    async with conn.transaction():
        deleted = await _delete_rows(conn, marker_id, from_us, to_us)
        await conn.execute(
            "UPDATE erasures SET sink_rows = sink_rows + %s, sink_done_at = now() WHERE erasure_id = "
            "(SELECT max(erasure_id) FROM erasures WHERE marker_id = %s AND from_time IS NOT DISTINCT FROM %s "
            "AND to_time IS NOT DISTINCT FROM %s)",
            (sum(deleted.values()), marker_id, _time(from_us), _time(to_us)))
    return deleted


async def sink_report(conn: psycopg.AsyncConnection, erasure_id: int) -> tuple[int, bool]:
    """(rows the history sink deleted for the request, whether it has read its record)."""
    cur = await conn.execute("SELECT sink_rows, sink_done_at IS NOT NULL FROM erasures WHERE erasure_id = %s",
                             (erasure_id,))
    return tuple(await cur.fetchone())


def _time(micros: int | None):
    return None if micros is None else time_of(micros)
