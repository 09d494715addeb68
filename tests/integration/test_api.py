"""The query API on two workers: every endpoint, asked of both, with its error cases."""
import csv
import io
import json
import urllib.request

import gpxpy
import pytest
import yaml

from tests.integration import dataset
from tracker.testing import settle_latest, wait_for

DATA = dataset.build(markers=60, in_order=30, duplicates=2, late=2, malformed=5,
                     extra_duplicates=0, seed=5, prefix="api-")


@pytest.fixture(scope="module")
def workers(stack):
    one = stack.worker().start()
    two = stack.worker().start()
    one.wait_ready()
    two.wait_ready()
    wait_for(lambda: all(w.health() and w.health()["partitions"] for w in (one, two)), 90,
             "both workers to own partitions")
    stack.send(DATA.records)
    wait_for(lambda: stack.history_count() >= len(DATA.expected_rows), 90, "history rows")
    settle_latest(one, DATA.newest_positions)
    return one, two


def fetch(worker, path):
    """Status, content type and raw body, asked as the stack's admin."""
    request = urllib.request.Request(worker.url + path,
                                     headers={"Authorization": f"Bearer {worker.stack.admin_token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def test_markers_list_is_the_whole_cluster_and_the_same_from_both(workers):
    answers = []
    for worker in workers:
        status, body = worker.get("/api/markers")
        assert status == 200
        assert [p["marker_id"] for p in body] == DATA.marker_ids
        for position in body:
            assert position["lat"] == DATA.expected_latest[position["marker_id"]]["lat"]
        answers.append(body)
    assert answers[0] == answers[1]


def test_geojson_is_a_feature_collection_with_stale_flags(workers):
    for worker in workers:
        status, body = worker.get("/api/markers.geojson")
        assert status == 200 and body["type"] == "FeatureCollection"
        assert len(body["features"]) == len(DATA.marker_ids)
        feature = body["features"][0]
        assert feature["geometry"]["type"] == "Point"
        lon, lat = feature["geometry"]["coordinates"]
        assert (lat, lon) == (feature["properties"]["lat"], feature["properties"]["lon"])
        # The dataset's fixes are about three hours old, but they were received just now: a
        # marker is stale after TRACKER_STALE_AFTER without a report, whatever its fix's age.
        assert all(f["properties"]["age_seconds"] > 3600 for f in body["features"])
        assert not any(f["properties"]["stale"] for f in body["features"])


def test_bbox_and_since_filter_on_every_worker(workers):
    inside = {m for m, p in DATA.expected_latest.items() if p["lon"] <= 14.0 and p["lat"] <= 45.0}
    assert 0 < len(inside) < len(DATA.marker_ids)
    for worker in workers:
        status, body = worker.get("/api/markers?bbox=-180,-90,14,45")
        assert status == 200 and {p["marker_id"] for p in body} == inside
        status, body = worker.get("/api/markers?since=2999-01-01T00:00:00Z")
        assert status == 200 and body == []
        status, body = worker.get("/api/markers.geojson?since=0")
        assert status == 200 and len(body["features"]) == len(DATA.marker_ids)


@pytest.mark.parametrize("query, parameter", [
    ("bbox=1,2,3", "bbox"), ("bbox=10,0,5,1", "bbox"), ("since=someday", "since"), ("scope=all", "scope"),
])
def test_bad_list_parameters_are_400_naming_the_parameter(workers, query, parameter):
    for worker in workers:
        status, body = worker.get(f"/api/markers?{query}")
        assert status == 400 and body["parameter"] == parameter and body["message"]


def test_history_in_every_format_from_both_workers(workers):
    marker_id = DATA.marker_ids[3]
    expected = sorted(ms for m, ms in DATA.expected_rows if m == marker_id)
    window = "from=2000-01-01T00:00:00Z"
    for worker in workers:
        status, body = worker.get(f"/api/markers/{marker_id}/history?{window}")
        assert status == 200 and body["count"] == len(expected)
        times = [p["time"] for p in body["positions"]]
        assert times == sorted(times)

        status, body = worker.get(f"/api/markers/{marker_id}/history?{window}&order=desc&limit=5")
        assert status == 200 and body["count"] == 5
        assert [p["time"] for p in body["positions"]] == times[::-1][:5]

        status, body = worker.get(f"/api/markers/{marker_id}/history?{window}&format=geojson")
        assert status == 200
        assert body["features"][-1]["geometry"]["type"] == "LineString"
        assert len(body["features"]) == len(expected) + 1 and body["next"] is None

        status, ctype, raw = fetch(worker, f"/api/markers/{marker_id}/history?{window}&format=gpx")
        assert ctype.startswith("application/gpx+xml")
        assert len(gpxpy.parse(raw.decode()).tracks[0].segments[0].points) == len(expected)

        status, ctype, raw = fetch(worker, f"/api/markers/{marker_id}/history?{window}&format=csv")
        assert ctype.startswith("text/csv")
        assert len(list(csv.DictReader(io.StringIO(raw.decode())))) == len(expected)


def test_history_range_defaults_to_the_last_24_hours(workers):
    marker_id = DATA.marker_ids[0]
    status, body = workers[0].get(f"/api/markers/{marker_id}/history")
    assert status == 200 and body["count"] == len([1 for m, _ in DATA.expected_rows if m == marker_id])
    status, body = workers[0].get(f"/api/markers/{marker_id}/history?to=2001-01-01T00:00:00Z")
    assert status == 200 and body["count"] == 0


@pytest.mark.parametrize("path, status_code, code", [
    ("/api/markers/nobody", 404, "unknown_marker"),
    ("/api/markers/nobody/history", 404, "unknown_marker"),
    ("/api/markers/bad%20id/history", 400, "bad_marker_id"),
    ("/api/markers/api-000/history?format=kml", 400, "bad_parameter"),
    ("/api/markers/api-000/history?limit=many", 400, "bad_parameter"),
    ("/api/markers/api-000/history?from=2026-02-01&to=2026-01-01", 400, "bad_parameter"),
    ("/api/markers/api-000/history?order=up", 400, "bad_parameter"),
])
def test_history_errors_are_json(workers, path, status_code, code):
    for worker in workers:
        status, body = worker.get(path)
        assert status == status_code and body["error"] == code and body["message"], body


def test_pages_and_documents(workers):
    for worker in workers:
        status, ctype, raw = fetch(worker, "/")
        assert status == 200 and b'href="/map"' in raw and b"/openapi.yaml" in raw
        status, ctype, raw = fetch(worker, "/openapi.yaml")
        assert yaml.safe_load(raw)["openapi"].startswith("3.")
        status, ctype, raw = fetch(worker, "/map")
        assert status == 200 and b"/static/vendor/leaflet/dist/leaflet.js" in raw
        assert b"cdn.jsdelivr" not in raw and b"code.jquery" not in raw
        status, ctype, raw = fetch(worker, f"/map/{DATA.marker_ids[0]}?from=2000-01-01")
        assert status == 200 and b"L.polyline" in raw and b"TimeDimension" in raw
        status, ctype, raw = fetch(worker, "/static/vendor/leaflet/dist/leaflet.css")
        assert status == 200 and ctype.startswith("text/css")
        assert worker.get("/map/nobody")[0] == 404
        assert worker.get("/static/../../setup.cfg")[0] == 404


def test_every_documented_get_endpoint_answers(workers):
    doc = yaml.safe_load(fetch(workers[0], "/openapi.yaml")[2])
    circle = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [14.0, 45.0]},
              "properties": {"name": "sample", "radius": 100}}
    status, _, geofence = workers[0].request("POST", "/api/geofences", json.dumps(circle).encode(),
                                             headers={"Content-Type": "application/geo+json"})
    assert status == 201
    status, _, webhook = workers[0].request("POST", "/api/webhooks", json.dumps(
        {"url": "http://127.0.0.1:9/hook", "types": ["geofence_enter"]}).encode(),
        headers={"Content-Type": "application/json"})
    assert status == 201
    made = {}
    for path, body, key in (("/api/devices", {"device_id": "doc-phone"}, "device_id"),
                            ("/api/users", {"name": "doc-user", "role": "viewer"}, "id"),
                            ("/api/groups", {"name": "doc-group"}, "id"),
                            ("/api/imports", {"marker_id": DATA.marker_ids[0], "filename": "doc.gpx"}, "id")):
        status, _, answer = workers[0].request("POST", path, json.dumps(body).encode(),
                                               headers={"Content-Type": "application/json"})
        assert status == 201, (path, answer)
        made[path] = str(answer[key])
    samples = {"{marker_id}": DATA.marker_ids[0], "{path}": "vendor/leaflet/dist/leaflet.js",
               "{geofence_id}": str(geofence["id"]), "{webhook_id}": str(webhook["id"]),
               "{device_id}": made["/api/devices"], "{user_id}": made["/api/users"],
               "{group_id}": made["/api/groups"], "{import_id}": made["/api/imports"],
               "{page}": "devices", "{kind}": "trips"}
    for path in doc["paths"]:
        if path.startswith("/ingest"):
            continue  # needs a device and a position: tests/integration/test_phones.py
        if path.startswith("/s/") or "get" not in doc["paths"][path]:
            continue  # a share link's token: tests/integration/test_access.py
        if path in ("/api/live", "/api/trips/{trip_id}.gpx"):
            continue  # a stream without end, a trip's id: tests/integration/test_live.py, test_journeys.py
        concrete = path
        for placeholder, value in samples.items():
            concrete = concrete.replace(placeholder, value)
        asked = {p.get("$ref", "").rsplit("/", 1)[-1] for p in doc["paths"][path]["get"].get("parameters", [])}
        if "Markers" in asked:  # the markers to read are required: one of the dataset's
            concrete += f"?markers={DATA.marker_ids[0]}"
        status, _ = workers[1].get(concrete)
        assert status == 200, path


def metric(text, name, labels=""):
    """The sum of a Prometheus metric's samples whose labels contain ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_what_the_workers_did(workers):
    texts = [fetch(worker, "/metrics")[2].decode() for worker in workers]
    valid = len(DATA.records) - len(DATA.malformed)
    assert sum(metric(t, "tracker_positions_accepted_total") for t in texts) >= valid
    assert sum(metric(t, "tracker_positions_rejected_total") for t in texts) >= len(DATA.malformed)
    assert sum(metric(t, "tracker_positions_rejected_total", 'reason="not_json"') for t in texts) >= 1
    assert sum(metric(t, "tracker_dlq_records_total") for t in texts) >= len(DATA.malformed)
    assert sum(metric(t, "tracker_history_rows_written_total") for t in texts) == len(DATA.expected_rows)
    assert sum(metric(t, "tracker_history_write_seconds_count") for t in texts) >= 1
    assert all("faust_" in t for t in texts)  # Faust's own sensor


def test_health_reports_each_check(workers):
    for worker in workers:
        status, body = worker.get("/health")
        assert status == 200
        assert body["checks"] == {"tables": True, "kafka": True, "postgres": True}
