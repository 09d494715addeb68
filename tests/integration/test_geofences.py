"""Geofences over HTTP on a real worker and Postgres: an admin manages them, anyone signed
in reads them, and a bad one is refused with what is wrong."""
import asyncio
import time
from contextlib import asynccontextmanager

import orjson
import psycopg
import pytest

from tracker.geofences import store as geofence_store
from tracker.geofences.cache import GeofenceCache
from tracker.geofences.model import parse_feature

DEPOT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
         "properties": {"name": "depot", "radius": 300, "speed_limit": 5, "markers": ["van-*"]}}
CITY = {"type": "Feature", "properties": {"name": "city"}, "geometry": {
    "type": "Polygon", "coordinates": [[[2.0, 48.5], [2.7, 48.5], [2.7, 49.0], [2.0, 49.0], [2.0, 48.5]]]}}
JSON = {"Content-Type": "application/geo+json"}


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker


def test_an_admin_adds_changes_and_removes_geofences_that_everyone_signed_in_reads(stack, worker):
    viewer = stack.user("geo-viewer", "viewer", ["van-1"])
    status, _, depot = worker.request("POST", "/api/geofences", orjson.dumps(DEPOT), headers=JSON)
    assert status == 201 and depot["properties"]["radius"] == 300 and depot["id"]
    status, _, city = worker.request("POST", "/api/geofences", orjson.dumps(CITY), headers=JSON)
    assert status == 201

    status, collection = worker.get("/api/geofences", token=viewer)
    assert status == 200 and collection["type"] == "FeatureCollection"
    assert [f["properties"]["name"] for f in collection["features"]] == ["depot", "city"]
    assert worker.get(f"/api/geofences/{depot['id']}", token=viewer)[1] == depot

    moved = {**CITY, "properties": {"name": "greater city", "speed_limit": 14}}
    status, _, body = worker.request("PUT", f"/api/geofences/{city['id']}", orjson.dumps(moved), headers=JSON)
    assert status == 200 and body["properties"]["name"] == "greater city"
    assert worker.request("DELETE", f"/api/geofences/{depot['id']}")[0] == 204
    assert worker.get(f"/api/geofences/{depot['id']}")[0] == 404
    assert [f["properties"]["name"] for f in worker.get("/api/geofences")[1]["features"]] == ["greater city"]

    for method, path in (("POST", "/api/geofences"), ("PUT", f"/api/geofences/{city['id']}"),
                         ("DELETE", f"/api/geofences/{city['id']}")):
        assert worker.request(method, path, orjson.dumps(CITY), token=viewer, headers=JSON)[0] == 403
        assert worker.request(method, path, orjson.dumps(CITY), token=None, headers=JSON)[0] == 401
    assert stack.query("SELECT version FROM geofences_version")[0][0] == 4  # every change moved it


@pytest.mark.parametrize("body, says", [
    (b"not json", "not valid JSON"),
    (orjson.dumps({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
                   "properties": {"name": "road"}}), "Polygon, a MultiPolygon or a Point"),
    (orjson.dumps({**DEPOT, "properties": {"name": "depot"}}), "radius"),
    (orjson.dumps({"type": "Feature", "properties": {"name": "bow"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}), "Self-intersection"),
])
def test_a_bad_geofence_is_a_400_that_says_what_is_wrong(worker, body, says):
    status, _, answer = worker.request("POST", "/api/geofences", body, headers=JSON)
    assert status == 400 and says in answer["message"], answer


async def test_a_worker_sees_a_new_geofence_within_5_seconds_and_keeps_its_set_without_postgres(stack):
    """``GeofenceCache`` on the real database: a change shows within one poll; a database
    that cannot be reached leaves the set as it was."""
    url = {"value": stack.settings.database_url}

    @asynccontextmanager
    async def connection():
        async with await psycopg.AsyncConnection.connect(url["value"], autocommit=True, connect_timeout=2) as conn:
            yield conn

    cache = GeofenceCache(connection, poll_seconds=0.5)
    await cache.start()
    try:
        await asyncio.wait_for(cache.loaded.wait(), 10)
        before = len(cache.index)
        async with connection() as conn:
            await geofence_store.add_many(conn, [parse_feature({**CITY, "properties": {"name": "cache test"}})])
        added = time.monotonic()
        while len(cache.index) == before:
            assert time.monotonic() - added < 5, "the new geofence did not reach the cache within 5 s"
            await asyncio.sleep(0.1)
        assert [g.name for g in cache.index.containing("anyone", 48.7, 2.2)][-1] == "cache test"

        url["value"] = "postgresql://nobody@127.0.0.1:1/none"  # Postgres gone, as far as the cache knows
        cache.version = -1  # and a reload due
        assert await cache.refresh() is False and len(cache.index) == before + 1
    finally:
        await cache.stop()
