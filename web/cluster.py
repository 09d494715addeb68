"""Cluster-wide reads of ``latest``: this worker's partitions plus every peer's.

Peers are the other members of the consumer group, with the URLs they published in the
partition assignment (``--web-host``/``--web-port``). A peer is asked for its local rows
only (``scope=local``), so no request fans out twice. Each worker answers only for the
partitions it may answer for now (``tracker.stream.ownership.Readiness``) and says which in
``PARTITIONS_HEADER``; the partitions nobody answered for (a worker still recovering, one
that cannot be reached) are the list's ``missing`` partitions, never silently left out. An
ingest-only worker (``TRACKER_ROLE=ingest``) lists from its live hub instead. Requests between workers carry
``TRACKER_CLUSTER_SECRET`` and nothing of the client's (no cookie, no Authorization); a
peer's answer is parsed as JSON and every row checked before it is used; a peer that
answers anything else is unavailable, and is never relayed.

The cluster-wide list is scanned at most once per ``SNAPSHOT_SECONDS`` for the same
filters, whoever asks (each caller then sees the markers it may): fifty viewers polling
cost about one scan a second.
"""
from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

from tables.changelog import PartitionStore
from tables.latest import decode, latest, position_of
from tracker.app import app
from tracker.metrics import CLUSTER_SCANS
from tracker.resources import live_hub, readiness
from tracker.positions.model import STORED_MARKER_ID, format_micros, micros_of
from tracker.settings import settings
from web.auth import CLUSTER_HEADER

PEER_TIMEOUT = aiohttp.ClientTimeout(total=10)
#: The partitions of ``latest`` a worker's local rows cover, comma separated.
PARTITIONS_HEADER = "X-Tracker-Partitions"
SNAPSHOT_SECONDS = 1.0
MAX_SNAPSHOTS = 256


class PeerUnavailable(Exception):
    pass


class PeerNotReady(PeerUnavailable):
    """The peer cannot answer for the partition now (503): recovering, or not proven its owner."""


class Filters:
    def __init__(self, bbox: tuple[float, float, float, float] | None, since: datetime | None) -> None:
        self.bbox = bbox
        self.since_us = None if since is None else micros_of(since)

    @property
    def key(self) -> tuple:
        return self.bbox, self.since_us

    @property
    def query(self) -> list[tuple[str, str]]:
        """The same filters as query parameters, for a peer."""
        query = []
        if self.bbox is not None:
            query.append(("bbox", ",".join(repr(edge) for edge in self.bbox)))
        if self.since_us is not None:
            query.append(("since", format_micros(self.since_us)))
        return query

    def keep(self, fix: list) -> bool:
        if self.bbox is not None:
            min_lon, min_lat, max_lon, max_lat = self.bbox
            if not (min_lon <= fix[3] <= max_lon and min_lat <= fix[2] <= max_lat):
                return False
        return self.since_us is None or fix[1] >= self.since_us


class Scan:
    """Positions, and the partitions of ``latest`` they cover."""

    def __init__(self, positions: list[dict], covered: frozenset[int]) -> None:
        self.positions, self.covered = positions, covered

    @property
    def missing(self) -> list[int]:
        return sorted(set(range(settings.topic_partitions)) - self.covered)


def local_positions(filters: Filters) -> Scan:
    """Rows of the partitions this worker may answer for now."""
    covered = readiness.partitions()
    store, positions = PartitionStore(latest), []
    for partition in sorted(covered):
        for _, value in store.items(partition):
            fix = decode(value)
            if filters.keep(fix):
                positions.append(position_of(fix))
    return Scan(positions, covered)


def covered_header(scan: Scan) -> dict[str, str]:
    return {PARTITIONS_HEADER: ",".join(map(str, sorted(scan.covered)))}


def _url(url) -> str:
    return str(url).rstrip("/")


def peer_urls() -> list[str]:
    me = _url(app.conf.canonical_url)
    hosts = app.router.table_metadata(latest.name)
    return sorted(_url(url) for url in hosts if _url(url) != me)


def owner_of(marker_id: str) -> str | None:
    """The URL of the worker that owns ``marker_id``'s partition of ``latest``; None for
    this worker. ``KeyError`` while the partition has no owner (a rebalance)."""
    try:
        owner = _url(app.router.key_store(latest.name, marker_id.encode()))
    except TypeError:  # a starting worker's producer has no metadata of the changelog yet
        raise KeyError(marker_id) from None
    return None if owner == _url(app.conf.canonical_url) else owner


class SharedAnswers:
    """Answers shared by every caller who asks the same (``key``) within ``SNAPSHOT_SECONDS``,
    and while one is being computed: concurrent callers wait for the same work."""

    def __init__(self) -> None:
        self.entries: dict[tuple, tuple[float, asyncio.Future]] = {}

    async def get(self, key: tuple, compute: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        entry = self.entries.get(key)
        if entry is None or now - entry[0] >= SNAPSHOT_SECONDS:
            if len(self.entries) >= MAX_SNAPSHOTS:
                self.entries.clear()
            entry = self.entries[key] = (now, asyncio.ensure_future(compute()))
            entry[1].add_done_callback(lambda done, key=key, entry=entry: self._drop_failure(key, entry, done))
        future = entry[1]
        return await asyncio.shield(future)

    def _drop_failure(self, key: tuple, entry: tuple, done: asyncio.Future) -> None:
        """A failure is shared only with the callers already waiting, never cached."""
        if done.cancelled() or done.exception() is not None:
            if self.entries.get(key) is entry:
                del self.entries[key]


_snapshots = SharedAnswers()


async def cluster_positions(filters: Filters) -> Scan:
    """Every marker's latest position across the cluster, sorted by marker id, and the
    partitions they cover. An ingest-only worker owns no partition and knows no peer: it
    reads them all from its live hub (``hub_positions``)."""
    if not settings.runs_stages:
        return await hub_positions(filters)
    return await _snapshots.get(filters.key, lambda: _scan_cluster(filters))


class HubNotCurrent(Exception):
    """The live hub could not read the ``latest`` changelog to where it ended when asked."""


async def hub_positions(filters: Filters) -> Scan:
    """Every marker's ``latest`` value as the changelog holds it (``tracker.positions.live_hub``),
    once the hub has read every partition to where it ended when asked: every partition
    covered; ``HubNotCurrent`` otherwise."""
    if not await live_hub.caught_up():
        raise HubNotCurrent()
    positions = []
    for value in list(live_hub.values.values()):
        fix = decode(value)
        if filters.keep(fix):
            positions.append(position_of(fix))
    positions.sort(key=lambda position: position["marker_id"])
    return Scan(positions, frozenset(range(settings.topic_partitions)))


async def _scan_cluster(filters: Filters) -> Scan:
    CLUSTER_SCANS.inc()
    peers = peer_urls()
    local = local_positions(filters)
    positions, covered = local.positions, set(local.covered)
    if peers:
        if not settings.cluster_secret:
            raise PeerUnavailable("TRACKER_CLUSTER_SECRET is not set: workers cannot ask each other")
        query = filters.query + [("scope", "local")]
        answers = await asyncio.gather(*(_ask_rows(app.http_client, peer, query) for peer in peers),
                                       return_exceptions=True)
        for answer in answers:
            if isinstance(answer, PeerUnavailable):
                continue  # its partitions are missing from the answer, and said to be
            if isinstance(answer, BaseException):
                raise answer
            positions.extend(answer.positions)
            covered |= answer.covered
    positions.sort(key=lambda position: position["marker_id"])
    return Scan(positions, frozenset(covered))


async def peer_position(owner: str, marker_id: str) -> dict | None:
    """``marker_id``'s position from the worker that owns it; None if it has none."""
    if not settings.cluster_secret:
        raise PeerUnavailable("TRACKER_CLUSTER_SECRET is not set: workers cannot ask each other")
    status, answer, _ = await _ask(app.http_client, owner, f"/api/markers/{marker_id}", [], allow_missing=True)
    if status == 404:
        return None
    if not valid_position(answer) or answer["marker_id"] != marker_id:
        raise PeerUnavailable(f"{owner} answered a malformed position")
    return answer


async def _ask_rows(session: aiohttp.ClientSession, peer: str, query: list[tuple[str, str]]) -> Scan:
    _, answer, headers = await _ask(session, peer, "/api/markers", query)
    if not isinstance(answer, list) or not all(valid_position(row) for row in answer):
        raise PeerUnavailable(f"{peer} answered rows that are not positions")
    declared = headers.get(PARTITIONS_HEADER)
    if declared is None:  # a peer of an earlier version answers for every partition it holds
        return Scan(answer, frozenset(range(settings.topic_partitions)))
    try:
        covered = frozenset(int(part) for part in declared.split(",") if part)
    except ValueError:
        raise PeerUnavailable(f"{peer} answered a malformed {PARTITIONS_HEADER}") from None
    return Scan(answer, covered)


async def _ask(session: aiohttp.ClientSession, peer: str, path: str, query: list[tuple[str, str]],
               allow_missing: bool = False) -> tuple[int, Any, Any]:
    headers = {CLUSTER_HEADER: settings.cluster_secret, "Accept": "application/json",
               FIELDS_HEADER: ",".join(NEWER_FIELDS)}
    try:
        async with session.get(f"{peer}{path}", params=query, headers=headers, allow_redirects=False,
                               timeout=PEER_TIMEOUT) as response:
            missing = allow_missing and response.status == 404
            if response.status == 503:
                raise PeerNotReady(f"{peer} is not ready")
            if response.status != 200 and not missing:
                raise PeerUnavailable(f"{peer} answered {response.status}")
            if response.content_type != "application/json":
                raise PeerUnavailable(f"{peer} answered {response.content_type or 'no content type'}, not JSON")
            body = await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise PeerUnavailable(f"{peer}: {exc.__class__.__name__}") from None
    try:
        return response.status, orjson.loads(body), response.headers
    except orjson.JSONDecodeError:
        raise PeerUnavailable(f"{peer} answered malformed JSON") from None


POSITION_KEYS = frozenset(("marker_id", "lat", "lon", "time", "speed", "heading", "altitude", "accuracy",
                           "battery", "source", "attributes", "received_at", "odometer", "moving", "name",
                           "heard_at"))
#: What peers of earlier versions send, during a rolling upgrade: before the time last heard,
#: before the display name, and before the journeys stage.
_EARLIER_POSITION_KEYS = (POSITION_KEYS - {"heard_at"}, POSITION_KEYS - {"heard_at", "name"},
                          POSITION_KEYS - {"heard_at", "name", "odometer", "moving"})
#: Sent by a worker asking a peer: the fields it takes beyond those of the earlier versions.
#: A peer leaves them out for a worker that does not say so (one of an earlier version,
#: which would refuse a row with a field it does not know).
FIELDS_HEADER = "X-Tracker-Fields"
NEWER_FIELDS = ("heard_at",)


def for_asker(request, positions: list[dict]) -> list[dict]:
    """``positions`` as the peer that asked can read them: without the fields it did not name."""
    named = {field.strip() for field in request.headers.get(FIELDS_HEADER, "").split(",")}
    dropped = [field for field in NEWER_FIELDS if field not in named]
    if not dropped:
        return positions
    return [{key: value for key, value in position.items() if key not in dropped} for position in positions]
_MEASURES = ("speed", "heading", "altitude", "accuracy", "battery")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _iso(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def valid_position(row: Any) -> bool:
    """Whether a peer's row has exactly the shape this worker's own rows have."""
    return (isinstance(row, dict) and (row.keys() == POSITION_KEYS or row.keys() in _EARLIER_POSITION_KEYS)
            and isinstance(row["marker_id"], str) and STORED_MARKER_ID.fullmatch(row["marker_id"]) is not None
            and _number(row["lat"]) and -90 <= row["lat"] <= 90
            and _number(row["lon"]) and -180 <= row["lon"] <= 180
            and _iso(row["time"]) and _iso(row["received_at"])
            and all(row[name] is None or _number(row[name]) for name in _MEASURES)
            and (row["source"] is None or isinstance(row["source"], str))
            and (row["attributes"] is None or isinstance(row["attributes"], dict))
            and (row.get("odometer") is None or _number(row["odometer"]))
            and (row.get("moving") is None or isinstance(row["moving"], bool))
            and (row.get("name") is None or isinstance(row["name"], str))
            and (row.get("heard_at") is None or _iso(row["heard_at"])))


def feature_collection(positions: list[dict], stale_after: float, missing: list[int] | None = None) -> dict[str, Any]:
    """The positions as a GeoJSON FeatureCollection; with ``missing`` partitions (nobody
    could answer for them) it says ``"partial": true`` and which."""
    now = time.time()
    features = []
    for position in positions:
        age = now - datetime.fromisoformat(position["time"]).timestamp()
        heard = position.get("heard_at")  # a parked phone's heartbeats keep it from going stale
        silent = age if heard is None else now - datetime.fromisoformat(heard).timestamp()
        features.append({
            "type": "Feature",
            "id": position["marker_id"],
            "geometry": {"type": "Point", "coordinates": [position["lon"], position["lat"]]},
            "properties": {**position, "age_seconds": round(age, 1), "stale": silent > stale_after},
        })
    collection = {"type": "FeatureCollection", "features": features}
    if missing:
        collection.update(partial=True, missing_partitions=missing)
    return collection
