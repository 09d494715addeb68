"""Phone apps as clients, on a real worker: Traccar Client (OsmAnd) and OwnTracks requests,
their credentials, and malformed input that must never cause a server error."""
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tracker.testing import run_sync, wait_for
from tracker.accounts.devices import Registry

NOW = int(time.time())


@pytest.fixture(scope="module")
def phones(stack):
    async def register():
        registry = await Registry.connect(stack.settings.database_url)
        try:
            return {name: await registry.add(name, name) for name in ("traccar-1", "owntracks-1", "other")}
        finally:
            await registry.close()

    secrets = run_sync(register())
    secure = stack.worker().start()
    open_door = stack.worker(TRACKER_INGEST_AUTH="off").start()
    secure.wait_ready()
    open_door.wait_ready()
    wait_for(lambda: all(w.health() and w.health()["partitions"] for w in (secure, open_door)), 60,
             "both workers to own partitions")
    return secure, open_door, secrets


def request(worker, path, method="GET", body=None, headers=None):
    req = urllib.request.Request(worker.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def history(stack, marker_id):
    return stack.query(
        "SELECT extract(epoch FROM fix_time)::bigint, lat, lon, speed, heading, altitude, accuracy, "
        "battery, source, attributes FROM positions WHERE marker_id = %s ORDER BY fix_time", marker_id)


def topic_size(stack):
    return len(stack.read_topic(stack.settings.topic, expect=10**9, timeout=2))


def test_traccar_client_requests_are_stored_in_si_units(stack, phones):
    worker, _, secrets = phones
    token = secrets["traccar-1"]
    query = urllib.parse.urlencode({"id": "traccar-1", "lat": 45.1, "lon": 14.1, "timestamp": NOW - 40,
                                    "speed": 10, "bearing": 90, "altitude": 100, "accuracy": 5,
                                    "batt": 80, "charge": "true", "password": "hunter2", "note": "x"})
    assert request(worker, f"/ingest/osmand/{token}?{query}")[0] == 200  # GET, secret in the path
    query = urllib.parse.urlencode({"id": "traccar-1", "lat": 45.2, "lon": 14.2,
                                    "timestamp": (NOW - 30) * 1000, "token": token})
    assert request(worker, f"/ingest/osmand?{query}", method="POST")[0] == 200  # POST, secret in the query
    form = urllib.parse.urlencode({"deviceid": "traccar-1", "location": "45.3,14.3",
                                   "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(NOW - 20))})
    assert request(worker, f"/ingest/osmand/{token}", method="POST", body=form.encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 200
    body = {"device_id": "traccar-1", "location": {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 10)),
        "coords": {"latitude": 45.4, "longitude": 14.4, "accuracy": 3, "speed": 2.5, "heading": -1,
                   "altitude": 90},
        "is_moving": True, "odometer": 1500, "battery": {"level": 0.5, "is_charging": True},
        "activity": {"type": "in_vehicle"}, "extras": {}}}
    assert request(worker, f"/ingest/osmand/{token}", method="POST", body=json.dumps(body).encode(),
                   headers={"Content-Type": "application/json"})[0] == 200

    rows = wait_for(lambda: len(history(stack, "traccar-1")) == 4 and history(stack, "traccar-1"),
                    30, "four Traccar positions in the history")
    first, second, third, fourth = rows
    assert first[:9] == (NOW - 40, 45.1, 14.1, pytest.approx(5.1444, rel=1e-3), 90, 100, 5, 80, "osmand")
    assert first[9] == {"charge": True}  # the password and the note are not stored
    assert (second[0], second[1]) == (NOW - 30, 45.2)
    assert (third[0], third[1], third[2]) == (NOW - 20, 45.3, 14.3)
    assert fourth[:9] == (NOW - 10, 45.4, 14.4, 2.5, None, 90, 3, 50, "osmand")
    assert fourth[9] == {"is_moving": True, "odometer": 1500, "charge": True, "activity": "in_vehicle"}
    # the history sink and the ``latest`` table are written apart: either may be first
    status, latest = wait_for(lambda: (answer := worker.get("/api/markers/traccar-1"))[1].get("lat") == 45.4
                              and answer, 30, "the newest fix in latest")
    assert status == 200 and (latest["lat"], latest["lon"]) == (45.4, 14.4), latest


def test_owntracks_location_is_stored_and_answered_with_an_array(stack, phones):
    worker, _, secrets = phones
    body = {"_type": "location", "lat": 48.85, "lon": 2.35, "tst": NOW - 5, "acc": 12, "alt": 35,
            "vel": 36, "cog": 180, "batt": 66, "tid": "o1"}
    headers = {**basic("owntracks-1", secrets["owntracks-1"]), "Content-Type": "application/json",
               "X-Limit-U": "owntracks-1", "X-Limit-D": "pixel"}
    status, reply = request(worker, "/ingest/owntracks", "POST", json.dumps(body).encode(), headers)
    assert (status, json.loads(reply)) == (200, [])
    status, reply = request(worker, "/ingest/owntracks", "POST",
                            json.dumps({"_type": "transition", "event": "enter"}).encode(), headers)
    assert (status, json.loads(reply)) == (200, [])
    (row,) = wait_for(lambda: history(stack, "owntracks-1"), 30, "the OwnTracks position")
    assert row[:9] == (NOW - 5, 48.85, 2.35, pytest.approx(10.0), 180, 35, 12, 66, "owntracks")
    assert row[9] == {"tid": "o1", "device": "pixel"}
    status, latest = wait_for(lambda: (answer := worker.get("/api/markers/owntracks-1"))[0] == 200 and answer,
                              30, "the fix in latest")
    assert status == 200 and latest["source"] == "owntracks", latest


def test_bad_credentials_are_refused_and_nothing_reaches_kafka(stack, phones):
    worker, _, secrets = phones
    before = topic_size(stack)
    fix = "id=traccar-1&lat=1&lon=2"
    location = json.dumps({"_type": "location", "lat": 1, "lon": 2, "tst": NOW}).encode()
    cases = [
        (f"/ingest/osmand?{fix}", "GET", None, {}, 401),
        (f"/ingest/osmand/not-a-secret?{fix}", "GET", None, {}, 401),
        (f"/ingest/osmand/{secrets['other']}?{fix}", "GET", None, {}, 401),
        (f"/ingest/osmand?token={secrets['other']}&{fix}", "POST", None, {}, 401),
        ("/ingest/owntracks", "POST", location, {}, 401),
        ("/ingest/owntracks", "POST", location, basic("owntracks-1", "wrong"), 401),
        ("/ingest/owntracks", "POST", location, basic("owntracks-1", secrets["other"]), 401),
        ("/ingest/owntracks", "POST", location,
         {**basic("owntracks-1", secrets["owntracks-1"]), "X-Limit-U": "other"}, 403),
    ]
    for path, method, body, headers, expected in cases:
        status, reply = request(worker, path, method, body, headers)
        assert status == expected, (path, headers, reply)
        assert json.loads(reply)["error"]
    assert topic_size(stack) == before


def test_a_wrong_secret_does_not_tell_whether_it_belongs_to_another_device(phones):
    worker, _, secrets = phones
    fix = "id=traccar-1&lat=1&lon=2"
    location = json.dumps({"_type": "location", "lat": 1, "lon": 2, "tst": NOW}).encode()
    unknown = request(worker, f"/ingest/osmand/not-a-secret?{fix}")
    foreign = request(worker, f"/ingest/osmand/{secrets['other']}?{fix}")
    assert unknown == foreign and unknown[0] == 401
    assert json.loads(unknown[1])["error"] == "bad_credential"
    unknown = request(worker, "/ingest/owntracks", "POST", location, basic("owntracks-1", "wrong"))
    foreign = request(worker, "/ingest/owntracks", "POST", location, basic("owntracks-1", secrets["other"]))
    assert unknown == foreign and unknown[0] == 401


def test_a_body_that_trickles_in_is_answered_408_after_ten_seconds(phones):
    import socket

    worker, _, secrets = phones
    with socket.create_connection(("127.0.0.1", worker.web_port), timeout=30) as conn:
        conn.sendall(f"POST /ingest/osmand/{secrets['traccar-1']} HTTP/1.1\r\nHost: tracker\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
        started = time.monotonic()
        conn.settimeout(0.5)
        reply = b""
        while b"\r\n\r\n" not in reply and time.monotonic() - started < 25:
            try:
                conn.sendall(b" ")  # a byte every half second: never idle, never done
            except OSError:
                break
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            reply += chunk
        waited = time.monotonic() - started
        conn.settimeout(5)
        head, _, body = reply.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += conn.recv(65536)
    assert head.startswith(b"HTTP/1.1 408"), reply
    assert 9.5 <= waited <= 13, waited
    assert json.loads(body)["error"] == "body_timeout"


def test_bodies_are_capped(phones):
    worker, _, secrets = phones
    status, reply = request(worker, f"/ingest/osmand/{secrets['traccar-1']}", "POST", b"x" * 70_000,
                            {"Content-Type": "application/json"})
    assert status == 413 and json.loads(reply)["error"] == "too_large"


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
params = st.dictionaries(st.sampled_from(["id", "deviceid", "lat", "lon", "location", "timestamp", "speed",
                                          "bearing", "batt", "charge", "x"]) | text, text | st.floats().map(str),
                         max_size=8)
json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(query=params)
def test_fuzzed_osmand_queries_never_cause_a_server_error(phones, query):
    worker = phones[1]
    status, reply = request(worker, "/ingest/osmand?" + urllib.parse.urlencode(query))
    assert status in (200, 400), reply


@FUZZ
@given(body=json_values | st.binary(max_size=200), content_type=st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain"]))
def test_fuzzed_osmand_bodies_never_cause_a_server_error(phones, body, content_type):
    worker = phones[1]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, reply = request(worker, "/ingest/osmand", "POST", raw, {"Content-Type": content_type})
    assert status in (200, 400), reply


@FUZZ
@given(body=json_values | st.fixed_dictionaries({"_type": st.just("location")}, optional={
    "lat": json_values, "lon": json_values, "tst": json_values, "vel": json_values, "batt": json_values}))
def test_fuzzed_owntracks_bodies_never_cause_a_server_error(phones, body):
    worker = phones[1]
    status, reply = request(worker, "/ingest/owntracks", "POST", json.dumps(body).encode(),
                            {"X-Limit-U": "fuzz", "Content-Type": "application/json"})
    assert status in (200, 400), reply


def test_devices_cli_adds_rotates_lists_and_removes(stack, phones):
    import subprocess
    import sys
    from pathlib import Path

    tracker = str(Path(sys.executable).with_name("tracker"))

    def cli(*args):
        return subprocess.run([tracker, "devices", *args], env=stack.env, capture_output=True, text=True, timeout=60)

    added = cli("add", "cli-phone", "--name", "Test phone")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.rsplit(" ", 1)[1].strip()
    worker = phones[0]
    assert request(worker, f"/ingest/osmand/{secret}?id=cli-phone&lat=1&lon=2")[0] == 200
    again = cli("add", "cli-phone")
    assert again.returncode == 1 and again.stderr.startswith("tracker: ") and again.stderr.count("\n") == 1
    rotated = cli("rotate", "cli-phone")
    assert rotated.returncode == 0 and rotated.stdout.rsplit(" ", 1)[1].strip() != secret
    assert "cli-phone" in cli("list").stdout and "Test phone" in cli("list").stdout
    assert cli("remove", "cli-phone").returncode == 0
    assert "cli-phone" not in cli("list").stdout
    assert cli("remove", "cli-phone").returncode == 1
    assert cli("add", "bad id").returncode == 2


def test_a_body_that_arrives_in_pieces_is_read_whole(stack, phones):
    import http.client

    worker, _, secrets = phones
    locations = [{"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 3000 + i)),
                  "coords": {"latitude": 44.0 + i / 1000, "longitude": 13.0}} for i in range(150)]
    body = json.dumps({"device_id": "traccar-1", "location": locations}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", worker.web_port, timeout=30)
    conn.putrequest("POST", f"/ingest/osmand/{secrets['traccar-1']}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for start in range(0, len(body), 4096):
        piece = body[start:start + 4096]
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        time.sleep(0.05)
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    assert response.status == 200, response.read()
    wait_for(lambda: stack.query("SELECT count(*) FROM positions WHERE marker_id = 'traccar-1' "
                                 "AND lon = 13.0")[0][0] == 150, 30, "all 150 positions of the batch")


def test_the_phones_of_a_friends_group_see_each_other_in_the_answer(stack, phones):
    import subprocess
    import sys
    from pathlib import Path

    tracker = str(Path(sys.executable).with_name("tracker"))

    def cli(*args):
        result = subprocess.run([tracker, *args], env=stack.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    secrets = {}
    for name in ("fam-anna", "fam-bob", "fam-carl", "outsider"):
        secrets[name] = cli("devices", "add", name).rsplit(" ", 1)[1].strip()
    cli("groups", "add", "family")
    cli("groups", "grant", "family", "fam-anna", "fam-bob", "fam-carl")
    worker = phones[0]

    def post(device, lat, tst, name):
        body = {"_type": "location", "lat": lat, "lon": 2.0, "tst": tst, "vel": 18, "batt": 80}
        headers = {**basic(device, secrets[device]), "Content-Type": "application/json", "X-Limit-D": name}
        status, reply = request(worker, "/ingest/owntracks", "POST", json.dumps(body).encode(), headers)
        assert status == 200, reply
        return json.loads(reply)

    post("fam-bob", 45.1, NOW - 30, "Bob")
    post("fam-carl", 45.2, NOW - 20, "Carl")
    post("outsider", 45.3, NOW - 10, "Eve")
    wait_for(lambda: all(worker.get(f"/api/markers/{m}")[0] == 200 for m in ("fam-bob", "fam-carl", "outsider")),
             30, "the three fixes in latest")
    assert post("fam-anna", 45.0, NOW - 5, "Anna") == [], "a group without friends on shares nothing with its phones"

    assert "family" in cli("groups", "friends", "family")
    assert "yes" in next(line for line in cli("groups", "list").splitlines() if line.startswith("family"))

    def friends_of_anna():
        reply = post("fam-anna", 45.0, NOW - 4, "Anna")
        return reply if {m["topic"] for m in reply} == {"owntracks/fam-carl/fam-carl", "owntracks/fam-bob/fam-bob"} \
            else None

    reply = wait_for(friends_of_anna, 30, "Anna's friends in the answer (the group cache lasts 10 s)", interval=1)
    assert reply[0] == {"_type": "location", "topic": "owntracks/fam-carl/fam-carl", "tid": "CA", "lat": 45.2,
                        "lon": 2.0, "tst": NOW - 20, "vel": 18, "batt": 80}, "the newest fix first, as OwnTracks has it"
    assert {"_type": "card", "topic": "owntracks/fam-bob/fam-bob", "tid": "BO", "name": "Bob"} in reply
    assert all(m["topic"] != "owntracks/outsider/outsider" for m in reply), "no one outside the group"
    assert post("outsider", 45.3, NOW - 3, "Eve") == []
    cli("groups", "friends", "family", "--off")
    wait_for(lambda: post("fam-anna", 45.0, NOW - 2, "Anna") == [], 30, "no friends once the group stops it",
             interval=1)
