"""Events over HTTP, from the Postgres table ``events``, newest first.

- ``GET /api/events?marker=&type=&from=&to=&limit=&format=json|csv``
- ``GET /api/markers/{marker_id}/events?type=&from=&to=&limit=&format=json|csv``

``type`` takes one type or several separated by commas; ``from`` (inclusive) and ``to``
(exclusive) bound the event time. Callers see the events of the markers they may see; a
marker they may not see is 404 (``unknown_marker``), as on every route that names one. JSON is ``{"events": [record, ...]}``,
each record as on ``gps.events`` (``web/openapi.yaml``, schema ``Event``); CSV has one row
per event with a header. A marker the caller may not see answers 404, as on every route.
"""
from __future__ import annotations

import csv
import io

import orjson

from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.events.store import EventQuery, read_events
from tracker.events.model import TYPES
from tracker.resources import database
from web import params
from web.auth import require, visible_marker
from web.errors import Unavailable
from web.exports import csv_cell

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
CSV_COLUMNS = ("id", "time", "marker_id", "type", "lat", "lon", "geofence_id", "geofence_name", "speed", "limit",
               "battery", "late", "alarm")


def event_query(query, marker_id: str | None) -> EventQuery:
    types = tuple(t for t in (query.get("type") or "").split(",") if t)
    for kind in types:
        if kind not in TYPES:
            raise params.BadParameter("type", f"{kind[:40]!r} is not an event type; use {', '.join(TYPES)}")
    start, end = params.time_param(query, "from", None), params.time_param(query, "to", None)
    if start is not None and end is not None and start > end:
        raise params.BadParameter("from", "must not be after 'to'")
    return EventQuery(start, end, marker_id, types, params.int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT))


@app.page("/api/events")
async def all_events(web, request):
    return await _answer(web, request, request.query.get("marker") or None)


@app.page("/api/markers/{marker_id}/events")
async def marker_events(web, request, marker_id: str):
    return await _answer(web, request, marker_id)


async def _answer(web, request, marker_id: str | None):
    access = await require(request)
    if marker_id is not None:
        visible_marker(access, marker_id)
    query = event_query(request.query, marker_id)
    fmt = params.choice_param(request.query, "format", "json", ("json", "csv"))
    try:
        async with database.connection() as conn:
            found = await read_events(conn, access, query)
    except DATABASE_ERRORS:
        raise Unavailable("events_unavailable", "the events database cannot be reached; retry") from None
    if fmt == "csv":
        return web.bytes(_csv(found), content_type="text/csv",
                         headers={"Content-Disposition": 'attachment; filename="events.csv"'})
    return web.bytes(orjson.dumps({"events": found}), content_type="application/json")


def _csv(found: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event in found:
        position = event.get("position") or {}
        row = {**event, "lat": position.get("lat"), "lon": position.get("lon"),
               "late": "true" if event.get("late") else ""}
        writer.writerow([csv_cell(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue().encode()
