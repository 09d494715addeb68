"""``GET /api/live``: the live positions of the markers the caller may see, pushed as
Server-Sent Events (``tracker.positions.live_hub``).

The first message (``event: snapshot``) holds every marker the caller may see (within
``bbox`` when given); then an ``event: update`` at most every ``TRACKER_LIVE_INTERVAL``
seconds holds the markers whose position changed since (``m``) and those removed (``r``).
``data`` is ``{"m": [[marker_id, lat, lon, time_ms, speed, heading, battery, moving, source, name,
heard_ms], …], "r": [marker_id, …]}``; with ``layout=columns`` (the map's) it holds the same
values as one array per field instead, ``{"t": now_ms, "c": {"id": […], "lat": […], "lon": […],
"age": [ms before t], "heard": [ms after the fix], "speed"?, "heading"?, "battery"?, "moving"?,
"source"?, "name"?}, "r": […]}``, which gzips to about 30 % fewer bytes. Each message has
an ``id``. A client that reconnects with ``Last-Event-ID`` gets the changes it missed as one update, or a fresh snapshot when they
are older than the worker keeps. A snapshot taken while the worker is still reading some
partitions' positions (up to ``LOAD_WAIT_SECONDS`` after it starts) says so:
``"partial": true`` and ``"missing"``, the partitions whose markers follow in updates. A comment line every 15 s keeps idle connections open.

Bounded, so that viewers cannot slow each other down:

- the caller's access is checked again every ``RECHECK_SECONDS``: a revoked token, an ended
  session or a changed group ends the stream (the browser reconnects with what it has now);
- a viewer's unsent bytes (its queue and its connection's buffer) are bounded
  (``TRACKER_LIVE_CLIENT_BUFFER``), and a client that takes nothing for
  ``TRACKER_WRITE_TIMEOUT`` is disconnected;
- an account has at most ``TRACKER_LIVE_MAX_PER_ACCOUNT`` streams on a worker (429 beyond),
  and a worker at most ``TRACKER_LIVE_MAX_VIEWERS`` (503 beyond), both with ``Retry-After``;
- each update is encoded (and gzipped) once per set of viewers who see the same markers.

A client that accepts gzip gets the stream gzipped, each message a block of its own that
needs nothing before it, flushed as it is written.
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web as aioweb

from tracker.app import app
from tracker.positions.live_hub import GZIP_HEADER, Message, Viewer, encode_update
from tracker.resources import live_hub as hub
from tracker.settings import settings
from web import params
from web.auth import access_of, require
from web.errors import ApiError, TooManyRequests, Unavailable
from web.guard import on_connection_lost, write

HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 5.0
LOAD_WAIT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 5
#: The most of one message written at once: a stalled client holds at most about this much
#: (beyond the transport's own buffer) in the worker.
SLICE_BYTES = 16 * 1024
#: The transport buffers this much for a slow client before a write waits.
WRITE_BUFFER_HIGH = 64 * 1024
PING = Message(b": ping\n\n")


def _keeper(access, bbox):
    def keep(marker_id: str, lat: float | None, lon: float | None) -> bool:
        if not access.permits(marker_id):
            return False
        if bbox is None or lat is None:
            return True
        return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]

    return keep


def account_of(access) -> tuple:
    return ("user", access.user_id) if access.user_id is not None else (access.via, access.user)


def _admit(access) -> None:
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if len(hub.viewers) >= settings.live_max_viewers:
        raise Unavailable("busy", f"this worker serves {settings.live_max_viewers} live viewers already; "
                                  "retry shortly", headers=retry)
    if hub.viewers_of(account_of(access)) >= settings.live_max_per_account:
        raise TooManyRequests("too_many_streams", f"this account has {settings.live_max_per_account} live streams "
                                                  "open on this worker already", headers=retry)


@app.page("/api/live")
async def live(web, request):
    access = await require(request)
    bbox = params.bbox_param(request.query)
    columns = params.choice_param(request.query, "layout", "rows", ("rows", "columns")) == "columns"
    _admit(access)
    keep = _keeper(access, bbox)
    try:  # a snapshot taken before then says which partitions it lacks ("partial")
        await asyncio.wait_for(hub.loaded.wait(), LOAD_WAIT_SECONDS)
    except asyncio.TimeoutError:
        pass
    _admit(access)  # others may have come in meanwhile
    transport = request.transport
    if transport is None:
        return aioweb.Response(status=204)  # the client has gone already
    transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
    scope_key = (access.scope_key, bbox, columns)
    viewer = Viewer(keep, scope_key, account_of(access), buffered=transport.get_write_buffer_size,
                    on_drop=transport.abort, columns=columns)
    first = _first_message(request.headers.get("Last-Event-ID"), keep, scope_key, columns)
    hub.subscribe(viewer)  # no await since the first message: it gets every tick after it
    on_connection_lost(request, viewer.end)  # a client that leaves frees its place at once
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
               "Vary": "Accept-Encoding"}
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    response = aioweb.StreamResponse(headers=headers)
    try:
        await response.prepare(request)
        await _send(request, response, Message(b"retry: 2000\n\n"), gzipped, GZIP_HEADER if gzipped else b"")
        if first is not None:
            await _send(request, response, first, gzipped)
        recheck_at = time.monotonic() + RECHECK_SECONDS
        while not viewer.dropped and not hub.should_stop:
            message = await viewer.next(min(HEARTBEAT_SECONDS, max(0.0, recheck_at - time.monotonic())))
            if viewer.dropped:
                break
            if time.monotonic() >= recheck_at:
                if not await _still_allowed(request, access):
                    break
                recheck_at = time.monotonic() + RECHECK_SECONDS
                if message is None:
                    continue
            await _send(request, response, message or PING, gzipped)
    except (ConnectionError, asyncio.CancelledError):  # the client left, or was dropped
        pass
    finally:
        hub.unsubscribe(viewer)
    return response


async def _send(request, response, message: Message, gzipped: bool, before: bytes = b"") -> None:
    data = before + (message.gzipped() if gzipped else message.plain)
    view = memoryview(data)
    for start in range(0, len(data), SLICE_BYTES):
        await write(request, response, view[start:start + SLICE_BYTES])


async def _still_allowed(request, access) -> bool:
    """Whether the caller's credential still gives the access the stream was opened with."""
    try:
        current = await access_of(request)
    except ApiError:  # Postgres away, or a password check refused for now: keep what it had
        return True
    return current is not None and current.scope_key == access.scope_key and current.role == access.role


def _first_message(last_event_id: str | None, keep, scope_key, columns: bool) -> Message | None:
    """What a client missed since ``Last-Event-ID``, or a snapshot."""
    if last_event_id is not None and last_event_id.isdigit():
        missed = hub.missed(int(last_event_id))
        if missed is not None:
            encoded = encode_update(hub.seq, missed, keep, columns=columns) if missed else None
            return None if encoded is None else Message(encoded)
    return hub.snapshot(keep, scope_key, columns)
