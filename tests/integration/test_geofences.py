"""Geofences over HTTP on a real worker and Postgres: an admin manages them, anyone signed
in reads those that apply to markers it may see, a bad one is refused with what is wrong,
and so is one past the caps (vertices of every ring and part, vertices in all, geofences)."""
import asyncio
import math
import subprocess
import sys
import time
from pathlib import Path
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


MAX_EACH, MAX_ALL, MAX_COUNT = 12_000, 30_000, 12
CAPS = {"TRACKER_GEOFENCE_MAX_VERTICES": str(MAX_EACH), "TRACKER_GEOFENCES_MAX_VERTICES": str(MAX_ALL),
        "TRACKER_GEOFENCES_MAX": str(MAX_COUNT)}


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker(**CAPS).start()
    worker.wait_ready()
    return worker


def ring(vertices: int, lon: float, lat: float, radius: float = 0.01) -> list:
    points = [[lon + radius * math.cos(2 * math.pi * i / (vertices - 1)),
               lat + radius * math.sin(2 * math.pi * i / (vertices - 1))] for i in range(vertices - 1)]
    return points + [points[0]]


def polygon(name: str, vertices: int, lon: float = 10.0) -> dict:
    return {"type": "Feature", "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring(vertices, lon, 45.0)]}}


def test_an_admin_adds_changes_and_removes_geofences_that_everyone_signed_in_reads(stack, worker):
    viewer = stack.user("geo-viewer", "viewer", ["van-1"])
    status, _, depot = worker.request("POST", "/api/geofences", orjson.dumps(DEPOT), headers=JSON)
    assert status == 201 and depot["properties"]["radius"] == 300 and depot["id"]
    status, _, city = worker.request("POST", "/api/geofences", orjson.dumps(CITY), headers=JSON)
    assert status == 201

    status, collection = worker.get("/api/geofences", token=viewer)
    assert status == 200 and collection["type"] == "FeatureCollection"
    assert [f["properties"]["name"] for f in collection["features"]] == ["depot", "city"]
    assert worker.get(f"/api/geofences/{depot['id']}")[1] == depot
    # the viewer sees van-1 only: the depot's "van-*" shows as what it may see of it
    assert worker.get(f"/api/geofences/{depot['id']}", token=viewer)[1] == \
        {**depot, "properties": {**depot["properties"], "markers": ["van-1"]}}

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
    worker.request("DELETE", f"/api/geofences/{city['id']}")


def test_a_viewer_sees_only_the_geofences_of_markers_it_may_see(stack, worker):
    viewer = stack.user("geo-narrow", "viewer", ["van-1", "bus-*"])
    made = {}
    for name, markers in (("vans", ["van-*", "car-9"]), ("car", ["car-1"]), ("all", []), ("buses", ["bus-*"]),
                          ("bus-7", ["bus-7", "tram-1"])):
        status, _, body = worker.request("POST", "/api/geofences", orjson.dumps(
            {**DEPOT, "properties": {"name": name, "radius": 50, "markers": markers}}), headers=JSON)
        assert status == 201
        made[name] = body["id"]
    try:
        shown = {f["properties"]["name"]: f["properties"]["markers"]
                 for f in worker.get("/api/geofences", token=viewer)[1]["features"]}
        assert shown == {"vans": ["van-1"], "all": [], "buses": ["bus-*"], "bus-7": ["bus-7"]}
        hidden = worker.get(f"/api/geofences/{made['car']}", token=viewer)
        unknown = worker.get("/api/geofences/999999", token=viewer)
        assert hidden[0] == unknown[0] == 404 and hidden[1]["error"] == unknown[1]["error"]
    finally:
        for geofence_id in made.values():
            worker.request("DELETE", f"/api/geofences/{geofence_id}")


def test_every_ring_and_part_counts_and_the_set_is_capped(stack, worker):
    parts = {"type": "Feature", "properties": {"name": "islands"}, "geometry": {
        "type": "MultiPolygon", "coordinates": [[ring(5_000, 10.0 + i, 45.0)] for i in range(3)]}}
    status, _, answer = worker.request("POST", "/api/geofences", orjson.dumps(parts), headers=JSON)
    assert status == 400 and answer["error"] == "bad_geofence" and "has 15,000" in answer["message"], answer
    holed = {"type": "Feature", "properties": {"name": "holed"}, "geometry": {
        "type": "Polygon", "coordinates": [ring(8_000, 10.0, 45.0, 0.05), ring(8_000, 10.0, 45.0, 0.01)]}}
    status, _, answer = worker.request("POST", "/api/geofences", orjson.dumps(holed), headers=JSON)
    assert status == 400 and "has 16,000" in answer["message"], answer

    made = []
    try:
        for n in range(2):
            status, _, body = worker.request("POST", "/api/geofences", orjson.dumps(
                polygon(f"big-{n}", 11_000, 10.0 + n)), headers=JSON)
            assert status == 201, body
            made.append(body["id"])
        status, _, answer = worker.request("POST", "/api/geofences", orjson.dumps(polygon("big-2", 11_000, 13.0)),
                                           headers=JSON)
        assert status == 400 and answer["error"] == "geofence_limit" and "TRACKER_GEOFENCES_MAX_VERTICES" in \
            answer["message"], answer
        status, _, answer = worker.request("PUT", f"/api/geofences/{made[0]}", orjson.dumps(
            polygon("big-0", 11_000, 10.0)), headers=JSON)
        assert status == 200, answer  # a replacement counts instead of the old one
        circle = {**DEPOT, "properties": {"name": "site", "radius": 50}}
        while len(made) < MAX_COUNT:
            status, _, body = worker.request("POST", "/api/geofences", orjson.dumps(circle), headers=JSON)
            assert status == 201, body
            made.append(body["id"])
        status, _, answer = worker.request("POST", "/api/geofences", orjson.dumps(circle), headers=JSON)
        assert status == 400 and "at most 12 geofences" in answer["message"], answer

        collection = stack.tmp / "many.geojson"
        collection.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [circle]}))
        result = subprocess.run([str(Path(sys.executable).with_name("tracker")), "geofences", "import",
                                 str(collection)], env={**stack.env, **CAPS}, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and result.stderr.startswith("tracker: ") and \
            "at most 12 geofences" in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    finally:
        for geofence_id in made:
            worker.request("DELETE", f"/api/geofences/{geofence_id}")


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
