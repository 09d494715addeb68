"""``GET /api/markers[.geojson]`` (every marker the caller may see, across the cluster) and
``GET /api/markers/{marker_id}`` (one marker, from whichever worker owns it).

A marker the caller may not see answers exactly as a marker that never reported: 404.
A request for one marker is forwarded to the worker that holds the marker's partition of
``latest`` (with the cluster secret, not the caller's credentials), so any worker answers.

A position is answered by the worker that may answer for its partition now
(``tracker.stream.ownership.Readiness``). When none can (the owner restarting, recovering,
or unsure it still owns the partition), the worker asked answers from its live hub, which
holds every marker's ``latest`` value as the changelog has it, once the hub has read the
marker's changelog partition to where it ended when the request arrived
(``X-Tracker-Position-Source: changelog`` instead of ``latest``); otherwise 503 ``not_ready``
with ``Retry-After``. Never a position older than one already served. An ingest-only worker
(``TRACKER_ROLE=ingest``) answers every read from its live hub, the same way. A list says
which partitions nobody could
answer for: ``X-Tracker-Partial: true`` and ``X-Tracker-Missing-Partitions`` on the JSON
list, ``"partial": true`` and ``"missing_partitions"`` in the GeoJSON.
"""
from __future__ import annotations

import hashlib

import orjson

from tables.changelog import PartitionStore
from tables.latest import decode, latest, position_of
from tracker.app import app
from tracker.accounts.permissions import Access
from tracker.positions.intake import partition_of
from tracker.resources import live_hub, readiness
from tracker.settings import settings
from web import params
from web.auth import is_cluster_request, require, visible_marker
from web.cluster import (Filters, HubNotCurrent, PeerNotReady, PeerUnavailable, Scan, SharedAnswers,
                         cluster_positions, covered_header, feature_collection, for_asker, local_positions, owner_of,
                         peer_position)
from web.errors import Forbidden, NotFound, Unavailable, unknown_marker

RETRY_AFTER = {"Retry-After": "1"}


def not_ready(what: str) -> Unavailable:
    return Unavailable("not_ready", f"{what}; retry shortly", headers=RETRY_AFTER)


def partial_headers(missing: list[int]) -> dict[str, str]:
    return {"X-Tracker-Partial": "true", "X-Tracker-Missing-Partitions": ",".join(map(str, missing))} if missing else {}


def _tag(positions: list[dict]) -> str:
    """An ETag of the positions themselves (the GeoJSON's ages change every second)."""
    return '"' + hashlib.blake2b(orjson.dumps(positions), digest_size=16).hexdigest() + '"'


#: format -> (body, ETag) of a list of positions and the partitions nobody answered for
RENDER = {
    "json": lambda positions, missing: (orjson.dumps(positions), None),
    "geojson": lambda positions, missing: (orjson.dumps(feature_collection(positions, settings.stale_after, missing)),
                                           _tag([positions, missing])),
}
#: Rendered lists, shared for a second by callers who see the same markers with the same filters.
_rendered = SharedAnswers()


async def visible_positions(request, access: Access, fmt: str) -> tuple[bytes, str | None, dict[str, str]]:
    """The filtered positions ``access`` may see, rendered, their ETag, and the headers that
    say what the list covers (this worker's partitions only with ``scope=local``)."""
    query = request.query
    filters = Filters(params.bbox_param(query), params.time_param(query, "since", None))
    scope = params.choice_param(query, "scope", "cluster", ("cluster", "local"))
    if scope == "local":
        if not is_cluster_request(request):
            raise Forbidden("cluster_only", "scope=local is for requests between workers")
        local = local_positions(filters)
        return (*RENDER[fmt](for_asker(request, local.positions), None), covered_header(local))

    async def render() -> tuple[bytes, str | None, dict[str, str]]:
        scan: Scan = await cluster_positions(filters)
        missing = scan.missing
        return (*RENDER[fmt](access.keep(scan.positions), missing), partial_headers(missing))

    try:
        return await _rendered.get((fmt, filters.key, access.scope_key), render)
    except PeerUnavailable as exc:
        raise Unavailable("peer_unavailable", f"could not reach a peer worker: {exc}") from None
    except HubNotCurrent:
        raise not_ready("this worker has not read every marker yet") from None


@app.page("/api/markers")
async def markers_list(web, request):
    access = await require(request)
    body, _, headers = await visible_positions(request, access, "json")
    return web.bytes(body, content_type="application/json", headers=headers)


@app.page("/api/markers.geojson")
async def markers_geojson(web, request):
    """With an ``ETag`` (the body's hash): a client that sends it back in ``If-None-Match``
    gets 304 and no body while nothing changed; gzip when the client takes it."""
    access = await require(request)
    body, tag, headers = await visible_positions(request, access, "geojson")
    if tag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.bytes(b"", status=304, headers={"ETag": tag, **headers})
    response = web.bytes(body, content_type="application/geo+json", headers={"ETag": tag, **headers})
    response.enable_compression()
    return response


def local_position(marker_id: str) -> dict | None:
    """The marker's position from this worker's own partition of it; 503 when this worker
    may not answer for that partition now."""
    partition = partition_of(marker_id.encode(), settings.topic_partitions)
    if partition not in readiness.partitions():
        raise not_ready(f"this worker cannot answer for partition {partition} now")
    value = PartitionStore(latest).get(partition, marker_id.encode())
    return None if value is None else position_of(decode(value))


async def changelog_position(marker_id: str, unavailable: Unavailable) -> tuple[dict, str]:
    """The marker's position as the changelog holds it, from this worker's live hub, once the
    hub has read the marker's changelog partition to where it ended when asked; else
    ``unavailable`` is raised."""
    if not await live_hub.caught_up([partition_of(marker_id.encode(), settings.topic_partitions)]):
        raise unavailable
    value = live_hub.values.get(marker_id)
    if value is None:
        raise unknown_marker(marker_id)
    return position_of(decode(value)), "changelog"


async def latest_position(request, marker_id: str) -> tuple[dict, str]:
    """The marker's position, and where it came from (``latest``, or ``changelog`` when the
    worker that owns it cannot answer); 404 if it has none."""
    if app.should_stop:  # its tables and its client to the peers are closing: ask another worker
        raise not_ready("this worker is stopping")
    if is_cluster_request(request):  # a peer asks: answer from this worker's partitions only
        position = local_position(marker_id)
        if position is None:
            raise unknown_marker(marker_id)
        return position, "latest"
    if not settings.runs_stages:  # an ingest-only worker owns no partition
        return await changelog_position(marker_id, not_ready("this worker has not read every marker yet"))
    try:
        owner = owner_of(marker_id)
        if owner is None:
            position = local_position(marker_id)
        else:
            position = await peer_position(owner, marker_id)
    except KeyError:
        return await changelog_position(marker_id, not_ready("the marker's partition has no owner yet"))
    except Unavailable as exc:  # this worker owns it but cannot answer for it now
        return await changelog_position(marker_id, exc)
    except PeerNotReady:
        return await changelog_position(marker_id, not_ready("the worker that owns the marker cannot answer for it now"))
    except PeerUnavailable as exc:
        return await changelog_position(marker_id, Unavailable(
            "peer_unavailable", f"could not reach the worker that owns the marker: {exc}", headers=RETRY_AFTER))
    if position is None:
        raise unknown_marker(marker_id)
    return position, "latest"


@app.page("/api/markers/{marker_id}")
async def marker_latest(web, request, marker_id: str):
    visible_marker(await require(request), marker_id)
    position, source = await latest_position(request, marker_id)
    if is_cluster_request(request):
        (position,) = for_asker(request, [position])
    return web.bytes(orjson.dumps(position), content_type="application/json",
                     headers={"X-Tracker-Position-Source": source})
