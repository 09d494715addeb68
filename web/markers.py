"""``GET /api/markers[.geojson]`` (every marker, across the cluster) and
``GET /api/markers/{marker_id}`` (one marker, from whichever worker owns it).

``table_route`` forwards a request for one marker to the worker that holds the marker's
partition of ``latest``, so any worker answers correctly.
"""
from __future__ import annotations

import orjson

from tables.latest import decode, latest, position_of
from tracker.app import app
from tracker.settings import settings
from web import params
from web.cluster import Filters, PeerUnavailable, cluster_positions, feature_collection, local_positions
from web.errors import NotFound, Unavailable
from web.health import readiness


async def _positions(request) -> list[dict]:
    """The filtered positions (this worker's only with ``scope=local``)."""
    query = request.query
    filters = Filters(params.bbox_param(query), params.time_param(query, "since", None))
    scope = params.choice_param(query, "scope", "cluster", ("cluster", "local"))
    ready, state = readiness()
    if not ready:
        raise Unavailable("not_ready", f"this worker is {state}; retry shortly")
    if scope == "local":
        return local_positions(filters)
    try:
        return await cluster_positions(filters, query.items())
    except PeerUnavailable as exc:
        raise Unavailable("peer_unavailable", f"could not reach a peer worker: {exc}") from None


@app.page("/api/markers")
async def markers_list(web, request):
    return web.bytes(orjson.dumps(await _positions(request)), content_type="application/json")


@app.page("/api/markers.geojson")
async def markers_geojson(web, request):
    body = orjson.dumps(feature_collection(await _positions(request), settings.stale_after))
    return web.bytes(body, content_type="application/geo+json")


@app.page("/api/markers/{marker_id}")
@app.table_route(table=latest, match_info="marker_id")
async def marker_latest(web, request, marker_id: str):
    params.marker_id_param(marker_id)
    value = latest.get(marker_id.encode())
    if value is None:
        raise NotFound("unknown_marker", f"no position for marker {marker_id!r}")
    return web.bytes(orjson.dumps(position_of(decode(value))), content_type="application/json")
