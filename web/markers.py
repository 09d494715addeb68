"""``GET /api/markers/{marker_id}``: a marker's latest position, from whichever worker owns it.

``table_route`` forwards the request to the worker that holds the marker's partition of
``latest``, so any worker answers correctly.
"""
from __future__ import annotations

from tables.latest import latest
from tracker.app import app
from tracker.position import MARKER_ID_PATTERN
from web.responses import error


@app.page("/api/markers/{marker_id}")
@app.table_route(table=latest, match_info="marker_id")
async def marker_latest(web, request, marker_id: str):
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        return error(web, 400, "bad_marker_id", "marker_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")
    position = latest.get(marker_id.encode())
    if position is None:
        return error(web, 404, "unknown_marker", f"no position for marker {marker_id!r}")
    return web.json(position)
