"""``GET /api/live``: the live positions of the markers the caller may see, pushed as
Server-Sent Events (``tracker.positions.live_hub``).

The first message (``event: snapshot``) holds every marker the caller may see (within
``bbox`` when given); then an ``event: update`` at most every ``TRACKER_LIVE_INTERVAL``
seconds holds the markers whose position changed since (``m``) and those removed (``r``).
``data`` is ``{"m": [[marker_id, lat, lon, time_ms, speed, heading, battery, moving, source, name], …],
"r": [marker_id, …]}``; each message has an ``id``. A client that reconnects with
``Last-Event-ID`` gets the changes it missed as one update, or a fresh snapshot when they
are older than the worker keeps. A snapshot taken while the worker is still reading some
partitions' positions (up to ``LOAD_WAIT_SECONDS`` after it starts) says so:
``"partial": true`` and ``"missing"``, the partitions whose markers follow in updates. A comment line every 15 s keeps idle connections open. A
client too slow to take its messages is disconnected (and starts again from a snapshot
when it reconnects).

A client that accepts gzip gets the stream gzipped, each message flushed as it is written
(``Z_SYNC_FLUSH``): one compressor per connection, whose window spans the messages, so the
ids and values repeated from one second to the next cost a few bytes each.
"""
from __future__ import annotations

import asyncio
import zlib

from aiohttp import web as aioweb

from tracker.app import app
from tracker.positions.live_hub import Viewer, encode_update
from tracker.resources import live_hub as hub
from web import params
from web.auth import require

HEARTBEAT_SECONDS = 15.0
GZIP_LEVEL = 6
LOAD_WAIT_SECONDS = 10.0

def _keeper(access, bbox):
    def keep(marker_id: str, lat: float | None, lon: float | None) -> bool:
        if not access.permits(marker_id):
            return False
        if bbox is None or lat is None:
            return True
        return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]

    return keep


@app.page("/api/live")
async def live(web, request):
    access = await require(request)
    keep = _keeper(access, params.bbox_param(request.query))
    try:  # a snapshot taken before then says which partitions it lacks ("partial")
        await asyncio.wait_for(hub.loaded.wait(), LOAD_WAIT_SECONDS)
    except asyncio.TimeoutError:
        pass
    viewer = Viewer(keep)
    first = _first_message(request.headers.get("Last-Event-ID"), keep)
    hub.subscribe(viewer)  # no await since the first message: it gets every tick after it
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
               "Vary": "Accept-Encoding"}
    encode = _gzip_stream() if "gzip" in request.headers.get("Accept-Encoding", "") else bytes
    if encode is not bytes:
        headers["Content-Encoding"] = "gzip"
    try:
        response = aioweb.StreamResponse(headers=headers)
        await response.prepare(request)
        await response.write(encode(b"retry: 2000\n\n" + (first or b"")))
        while not viewer.dropped and not hub.should_stop:
            message = await viewer.next(HEARTBEAT_SECONDS)
            if viewer.dropped:
                break
            await response.write(encode(message if message is not None else b": ping\n\n"))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(viewer)
    return response


def _gzip_stream():
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def encode(data: bytes) -> bytes:
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    return encode


def _first_message(last_event_id: str | None, keep) -> bytes | None:
    """What a client missed since ``Last-Event-ID``, or a snapshot."""
    if last_event_id is not None and last_event_id.isdigit():
        missed = hub.missed(int(last_event_id))
        if missed is not None:
            return encode_update(hub.seq, missed, keep) if missed else None
    return hub.snapshot(keep)
