"""Geofences over HTTP on a real worker and Postgres: an admin manages them, anyone signed
in reads them, and a bad one is refused with what is wrong."""
import orjson
import pytest

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
