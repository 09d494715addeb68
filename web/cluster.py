"""Cluster-wide reads of ``latest``: this worker's active partitions plus every peer's.

Peers are the other members of the consumer group, with the URLs they published in the
partition assignment (``--web-host``/``--web-port``). A peer is asked for its local rows
only (``scope=local``), so no request fans out twice.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, Iterable

import aiohttp
import orjson

from tables.latest import decode, latest, position_of
from tracker.app import app
from tracker.position import micros_of

PEER_TIMEOUT = aiohttp.ClientTimeout(total=10)


class PeerUnavailable(Exception):
    pass


class Filters:
    def __init__(self, bbox: tuple[float, float, float, float] | None, since: datetime | None) -> None:
        self.bbox = bbox
        self.since_us = None if since is None else micros_of(since)

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


def peer_urls() -> list[str]:
    me = str(app.conf.canonical_url).rstrip("/")
    hosts = app.router.table_metadata(latest.name)
    return sorted(url.rstrip("/") for url in hosts if url.rstrip("/") != me)


async def cluster_positions(filters: Filters, query: Iterable[tuple[str, str]]) -> list[dict]:
    """Every marker's latest position across the cluster, sorted by marker id."""
    forwarded = [(key, value) for key, value in query if key != "scope"] + [("scope", "local")]
    peers = peer_urls()
    positions = local_positions(filters)
    if peers:
        async with aiohttp.ClientSession(timeout=PEER_TIMEOUT) as session:
            answers = await asyncio.gather(*(_ask(session, peer, forwarded) for peer in peers))
        for answer in answers:
            positions.extend(answer)
    positions.sort(key=lambda position: position["marker_id"])
    return positions


async def _ask(session: aiohttp.ClientSession, peer: str, query: list[tuple[str, str]]) -> list[dict]:
    try:
        async with session.get(f"{peer}/api/markers", params=query) as response:
            if response.status != 200:
                raise PeerUnavailable(f"{peer} answered {response.status}")
            return orjson.loads(await response.read())
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise PeerUnavailable(f"{peer}: {exc.__class__.__name__}") from None


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
