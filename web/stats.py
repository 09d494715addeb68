"""Statistics of where markers have been:

- ``GET /api/markers/{marker_id}/stats?from=&to=&tz=``: one marker.
- ``GET /api/stats?markers=&group=&from=&to=&tz=``: several (``web.marker_selection``), added up.

Both answer the distance, trips, driving and stopped time per day, week and month (in time
zone ``tz``, UTC by default; a trip or stop counts where it starts, as in
``tracker.journeys.store.read_summary``), the totals, and the countries and cities visited
(``tracker.places.visited``: where the markers stopped or started or ended a trip). The
range is the 365 days before ``to`` (now) by default.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp

from tracker.app import app
from tracker.journeys import store as journeys
from tracker.places.visited import visited
from tracker.positions.model import format_time
from web import params
from web.auth import require
from web.db import request_connection
from web.errors import NotFound, Unavailable
from web.manage import json_response
from web.marker_selection import selected_markers
from web.tracks import time_range

DEFAULT_SPAN = timedelta(days=365)
UNITS = journeys.SUMMARY_UNITS
PLACES_LIMIT = 100_000
ADDED = ("trips", "distance_m", "driving_s", "stopped_s", "stops")


def add_periods(per_marker: list[list[dict]]) -> list[dict]:
    """Several markers' periods added up, per period, oldest first."""
    periods: dict = {}
    for rows in per_marker:
        for row in rows:
            total = periods.setdefault(row["period"], {"period": row["period"], **{key: 0 for key in ADDED},
                                                       "max_speed": None})
            for key in ADDED:
                total[key] += row[key] or 0
            if row["max_speed"] is not None:
                total["max_speed"] = max(total["max_speed"] or 0, row["max_speed"])
    for total in periods.values():
        total["average_speed"] = total["distance_m"] / total["driving_s"] if total["driving_s"] else None
        total["period"] = total["period"].isoformat()
    return [periods[key] for key in sorted(periods)]


_PLACES = """
SELECT lat, lon, start_time FROM stops WHERE marker_id = ANY(%(markers)s) AND start_time >= %(start)s AND start_time < %(end)s
UNION ALL
SELECT start_lat, start_lon, start_time FROM trips WHERE marker_id = ANY(%(markers)s) AND start_time >= %(start)s AND start_time < %(end)s
UNION ALL
SELECT end_lat, end_lon, end_time FROM trips WHERE marker_id = ANY(%(markers)s) AND start_time >= %(start)s AND start_time < %(end)s
LIMIT %(limit)s
"""


async def statistics(markers: list[str], start: datetime, end: datetime, tz: str) -> dict:
    async with request_connection("journeys_unavailable") as conn:
        by = {unit: add_periods([await journeys.read_summary(conn, marker, start, end, tz, unit) for marker in markers])
              for unit in UNITS}
        cur = await conn.execute(_PLACES, {"markers": markers, "start": start, "end": end, "limit": PLACES_LIMIT})
        points = await cur.fetchall()
    try:
        places = await visited(points)
    except aiohttp.ClientError as exc:
        raise Unavailable("geocoder_unavailable", f"the Nominatim server cannot be reached: {exc}") from None
    for rows in places.values():
        for row in rows:
            row["first"], row["last"] = format_time(row["first"]), format_time(row["last"])
    totals = {key: sum(row[key] for row in by["month"]) for key in ADDED}
    return {"markers": markers, "from": format_time(start), "to": format_time(end), "tz": tz, "totals": totals,
            "by": by, **places}


@app.page("/api/markers/{marker_id}/stats")
async def marker_stats(web, request, marker_id: str):
    access = await require(request)
    params.marker_id_param(marker_id)
    if not access.permits(marker_id):
        raise NotFound("unknown_marker", f"no statistics for marker {marker_id!r}")
    start, end = time_range(request.query, DEFAULT_SPAN)
    return json_response(web, await statistics([marker_id], start, end, params.zone_param(request.query)))


@app.page("/api/stats")
async def group_stats(web, request):
    access = await require(request)
    markers = await selected_markers(request, access)
    start, end = time_range(request.query, DEFAULT_SPAN)
    return json_response(web, await statistics(markers, start, end, params.zone_param(request.query)))
