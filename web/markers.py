"""``GET /api/markers[.geojson]`` (every marker the caller may see, across the cluster) and
``GET /api/markers/{marker_id}`` (one marker, from whichever worker owns it).

A marker the caller may not see answers exactly as a marker that never reported: 404.
A request for one marker is forwarded to the worker that holds the marker's partition of
``latest`` (with the cluster secret, not the caller's credentials), so any worker answers.
While no worker can answer from ``latest`` (the owner restarting or unreachable, a rebalance,
this worker stopping) or ``latest`` lacks the marker (a partition its new owner is still
filling in), the marker's newest fix in the history database is the answer, with
``X-Tracker-Position-Source: history``: 503 only when neither can be read, 404 only when
neither has the marker.
"""
from __future__ import annotations

import hashlib

import orjson

from tables.latest import decode, latest, position_of
from tracker.app import app
from tracker.accounts.permissions import Access
from tracker.resources import database
from tracker.settings import settings
from tracker.storage.db import DATABASE_ERRORS, newest_fix
from web import params
from web.auth import is_cluster_request, require
from web.cluster import (Filters, PeerUnavailable, SharedAnswers, cluster_positions, feature_collection,
                         local_positions, owner_of, peer_position)
from web.errors import Forbidden, NotFound, Unavailable
from web.health import readiness


def _ready() -> None:
    ready, state = readiness()
    if not ready:
        raise Unavailable("not_ready", f"this worker is {state}; retry shortly")


def _tag(positions: list[dict]) -> str:
    """An ETag of the positions themselves (the GeoJSON's ages change every second)."""
    return '"' + hashlib.blake2b(orjson.dumps(positions), digest_size=16).hexdigest() + '"'


#: format -> (body, ETag) of a list of positions
RENDER = {
    "json": lambda positions: (orjson.dumps(positions), None),
    "geojson": lambda positions: (orjson.dumps(feature_collection(positions, settings.stale_after)), _tag(positions)),
}
#: Rendered lists, shared for a second by callers who see the same markers with the same filters.
_rendered = SharedAnswers()


async def visible_positions(request, access: Access, fmt: str) -> tuple[bytes, str | None]:
    """The filtered positions ``access`` may see, rendered, and their ETag (this worker's
    only with ``scope=local``)."""
    query = request.query
    filters = Filters(params.bbox_param(query), params.time_param(query, "since", None))
    scope = params.choice_param(query, "scope", "cluster", ("cluster", "local"))
    _ready()
    if scope == "local":
        if not is_cluster_request(request):
            raise Forbidden("cluster_only", "scope=local is for requests between workers")
        return RENDER[fmt](local_positions(filters))

    async def render() -> bytes:
        return RENDER[fmt](access.keep(await cluster_positions(filters)))

    try:
        return await _rendered.get((fmt, filters.key, access.scope_key), render)
    except PeerUnavailable as exc:
        raise Unavailable("peer_unavailable", f"could not reach a peer worker: {exc}") from None


@app.page("/api/markers")
async def markers_list(web, request):
    access = await require(request)
    return web.bytes((await visible_positions(request, access, "json"))[0], content_type="application/json")


@app.page("/api/markers.geojson")
async def markers_geojson(web, request):
    """With an ``ETag`` (the body's hash): a client that sends it back in ``If-None-Match``
    gets 304 and no body while nothing changed; gzip when the client takes it."""
    access = await require(request)
    body, tag = await visible_positions(request, access, "geojson")
    if tag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.bytes(b"", status=304, headers={"ETag": tag})
    response = web.bytes(body, content_type="application/geo+json", headers={"ETag": tag})
    response.enable_compression()
    return response


def unknown_marker(marker_id: str) -> NotFound:
    return NotFound("unknown_marker", f"no position for marker {marker_id!r}")


#: Seconds a request waits for a connection to the history database when ``latest`` cannot answer.
STORED_TIMEOUT = 2.0


async def latest_position(request, marker_id: str) -> tuple[dict, str]:
    """The marker's position and where it came from ("latest", or "history" while no worker
    can answer from ``latest``); 404 if it has none."""
    if is_cluster_request(request):  # a peer asks: answer from this worker's partitions only
        value = latest.get(marker_id.encode())
        if value is None:
            raise unknown_marker(marker_id)
        return position_of(decode(value)), "latest"
    try:
        position = await _live_position(marker_id)
    except Unavailable as live_unavailable:
        stored = await _stored_position(marker_id)
        if stored is None:
            raise live_unavailable from None
        return stored, "history"
    if position is None:  # unknown, or a partition its new owner is still filling in
        stored = await _stored_position(marker_id)
        if stored is None:
            raise unknown_marker(marker_id)
        return stored, "history"
    return position, "latest"


async def _live_position(marker_id: str) -> dict | None:
    """From ``latest``, on this worker or the one that owns the marker's partition."""
    _ready()
    try:
        owner = owner_of(marker_id)
        if owner is None:
            value = latest.get(marker_id.encode())
            return None if value is None else position_of(decode(value))
        return await peer_position(owner, marker_id)
    except KeyError:
        raise Unavailable("not_ready", "the marker's partition has no owner yet; retry shortly") from None
    except PeerUnavailable as exc:
        raise Unavailable("peer_unavailable", f"could not reach the worker that owns the marker: {exc}") from None


async def _stored_position(marker_id: str) -> dict | None:
    """The marker's newest fix in the history database, or None (none stored, or no database)."""
    try:
        async with database.connection(timeout=STORED_TIMEOUT) as conn:
            fix = await newest_fix(conn, marker_id)
    except DATABASE_ERRORS:
        return None
    return None if fix is None else position_of(fix)


@app.page("/api/markers/{marker_id}")
async def marker_latest(web, request, marker_id: str):
    access = await require(request)
    params.marker_id_param(marker_id)
    if not access.permits(marker_id):
        raise unknown_marker(marker_id)
    position, source = await latest_position(request, marker_id)
    return web.bytes(orjson.dumps(position), content_type="application/json",
                     headers={"X-Tracker-Position-Source": source})
