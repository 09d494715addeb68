"""``GET /api/markers/{marker_id}/history``: a marker's track from Postgres, in four formats."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
from psycopg_pool import PoolTimeout

from tracker.app import app
from tracker.db import HistoryReader
from tracker.position import MARKER_ID_PATTERN
from tracker.settings import settings
from web import params
from web.exports import CONTENT_TYPES, RENDERERS
from web.responses import error

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 1_000_000

reader = HistoryReader(settings.database_url)


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


async def load_track(marker_id: str, query: TrackQuery) -> list[tuple] | None:
    """The rows, or None if the marker has never reported."""
    rows = await reader.track(marker_id, query.start, query.end, query.limit, query.descending)
    if not rows and not await reader.has_marker(marker_id):
        return None
    return rows


@app.page("/api/markers/{marker_id}/history")
async def marker_history(web, request, marker_id: str):
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        return error(web, 400, "bad_marker_id", "marker_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")
    try:
        query = TrackQuery(request.query)
        fmt = params.choice_param(request.query, "format", "json", tuple(RENDERERS))
    except params.BadParameter as exc:
        return params.response(web, exc)
    try:
        rows = await load_track(marker_id, query)
    except (psycopg.Error, PoolTimeout):
        return error(web, 503, "history_unavailable", "the history database cannot be reached; retry")
    if rows is None:
        return error(web, 404, "unknown_marker", f"no history for marker {marker_id!r}")
    body = RENDERERS[fmt](marker_id, query.start, query.end, rows)
    headers = {}
    if fmt in ("gpx", "csv"):
        headers["Content-Disposition"] = f'attachment; filename="{marker_id}.{fmt}"'
    return web.bytes(body, content_type=CONTENT_TYPES[fmt], headers=headers)
