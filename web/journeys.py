"""Trips, stops and summaries over HTTP, from the Postgres tables ``trips`` and ``stops``.

- ``GET /api/markers/{marker_id}/trips?from=&to=&limit=&format=json|csv``
- ``GET /api/markers/{marker_id}/stops?from=&to=&limit=&format=json|csv``
- ``GET /api/markers/{marker_id}/summary?from=&to=&by=day|week|month&tz=&format=json|csv``
- ``GET /api/trips/{trip_id}.gpx``: one trip's fixes (spikes left out) as GPX 1.1

A trip or stop belongs to the range its start falls in (``from`` inclusive, ``to``
exclusive; by default the 7 days before now, 30 for a summary). A summary adds up, per
day (or week, or month) in the time zone ``tz`` (an IANA name, UTC by default), the
trips and stops that start in it: trips, distance, driving and stopped time, top and
average speed. Only those who may see a marker see its journeys; for others it does not
exist (404).
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import orjson

from tracker.journeys import store
from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.positions.model import format_time
from tracker.resources import database
from web import params
from web.auth import require, visible_marker
from web.errors import NotFound, Unavailable
from web.exports import csv_cell, render

DEFAULT_SPAN = timedelta(days=7)
SUMMARY_SPAN = timedelta(days=30)
MAX_LIMIT = 10_000
MAX_TRIP_POINTS = 100_000
#: The longest IANA time zone name is 32 characters.

TRIP_CSV = ("id", "start_time", "end_time", "start_lat", "start_lon", "end_lat", "end_lon", "distance_m",
            "duration_s", "max_speed", "average_speed", "start_geofences", "end_geofences")
STOP_CSV = ("start_time", "end_time", "lat", "lon", "duration_s")
SUMMARY_CSV = ("period", "trips", "distance_m", "driving_s", "stopped_s", "stops", "max_speed", "average_speed")


def _range(query, span: timedelta) -> tuple[datetime, datetime]:
    end = params.time_param(query, "to", datetime.now(timezone.utc))
    start = params.time_param(query, "from", end - span)
    if start > end:
        raise params.BadParameter("from", "must not be after 'to'")
    return start, end


async def _visible(request, marker_id: str) -> None:
    visible_marker(await require(request), marker_id)


def _unavailable() -> Unavailable:
    return Unavailable("journeys_unavailable", "the journeys database cannot be reached; retry")


@app.page("/api/markers/{marker_id}/trips")
async def marker_trips(web, request, marker_id: str):
    return await _listing(web, request, marker_id, "trips", store.read_trips, _trip, TRIP_CSV)


@app.page("/api/markers/{marker_id}/stops")
async def marker_stops(web, request, marker_id: str):
    return await _listing(web, request, marker_id, "stops", store.read_stops, _stop, STOP_CSV)


async def _listing(web, request, marker_id: str, name: str, read, shape, columns: tuple[str, ...]):
    """A marker's trips or stops that start in the range, as JSON or CSV."""
    await _visible(request, marker_id)
    start, end = _range(request.query, DEFAULT_SPAN)
    limit = params.int_param(request.query, "limit", 1_000, 1, MAX_LIMIT)
    fmt = params.choice_param(request.query, "format", "json", ("json", "csv"))
    try:
        async with database.connection() as conn:
            found = await read(conn, marker_id, start, end, limit)
    except DATABASE_ERRORS:
        raise _unavailable() from None
    rows = [shape(row) for row in found]
    if fmt == "csv":
        return _csv(web, f"{marker_id}-{name}.csv", rows, columns)
    return web.bytes(orjson.dumps({"marker_id": marker_id, "from": format_time(start), "to": format_time(end),
                                   name: rows}), content_type="application/json")


@app.page("/api/markers/{marker_id}/summary")
async def marker_summary(web, request, marker_id: str):
    await _visible(request, marker_id)
    start, end = _range(request.query, SUMMARY_SPAN)
    by = params.choice_param(request.query, "by", "day", store.SUMMARY_UNITS)
    tz = params.zone_param(request.query)
    fmt = params.choice_param(request.query, "format", "json", ("json", "csv"))
    try:
        async with database.connection() as conn:
            periods = await store.read_summary(conn, marker_id, start, end, tz, by)
    except DATABASE_ERRORS:
        raise _unavailable() from None
    rows = [{key: _plain(value) for key, value in row.items()} for row in periods]
    if fmt == "csv":
        return _csv(web, f"{marker_id}-summary.csv", rows, SUMMARY_CSV)
    return web.bytes(orjson.dumps({"marker_id": marker_id, "from": format_time(start), "to": format_time(end),
                                   "by": by, "tz": tz, "periods": rows}), content_type="application/json")


@app.page("/api/trips/{trip_id}.gpx")
async def trip_gpx(web, request, trip_id: str):
    parsed = store.parse_trip_id(trip_id)
    if parsed is None:
        raise params.BadParameter("trip_id", "expected <marker id>@<start in µs since the epoch>, as trips list it")
    marker_id, start = parsed
    await _visible(request, marker_id)
    try:
        async with database.connection() as conn:
            trip = await store.read_trip(conn, marker_id, start)
            if trip is None:
                raise NotFound("unknown_trip", f"no trip {trip_id!r}")
            points = await store.read_trip_points(conn, marker_id, trip["start_time"], trip["end_time"],
                                                  MAX_TRIP_POINTS)
    except DATABASE_ERRORS:
        raise _unavailable() from None
    body = render("gpx", marker_id, trip["start_time"], trip["end_time"], points)
    return web.bytes(body, content_type="application/gpx+xml",
                     headers={"Content-Disposition": f'attachment; filename="trip-{marker_id}-{store.micros_of(start)}.gpx"'})


def _trip(row: dict) -> dict:
    trip = {key: _plain(value) for key, value in row.items() if key != "marker_id"}
    trip["gpx"] = f"/api/trips/{row['id']}.gpx"
    return trip


def _stop(row: dict) -> dict:
    return {key: _plain(value) for key, value in row.items() if key != "marker_id"}


def _plain(value):
    if isinstance(value, datetime):
        return format_time(value)
    if hasattr(value, "isoformat"):  # a date
        return value.isoformat()
    return value


def _csv(web, filename: str, rows: list[dict], columns: tuple[str, ...]):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(";".join(v) if isinstance(v, list) else v) for v in (row.get(c) for c in columns)])
    return web.bytes(out.getvalue().encode(), content_type="text/csv",
                     headers={"Content-Disposition": f'attachment; filename="{filename}"'})
