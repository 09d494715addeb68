"""Locations are private: two real workers, real Kafka and Postgres, and callers with and
without credentials, with narrow and wide permissions."""
import base64
import csv
import io
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg
import pytest

from tracker.testing import settle_latest, wait_for

NOW = datetime.now(timezone.utc)
MARKERS = ["acc-bike", "acc-car-1", "acc-car-10", "acc-truck-1", "acc-truck-2", "acc-van"]
VISIBLE = ["acc-car-1", "acc-truck-1", "acc-truck-2"]  # to the viewer: acc-car-1 and acc-truck-*
FIXES_EACH = 5


def records():
    for n in range(FIXES_EACH):
        for i, marker in enumerate(MARKERS):
            value = {"marker_id": marker, "lat": 45.0 + i / 100, "lon": 14.0 + n / 1000,
                     "time": (NOW - timedelta(minutes=FIXES_EACH - n)).isoformat()}
            yield marker.encode(), orjson.dumps(value)


PUBLIC_URL = "https://tracker.example.org"


@pytest.fixture(scope="module")
def cluster(stack):
    workers = [stack.worker().start(), stack.worker(TRACKER_PUBLIC_URL=PUBLIC_URL).start()]
    for worker in workers:
        worker.wait_ready()
    wait_for(lambda: all(worker.health() and worker.health()["partitions"] for worker in workers), 60,
             "both workers to own partitions")
    stack.send(list(records()))
    wait_for(lambda: stack.history_count() >= len(MARKERS) * FIXES_EACH, 90, "history rows")
    newest = {marker: (45.0 + i / 100, 14.0 + (FIXES_EACH - 1) / 1000) for i, marker in enumerate(MARKERS)}
    settle_latest(workers[0], newest)
    viewer = stack.user("viewer", "viewer", ["acc-car-1", "acc-truck-*"], password="viewer-password")
    return workers, viewer


READ_PATHS = ["/api/markers", "/api/markers.geojson", "/api/markers/acc-car-1",
              "/api/markers/acc-car-1/history", "/api/markers/acc-car-1/history?format=csv", "/api/shares",
              "/metrics"]


def test_without_credentials_nothing_is_readable(cluster):
    workers, _ = cluster
    for worker in workers:
        for path in READ_PATHS:
            status, headers, body = worker.request("GET", path, token=None)
            assert status == 401, path
            assert body["error"] == "unauthorized" and body["message"], path
            assert "Bearer" in headers["WWW-Authenticate"]
        for path in ("/map", "/map/acc-car-1"):
            status, headers, _ = worker.request("GET", path, token=None)
            assert status == 303 and headers["Location"] == "/login?next=" + urllib.parse.quote(path, safe=""), path
        assert worker.get("/health", token=None)[0] == 200


def test_wrong_credentials_are_refused(cluster):
    workers, _ = cluster
    worker = workers[0]
    assert worker.get("/api/markers", token="not-a-token")[0] == 401
    basic = "Basic " + base64.b64encode(b"viewer:wrong-password").decode()
    assert worker.get("/api/markers", token=None, headers={"Authorization": basic})[0] == 401
    assert worker.get("/api/markers", token=None, headers={"Cookie": "tracker_session=forged"})[0] == 401


def test_fausts_own_views_show_no_position(cluster):
    workers, _ = cluster
    for worker in workers:
        for path in ("/router/", "/table/latest/", "/table/latest/acc-car-1/", "/stats/", "/graph/"):
            for token in (None, worker.stack.admin_token):
                status, body = worker.get(path, token=token)
                assert status == 404, path
                assert "acc-car-1" not in str(body) and "45." not in str(body), path


def test_a_viewer_sees_exactly_its_groups_markers_everywhere(cluster):
    workers, viewer = cluster
    for worker in workers:
        status, body = worker.get("/api/markers", token=viewer)
        assert status == 200 and [p["marker_id"] for p in body] == VISIBLE
        status, body = worker.get("/api/markers.geojson", token=viewer)
        assert status == 200 and sorted(f["id"] for f in body["features"]) == VISIBLE
        for marker in MARKERS:
            status, body = worker.get(f"/api/markers/{marker}", token=viewer)
            assert status == (200 if marker in VISIBLE else 404), marker
            status, history = worker.get(f"/api/markers/{marker}/history", token=viewer)
            assert status == (200 if marker in VISIBLE else 404), marker
            if marker in VISIBLE:
                assert history["count"] == FIXES_EACH
            status, page = worker.get(f"/map/{marker}", token=viewer)
            assert status == (200 if marker in VISIBLE else 404), marker


def test_a_hidden_marker_answers_exactly_as_an_unknown_one(cluster):
    workers, viewer = cluster
    for worker in workers:
        hidden = worker.get("/api/markers/acc-van", token=viewer)
        unknown = worker.get("/api/markers/acc-nobody", token=viewer)
        assert hidden[0] == unknown[0] == 404
        assert hidden[1]["error"] == unknown[1]["error"]
        assert hidden[1]["message"].replace("acc-van", "X") == unknown[1]["message"].replace("acc-nobody", "X")


def test_basic_auth_and_session_login(cluster):
    workers, _ = cluster
    worker = workers[1]
    basic = "Basic " + base64.b64encode(b"viewer:viewer-password").decode()
    status, body = worker.get("/api/markers", token=None, headers={"Authorization": basic})
    assert status == 200 and [p["marker_id"] for p in body] == VISIBLE

    status, _, page = worker.request("GET", "/login?next=/map", token=None)
    assert status == 200 and 'name="password"' in page
    form = urllib.parse.urlencode({"user": "viewer", "password": "wrong", "next": "/map"}).encode()
    status, _, page = worker.request("POST", "/login", form, token=None,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401 and "Wrong user name or password" in page
    form = urllib.parse.urlencode({"user": "viewer", "password": "viewer-password", "next": "//evil.example/"})
    status, headers, _ = worker.request("POST", "/login", form.encode(), token=None,
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["Location"] == "/map"  # never to another site
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("tracker_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here; behind TLS (X-Forwarded-Proto: https) it is Secure
    session = {"Cookie": cookie.split(";", 1)[0]}
    share = orjson.dumps({"marker_id": "acc-car-1"})
    json = {"Content-Type": "application/json"}
    status, _, body = worker.request("POST", "/api/shares", share, token=None,
                                     headers={**session, **json, "Origin": "http://evil.example"})
    assert status == 403 and body["error"] == "cross_origin"  # a page of another site cannot act
    status, _, _ = worker.request("POST", "/api/shares", share, token=None,
                                  headers={**session, **json, "Origin": worker.url})
    assert status == 201
    for other in workers:  # a session works on every worker
        status, body = other.get("/api/markers", token=None, headers=session)
        assert status == 200 and [p["marker_id"] for p in body] == VISIBLE
    assert worker.request("GET", "/map", token=None, headers=session)[0] == 200

    status, headers, _ = worker.request("POST", "/login", form.encode(), token=None,
                                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                                 "X-Forwarded-Proto": "https"})
    assert status == 303 and "Secure" in headers["Set-Cookie"]  # behind a TLS proxy

    status, headers, _ = worker.request("POST", "/logout", b"", token=None, headers=session)
    assert status == 303 and headers["Location"] == "/login"
    time.sleep(2.5)  # past the other worker's cache
    for other in workers:
        assert other.get("/api/markers", token=None, headers=session)[0] == 401


def test_a_revoked_token_stops_working_within_5_seconds(cluster, stack):
    workers, _ = cluster
    token = stack.user("short-lived", "viewer", ["acc-bike"])
    for worker in workers:
        assert worker.get("/api/markers/acc-bike", token=token)[0] == 200
    (token_id,) = stack.query("SELECT t.token_id FROM api_tokens t JOIN users u USING (user_id) "
                              "WHERE u.name = 'short-lived'")[0]
    stack.query("UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s RETURNING token_id", token_id)
    revoked = time.monotonic()
    wait_for(lambda: all(w.get("/api/markers/acc-bike", token=token)[0] == 401 for w in workers), 5,
             "the revoked token to be refused by every worker")
    assert time.monotonic() - revoked < 5


def test_a_share_link_shows_one_marker_without_an_account_until_it_expires(cluster, stack):
    workers, viewer = cluster
    body = orjson.dumps({"marker_id": "acc-van", "expires_in": 60})
    headers = {"Content-Type": "application/json"}
    assert workers[0].request("POST", "/api/shares", body, token=viewer, headers=headers)[0] == 404  # not its marker
    assert workers[0].request("POST", "/api/shares", body, token=None, headers=headers)[0] == 401

    body = orjson.dumps({"marker_id": "acc-truck-1", "expires_in": "1h"})
    status, _, share = workers[0].request("POST", "/api/shares", body, token=viewer, headers=headers)
    assert status == 201 and share["path"].startswith("/s/")
    assert share["url"] is None  # no TRACKER_PUBLIC_URL on this worker: never a link to the request's Host
    assert len(share["path"]) - len("/s/") >= 22  # 128 bits or more
    for worker in workers:
        status, _, page = worker.request("GET", share["path"], token=None)
        assert status == 200 and "acc-truck-1" in page and "L.polyline" in page
        status, collection = worker.get(share["path"] + "/markers.geojson", token=None)
        assert status == 200 and [f["id"] for f in collection["features"]] == ["acc-truck-1"]
    stored = stack.query("SELECT token_sha256 FROM shares WHERE share_id = %s", share["id"])[0][0]
    assert share["path"][3:].encode() not in bytes(stored)

    stack.query("UPDATE shares SET expires_at = now() WHERE share_id = %s RETURNING 1", share["id"])
    for worker in workers:
        assert worker.request("GET", share["path"], token=None)[0] == 404
        assert worker.get(share["path"] + "/markers.geojson", token=None)[0] == 404

    status, _, second = workers[1].request("POST", "/api/shares", body, token=viewer,
                                           headers={**headers, "Host": "evil.example"})
    assert status == 201 and second["url"] == PUBLIC_URL + second["path"]
    assert workers[1].request("DELETE", f"/api/shares/{second['id']}", token=viewer)[0] == 204
    assert workers[0].request("GET", second["path"], token=None)[0] == 404


def test_requests_between_workers_need_the_cluster_secret(cluster):
    workers, viewer = cluster
    for token in (None, viewer, workers[0].stack.admin_token):
        status, body = workers[0].get("/api/markers?scope=local", token=token)
        assert status in (401, 403) and "marker_id" not in str(body)
    status, body = workers[0].get("/api/markers?scope=local", token=None,
                                  headers={"X-Tracker-Cluster": "a guess"})
    assert status == 401
    secret = workers[0].stack.env["TRACKER_CLUSTER_SECRET"]
    status, body = workers[0].get("/api/markers?scope=local", token=None, headers={"X-Tracker-Cluster": secret})
    assert status == 200 and 0 < len(body) < len(MARKERS)  # this worker's partitions only


def test_metrics_need_an_admin(cluster, stack):
    workers, viewer = cluster
    assert workers[0].get("/metrics", token=viewer)[0] == 403
    status, text = workers[0].get("/metrics")
    assert status == 200 and "tracker_positions_accepted_total" in text


def test_html_pages_carry_security_headers(cluster):
    workers, _ = cluster
    status, headers, _ = workers[0].request("GET", "/map")
    assert status == 200
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_history_pages_through_a_long_track(cluster, stack):
    workers, _ = cluster
    rows = 2_500
    stack.ensure_partitions("positions", datetime(2026, 1, 1, tzinfo=timezone.utc))
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO positions (marker_id, fix_time, lat, lon) SELECT 'acc-long', "
                     "timestamptz '2026-01-01' + n * interval '1 second', 45, 14 FROM generate_series(1, %s) n",
                     (rows,))
    seen, path, pages = [], "/api/markers/acc-long/history?from=2025-12-31&to=2026-01-02&limit=1000", 0
    while path:
        status, headers, body = workers[pages % 2].request("GET", path)
        assert status == 200
        seen += [p["time"] for p in body["positions"]]
        assert (headers.get("Link") is None) == (body["next"] is None)
        path, pages = body["next"], pages + 1
    assert pages == 3 and len(seen) == rows and len(set(seen)) == rows and seen == sorted(seen)

    status, headers, text = workers[0].request("GET", "/api/markers/acc-long/history?from=2025-12-31&to=2026-01-02"
                                                      "&limit=1000&order=desc&format=csv")
    assert status == 200 and 'rel="next"' in headers["Link"]
    times = [row["time"] for row in csv.DictReader(io.StringIO(text))]
    assert len(times) == 1000 and times == sorted(times, reverse=True)
    assert workers[0].get("/api/markers/acc-long/history?limit=100001")[0] == 400


def test_accounts_are_managed_from_a_shell(cluster, stack):
    """The first admin of a fresh install, its token and a share link, all from the command line."""
    workers, _ = cluster
    tracker = str(Path(sys.executable).with_name("tracker"))

    def run(*args, stdin=None):
        done = subprocess.run([tracker, *args], env=stack.env, input=stdin, capture_output=True, text=True,
                              timeout=60)
        return done.returncode, done.stdout.strip(), done.stderr.strip()

    code, out, _ = run("users", "add", "boss", "--role", "admin")
    assert code == 0 and "shown only now" in out
    password = out.rsplit(" ", 1)[1]
    basic = "Basic " + base64.b64encode(f"boss:{password}".encode()).decode()
    assert workers[0].get("/api/markers/acc-van", token=None, headers={"Authorization": basic})[0] == 200

    code, _, err = run("users", "add", "boss", "--role", "viewer")
    assert code == 1 and err == "tracker: user 'boss' exists already"
    code, _, err = run("users", "add", "shorty", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert code == 2 and "at least 8 characters" in err

    code, out, _ = run("tokens", "add", "boss", "--expires", "1h")
    assert code == 0
    token_id, token = out.split()[1], out.rsplit(" ", 1)[1]
    assert workers[1].get("/api/markers/acc-van", token=token)[0] == 200
    assert run("tokens", "revoke", token_id)[0] == 0
    wait_for(lambda: workers[1].get("/api/markers/acc-van", token=token)[0] == 401, 5, "the token to stop working")

    code, out, _ = run("share", "acc-bike", "--hours", "1")
    assert code == 0
    path = out[out.index("/s/"):].split()[0]
    assert workers[0].request("GET", path, token=None)[0] == 200
    code, out, err = run("groups", "grant", "nobody-group", "x-*")
    assert code == 1 and err == "tracker: no group 'nobody-group'"

    assert run("users", "remove", "boss")[0] == 0
    code, _, err = run("users", "remove", "admin")  # the stack's admin is now the only one
    assert code == 1 and "last admin" in err


def test_a_malformed_user_name_is_refused_and_blocks_nobody(cluster, stack):
    workers, _ = cluster
    bad = "Basic " + base64.b64encode(b"\x00:x").decode()
    assert workers[0].get("/api/markers", token=None, headers={"Authorization": bad})[0] == 401
    fresh = stack.user("fresh", "viewer", ["acc-bike"])  # never seen: needs Postgres right now
    assert workers[0].get("/api/markers/acc-bike", token=fresh)[0] == 200


def test_a_share_link_ends_when_its_maker_may_no_longer_see_the_marker(cluster, stack):
    workers, _ = cluster
    maker = stack.user("sharer", "viewer", ["acc-car-10"])
    status, _, share = workers[0].request("POST", "/api/shares", orjson.dumps({"marker_id": "acc-car-10"}),
                                          token=maker, headers={"Content-Type": "application/json"})
    assert status == 201 and workers[1].request("GET", share["path"], token=None)[0] == 200
    stack.query("DELETE FROM group_markers WHERE group_id = (SELECT group_id FROM marker_groups "
                "WHERE name = 'sharer-markers') RETURNING 1")
    assert workers[1].request("GET", share["path"], token=None)[0] == 404


def _openapi() -> dict:
    import yaml

    return yaml.safe_load((Path(__file__).parents[2] / "web" / "openapi.yaml").read_text())


def _marker_routes(doc: dict) -> list[str]:
    """Every GET route of web/openapi.yaml that names a marker, in its path or its trip id."""
    routes = [path for path, item in doc["paths"].items()
              if "get" in item and ("{marker_id}" in path or "{trip_id}" in path)]
    assert len(routes) >= 8, routes
    return routes + ["/api/events?marker={marker_id}"]


def _path(route: str, marker: str) -> str:
    return route.replace("{marker_id}", marker).replace("{trip_id}", f"{marker}@1700000000000000")


def test_a_marker_that_is_not_yours_answers_one_404_on_every_route(cluster):
    workers, viewer = cluster
    for route in _marker_routes(_openapi()):
        for worker in workers:
            hidden = worker.request("GET", _path(route, "acc-van"), token=viewer)
            unknown = worker.request("GET", _path(route, "acc-nobody"), token=viewer)
            assert hidden[0] == unknown[0] == 404, (route, hidden[0], unknown[0])
            assert str(hidden[2]).replace("acc-van", "X") == str(unknown[2]).replace("acc-nobody", "X"), route


def test_out_of_range_and_over_long_values_are_a_400_never_a_500(cluster, stack):
    workers, _ = cluster
    doc = _openapi()
    for route in _marker_routes(doc):
        item = doc["paths"][route.split("?")[0]]["get"]
        names = {p["name"] for p in (doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p
                                     else p for p in item.get("parameters", [])) if p["in"] == "query"}
        for name in sorted(names - {"marker", "format"}):
            for value in ("9999-12-31", "0001-01-01", "9" * 400, "x" * 3000, "1e309", "-1", "2026-02-30"):
                path = _path(route, "acc-car-1")
                path += ("&" if "?" in path else "?") + urllib.parse.urlencode({name: value})
                status = workers[0].request("GET", path, timeout=30)[0]
                assert status < 500, (route, name, value[:20], status)
