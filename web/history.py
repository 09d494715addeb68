"""``GET /api/markers/{marker_id}/history``: a marker's track from Postgres, in four formats.

A request returns at most ``MAX_LIMIT`` points; when there are more, the answer names the
next page (``next`` in JSON and GeoJSON, a ``Link: <...>; rel="next"`` header in every
format), which starts at the first point not sent. Points stream from a server-side
cursor as a chunked response, so a worker's memory does not grow with the track. At most
``TRACKER_EXPORT_CONCURRENCY`` history requests run at once per worker, and
``TRACKER_EXPORT_PER_USER`` per account (others get 429 with ``Retry-After``); a client that
stops reading for ``TRACKER_WRITE_TIMEOUT`` is disconnected, which frees its slot.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

from aiohttp import web as aioweb

from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.positions.store import has_marker, page_end, read_track, stream_track
from tracker.positions.model import format_time
from tracker.resources import database
from tracker.settings import settings
from web import params
from web.auth import require, visible_marker
from web.errors import TooManyRequests, Unavailable, unknown_marker
from web.guard import write
from web.exports import CHRONOLOGICAL, CONTENT_TYPES, RENDERERS

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
RETRY_AFTER_SECONDS = 2

_running = asyncio.Semaphore(settings.export_concurrency)
#: Each account's history requests running on this worker.
_per_user: Counter = Counter()


def _busy(message: str) -> TooManyRequests:
    return TooManyRequests("busy", message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


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


def _unavailable() -> Unavailable:
    return Unavailable("history_unavailable", "the history database cannot be reached; retry")


async def load_track(marker_id: str, query: TrackQuery) -> list[dict]:
    """The points as a list (for the track map); ``NotFound`` if the marker never reported,
    ``Unavailable`` without Postgres."""
    try:
        async with database.connection() as conn:
            points = await read_track(conn, marker_id, query.start, query.end, query.limit, query.descending)
            if not points and not await has_marker(conn, marker_id):
                raise unknown_marker(marker_id)
            return points
    except DATABASE_ERRORS:
        raise _unavailable() from None


def next_page_url(request, query: TrackQuery, boundary: datetime) -> str:
    """This request's URL with the range moved to start (or, newest first, end) at ``boundary``."""
    moved = "to" if query.descending else "from"
    fixed = "from" if query.descending else "to"
    values = {**request.query, moved: format_time(boundary),
              fixed: format_time(query.start if query.descending else query.end)}
    return str(request.rel_url.with_query(values))


@app.page("/api/markers/{marker_id}/history")
async def marker_history(web, request, marker_id: str):
    access = await require(request)
    visible_marker(access, marker_id)
    query = TrackQuery(request.query)
    fmt = params.choice_param(request.query, "format", "json", tuple(RENDERERS))
    if fmt in CHRONOLOGICAL:
        query.descending = False
    account = access.user_id if access.user_id is not None else access.user
    if _per_user[account] >= settings.export_per_user:
        raise _busy(f"{settings.export_per_user} of your history requests are running on this worker; "
                    "retry when one has finished")
    if _running.locked():
        raise _busy(f"{settings.export_concurrency} history requests are running on this worker; retry shortly")
    _per_user[account] += 1
    try:
        async with _running:
            return await _stream(request, marker_id, query, fmt)
    finally:
        _per_user[account] -= 1
        if _per_user[account] <= 0:
            del _per_user[account]


async def _stream(request, marker_id: str, query: TrackQuery, fmt: str) -> aioweb.StreamResponse:
    response = None
    try:
        async with database.connection() as conn, conn.transaction():
            # One snapshot for the page's end and its points: a fix committed in between
            # cannot shift the page and skip a point.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            boundary = await page_end(conn, marker_id, query.start, query.end, query.limit, query.descending)
            chunks = stream_track(conn, marker_id, query.start, query.end, query.limit, query.descending)
            try:
                chunk = await anext(chunks, None)
                if chunk is None and not await has_marker(conn, marker_id):
                    raise unknown_marker(marker_id)
                next_url = None if boundary is None else next_page_url(request, query, boundary)
                response = _response(marker_id, fmt, next_url)
                await response.prepare(request)
                renderer = RENDERERS[fmt](marker_id, query.start, query.end)
                await write(request, response, renderer.head())
                count = 0
                while chunk is not None:
                    count += len(chunk)
                    await write(request, response, renderer.points(chunk))
                    chunk = await anext(chunks, None)
                await write(request, response, renderer.tail(count, next_url))
            finally:
                await chunks.aclose()
    except DATABASE_ERRORS:
        if response is not None:  # mid-stream: the client sees a cut transfer, never a short track
            raise ConnectionAbortedError("the history database failed while streaming") from None
        raise _unavailable() from None
    except ConnectionError:  # the client went away, or stopped reading and was cut off
        return response
    await response.write_eof()
    return response


def _response(marker_id: str, fmt: str, next_url: str | None) -> aioweb.StreamResponse:
    response = aioweb.StreamResponse(status=200)
    response.content_type = CONTENT_TYPES[fmt]
    if fmt in ("gpx", "csv"):
        response.headers["Content-Disposition"] = f'attachment; filename="{marker_id}.{fmt}"'
    if next_url is not None:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    response.enable_chunked_encoding()
    return response
