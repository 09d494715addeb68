"""Cluster-wide reads of ``latest``: this worker's active partitions plus every peer's.

Peers are the other members of the consumer group, with the URLs they published in the
partition assignment (``--web-host``/``--web-port``). A peer is asked for its local rows
only (``scope=local``), so no request fans out twice. Requests between workers carry
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

from tables.latest import decode, latest, position_of
from tracker.app import app
from tracker.metrics import CLUSTER_SCANS
from tracker.positions.model import STORED_MARKER_ID, format_micros, micros_of
from tracker.settings import settings
from web.auth import CLUSTER_HEADER

PEER_TIMEOUT = aiohttp.ClientTimeout(total=10)
SNAPSHOT_SECONDS = 1.0
MAX_SNAPSHOTS = 256


class PeerUnavailable(Exception):
    pass


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


def local_positions(filters: Filters) -> list[dict]:
    """Rows of the partitions this worker owns (RocksDB iterates active partitions only)."""
    positions = []
    for value in latest.values():
        fix = decode(value)
        if filters.keep(fix):
            positions.append(position_of(fix))
    return positions


def _url(url) -> str:
    return str(url).rstrip("/")


def peer_urls() -> list[str]:
    me = _url(app.conf.canonical_url)
    hosts = app.router.table_metadata(latest.name)
    return sorted(_url(url) for url in hosts if _url(url) != me)


def owner_of(marker_id: str) -> str | None:
    """The URL of the worker that owns ``marker_id``'s partition of ``latest``; None for
    this worker. ``KeyError`` while the partition has no owner (a rebalance)."""
    owner = _url(app.router.key_store(latest.name, marker_id.encode()))
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


async def cluster_positions(filters: Filters) -> list[dict]:
    """Every marker's latest position across the cluster, sorted by marker id."""
    return await _snapshots.get(filters.key, lambda: _scan_cluster(filters))


async def _scan_cluster(filters: Filters) -> list[dict]:
    CLUSTER_SCANS.inc()
    peers = peer_urls()
    positions = local_positions(filters)
    if peers:
        if not settings.cluster_secret:
            raise PeerUnavailable("TRACKER_CLUSTER_SECRET is not set: workers cannot ask each other")
        query = filters.query + [("scope", "local")]
        answers = await asyncio.gather(*(_ask_rows(app.http_client, peer, query) for peer in peers))
        for answer in answers:
            positions.extend(answer)
    positions.sort(key=lambda position: position["marker_id"])
    return positions


async def peer_position(owner: str, marker_id: str) -> dict | None:
    """``marker_id``'s position from the worker that owns it; None if it has none."""
    if not settings.cluster_secret:
        raise PeerUnavailable("TRACKER_CLUSTER_SECRET is not set: workers cannot ask each other")
    status, answer = await _ask(app.http_client, owner, f"/api/markers/{marker_id}", [], allow_missing=True)
    if status == 404:
        return None
    if not valid_position(answer) or answer["marker_id"] != marker_id:
        raise PeerUnavailable(f"{owner} answered a malformed position")
    return answer


async def _ask_rows(session: aiohttp.ClientSession, peer: str, query: list[tuple[str, str]]) -> list[dict]:
    _, answer = await _ask(session, peer, "/api/markers", query)
    if not isinstance(answer, list) or not all(valid_position(row) for row in answer):
        raise PeerUnavailable(f"{peer} answered rows that are not positions")
    return answer


async def _ask(session: aiohttp.ClientSession, peer: str, path: str, query: list[tuple[str, str]],
               allow_missing: bool = False) -> tuple[int, Any]:
    headers = {CLUSTER_HEADER: settings.cluster_secret, "Accept": "application/json"}
    try:
        async with session.get(f"{peer}{path}", params=query, headers=headers, allow_redirects=False,
                               timeout=PEER_TIMEOUT) as response:
            missing = allow_missing and response.status == 404
            if response.status != 200 and not missing:
                raise PeerUnavailable(f"{peer} answered {response.status}")
            if response.content_type != "application/json":
                raise PeerUnavailable(f"{peer} answered {response.content_type or 'no content type'}, not JSON")
            body = await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise PeerUnavailable(f"{peer}: {exc.__class__.__name__}") from None
    try:
        return response.status, orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PeerUnavailable(f"{peer} answered malformed JSON") from None


POSITION_KEYS = frozenset(("marker_id", "lat", "lon", "time", "speed", "heading", "altitude", "accuracy",
                           "battery", "source", "attributes", "received_at", "odometer", "moving", "name"))
#: What peers of earlier versions send, during a rolling upgrade: before the display name,
#: and before the journeys stage.
_EARLIER_POSITION_KEYS = (POSITION_KEYS - {"name"}, POSITION_KEYS - {"name", "odometer", "moving"})
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
            and (row.get("name") is None or isinstance(row["name"], str)))


def feature_collection(positions: list[dict], stale_after: float) -> dict[str, Any]:
    now = time.time()
    features = []
    for position in positions:
        age = now - datetime.fromisoformat(position["time"]).timestamp()
        features.append({
            "type": "Feature",
            "id": position["marker_id"],
            "geometry": {"type": "Point", "coordinates": [position["lon"], position["lat"]]},
            "properties": {**position, "age_seconds": round(age, 1), "stale": age > stale_after},
        })
    return {"type": "FeatureCollection", "features": features}
