"""``GET /api/markers/{marker_id}/history``: a marker's track from Postgres, in four formats."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg

from tracker.app import app
from tracker.db import UNAVAILABLE, DatabaseUnavailable, has_marker, read_track
from tracker.resources import database
from web import params
from web.errors import NotFound, Unavailable
from web.exports import CONTENT_TYPES, RENDERERS

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 1_000_000


class TrackQuery:
    """The time range and paging of a track request, validated."""

    def __init__(self, query) -> None:
        now = datetime.now(timezone.utc)
        self.end = params.time_param(query, "to", now)
        self.start = params.time_param(query, "from", self.end - DEFAULT_SPAN)
        if self.start > self.end:
            raise params.BadParameter("from", "must not be after 'to'")
        self.limit = params.int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        self.descending = params.choice_param(query, "order", "asc", ("asc", "desc")) == "desc"


async def load_track(marker_id: str, query: TrackQuery) -> list[dict]:
    """The points; ``NotFound`` if the marker never reported, ``Unavailable`` without Postgres."""
    try:
        async with database.connection() as conn:
            points = await read_track(conn, marker_id, query.start, query.end, query.limit, query.descending)
            if not points and not await has_marker(conn, marker_id):
                raise NotFound("unknown_marker", f"no history for marker {marker_id!r}")
            return points
    except UNAVAILABLE + (DatabaseUnavailable, psycopg.Error):
        raise Unavailable("history_unavailable", "the history database cannot be reached; retry") from None


@app.page("/api/markers/{marker_id}/history")
async def marker_history(web, request, marker_id: str):
    params.marker_id_param(marker_id)
    query = TrackQuery(request.query)
    fmt = params.choice_param(request.query, "format", "json", tuple(RENDERERS))
    points = await load_track(marker_id, query)
    body = RENDERERS[fmt](marker_id, query.start, query.end, points)
    headers = {}
    if fmt in ("gpx", "csv"):
        headers["Content-Disposition"] = f'attachment; filename="{marker_id}.{fmt}"'
    return web.bytes(body, content_type=CONTENT_TYPES[fmt], headers=headers)
