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

#: The track as five arrays in one row: Postgres builds them, psycopg reads each at once. The
#: arrays are built in one pass, so their elements stay row by row; they are put in time order
#: afterwards if the subquery's order did not carry through (an ORDER BY in each aggregate
#: would sort five times).
_TRACK = ("SELECT array_agg((extract(epoch FROM fix_time) * 1000)::int8), array_agg(lat), array_agg(lon), "
          "array_agg(coalesce(speed, 'NaN')), array_agg(coalesce(altitude, 'NaN')) "
          "FROM (SELECT fix_time, lat, lon, speed, altitude FROM positions "
          "WHERE marker_id = %s AND fix_time >= %s AND fix_time < %s AND NOT spike ORDER BY fix_time LIMIT %s) AS track")
#: Enough memory for a month's sort to stay in memory, and no JIT compilation (it costs more
#: than it saves on these queries).
_QUERY_SETTINGS = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"

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
    async with conn.transaction():
        await conn.execute(_QUERY_SETTINGS)
        async with conn.cursor(binary=True) as cur:
            await cur.execute(_TRACK, (marker_id, start, end, limit + 1))
            row = await cur.fetchone()
    t, lat, lon, speed, altitude = (numpy.array(column or [], dtype=numpy.float64) for column in row)
    if numpy.any(numpy.diff(t) < 0):
        order = numpy.argsort(t, kind="stable")
        t, lat, lon, speed, altitude = t[order], lat[order], lon[order], speed[order], altitude[order]
    truncated = len(t) > limit
    t, lat, lon, speed, altitude = t[:limit], lat[:limit], lon[:limit], speed[:limit], altitude[:limit]
    return {
        "t": t.astype(numpy.int64).tolist(),
        "lat_e6": numpy.rint(lat * 1e6).astype(numpy.int64).tolist(),
        "lon_e6": numpy.rint(lon * 1e6).astype(numpy.int64).tolist(),
        "speed": numpy.round(speed, 2).tolist(),
        "altitude": numpy.round(altitude, 1).tolist(),
        "points": len(lat),
        "truncated": truncated,
    }


async def heat_cells(conn: psycopg.AsyncConnection, markers: list[str], start: datetime, end: datetime,
                     cell: float, bbox: tuple[float, float, float, float] | None) -> list[tuple[int, int, int]]:
    """(row, column, fixes in it) of every cell of ``cell`` degrees that has any: the cell
    spans latitudes [row * cell, (row + 1) * cell) and longitudes likewise."""
    west, south, east, north = bbox or (-180.0, -90.0, 180.0, 90.0)
    async with conn.transaction():
        await conn.execute(_QUERY_SETTINGS)
        async with conn.cursor(binary=True) as cur:
            await cur.execute(_CELLS, {"cell": cell, "markers": markers, "start": start, "end": end,
                                       "south": south, "north": north, "west": west, "east": east})
            return await cur.fetchall()
