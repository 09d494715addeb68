"""``GET /api/markers/{marker_id}``: a marker's latest position, from whichever worker owns it.

``table_route`` forwards the request to the worker that holds the marker's partition of
``latest``, so any worker answers correctly.
"""
from __future__ import annotations

import orjson

from tables.latest import latest
from tracker.app import app
from tracker.position import MARKER_ID_PATTERN
from tracker.settings import settings
from web import params
from web.health import readiness
from web.cluster import Filters, PeerUnavailable, cluster_positions, feature_collection, local_positions
from web.responses import error


async def _positions(web, request):
    """The filtered positions (this worker's only with ``scope=local``), or an error response."""
    query = request.query
    try:
        filters = Filters(params.bbox_param(query), params.time_param(query, "since", None))
        scope = params.choice_param(query, "scope", "cluster", ("cluster", "local"))
    except params.BadParameter as exc:
        return None, params.response(web, exc)
    ready, state = readiness()
    if not ready:
        return None, error(web, 503, "not_ready", f"this worker is {state}; retry shortly")
    if scope == "local":
        return local_positions(filters), None
    try:
        return await cluster_positions(filters, query.items()), None
    except PeerUnavailable as exc:
        return None, error(web, 503, "peer_unavailable", f"could not reach a peer worker: {exc}")


@app.page("/api/markers")
async def markers_list(web, request):
    positions, failure = await _positions(web, request)
    if failure is not None:
        return failure
    return web.bytes(orjson.dumps(positions), content_type="application/json")


@app.page("/api/markers.geojson")
async def markers_geojson(web, request):
    positions, failure = await _positions(web, request)
    if failure is not None:
        return failure
    body = orjson.dumps(feature_collection(positions, settings.stale_after))
    return web.bytes(body, content_type="application/geo+json")


@app.page("/api/markers/{marker_id}")
@app.table_route(table=latest, match_info="marker_id")
async def marker_latest(web, request, marker_id: str):
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        return error(web, 400, "bad_marker_id", "marker_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")
    position = latest.get(marker_id.encode())
    if position is None:
        return error(web, 404, "unknown_marker", f"no position for marker {marker_id!r}")
    return web.json(position)
