"""Erasing a marker's data on request (a person's right to erasure): ``tracker history erase``.

The command deletes the marker's rows in Postgres at once (``erase_history``) and sends a
erase record down the batches topic, on the marker's partition (``tracker.stream.batches``):
the ``latest`` agent removes the marker from its tables there (``tables.erase``), and the
history sink deletes again whatever rows of fixes read before the record it wrote since.
Fixes the marker sends after the record are kept.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from tracker.positions.model import time_of

#: Table -> its time column: every table holding a marker's rows.
TABLES = {"positions": "fix_time", "events": "event_time", "trips": "start_time", "stops": "start_time",
          "journeys_dirty": "wait_for"}


async def erase_history(conn: psycopg.AsyncConnection, marker_id: str, from_us: int | None,
                         to_us: int | None) -> dict[str, int]:
    """Delete the marker's rows with a time in [from, to) (open bounds: None) from every
    table, in one transaction; the rows deleted per table."""
    deleted = {}
    async with conn.transaction():
        for table, column in TABLES.items():
            query = sql.SQL("DELETE FROM {} WHERE marker_id = %s AND {} >= coalesce(%s, '-infinity'::timestamptz) "
                            "AND {} < coalesce(%s, 'infinity'::timestamptz)").format(
                sql.Identifier(table), sql.Identifier(column), sql.Identifier(column))
            cursor = await conn.execute(query, (marker_id, _time(from_us), _time(to_us)))
            deleted[table] = cursor.rowcount
    return deleted


def _time(micros: int | None):
    return None if micros is None else time_of(micros)
