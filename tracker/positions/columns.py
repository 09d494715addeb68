"""Tracks and heatmaps for the history view, shaped for drawing rather than for export.

- ``track_columns``: one marker's fixes in a range, spikes left out, as columns of numbers
  (times in ms, coordinates in millionths of a degree as whole numbers, speed and altitude
  rounded): a month of a marker (100,000 points) is a few MB of JSON, parsed in a blink.
- ``heat_cells``: the fixes of many markers counted per square cell of a grid, in Postgres:
  a million points leave the database as a few thousand rows.
"""
from __future__ import annotations

from datetime import datetime

import numpy
import psycopg

_TRACK = ("SELECT (extract(epoch FROM fix_time) * 1000)::int8, lat, lon, coalesce(speed, 'NaN'), "
          "coalesce(altitude, 'NaN') FROM positions "
          "WHERE marker_id = %s AND fix_time >= %s AND fix_time < %s AND NOT spike ORDER BY fix_time LIMIT %s")

_CELLS = """
SELECT floor(lat / %(cell)s)::int8 AS y, floor(lon / %(cell)s)::int8 AS x, count(*)::int8
FROM positions
WHERE marker_id = ANY(%(markers)s) AND fix_time >= %(start)s AND fix_time < %(end)s AND NOT spike
  AND lat BETWEEN %(south)s AND %(north)s AND lon BETWEEN %(west)s AND %(east)s
GROUP BY 1, 2
"""


async def track_columns(conn: psycopg.AsyncConnection, marker_id: str, start: datetime, end: datetime,
                        limit: int) -> dict:
    """``{"t", "lat_e6", "lon_e6", "speed", "altitude", "points", "truncated"}``; unknown speeds
    and altitudes are NaN (null in JSON)."""
    async with conn.cursor(binary=True) as cur:
        await cur.execute(_TRACK, (marker_id, start, end, limit + 1))
        rows = await cur.fetchall()
    truncated = len(rows) > limit
    table = numpy.array(rows[:limit], dtype=numpy.float64).reshape(-1, 5)
    return {
        "t": table[:, 0].astype(numpy.int64).tolist(),
        "lat_e6": numpy.rint(table[:, 1] * 1e6).astype(numpy.int64).tolist(),
        "lon_e6": numpy.rint(table[:, 2] * 1e6).astype(numpy.int64).tolist(),
        "speed": numpy.round(table[:, 3], 2).tolist(),
        "altitude": numpy.round(table[:, 4], 1).tolist(),
        "points": len(table),
        "truncated": truncated,
    }


async def heat_cells(conn: psycopg.AsyncConnection, markers: list[str], start: datetime, end: datetime,
                     cell: float, bbox: tuple[float, float, float, float] | None) -> list[tuple[float, float, int]]:
    """(lat, lon of the cell's centre, fixes in it) for every cell of ``cell`` degrees that has any."""
    west, south, east, north = bbox or (-180.0, -90.0, 180.0, 90.0)
    async with conn.cursor(binary=True) as cur:
        await cur.execute(_CELLS, {"cell": cell, "markers": markers, "start": start, "end": end,
                                   "south": south, "north": north, "west": west, "east": east})
        rows = await cur.fetchall()
    return [((y + 0.5) * cell, (x + 0.5) * cell, count) for y, x, count in rows]
