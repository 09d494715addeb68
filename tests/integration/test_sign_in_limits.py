"""Password guessing and sessions on a real worker, straight to it: guesses from one address
are delayed without being checked, guesses on an account from many addresses delay that
account for new addresses but not for one that signed in before; changes carry an Origin of
this site and a JSON body whatever the credential; sessions can be listed and ended; the
cluster secret can be rotated."""
import base64
import http.client
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import orjson
import pytest

from tracker.testing import wait_for

TRACKER = str(Path(sys.executable).with_name("tracker"))
PASSWORD = "viewer-password-1"
OLD_SECRET = "old-cluster-secret"


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker(TRACKER_CLUSTER_SECRET_PREVIOUS=OLD_SECRET).start()
    worker.wait_ready()
    for name in ("ana", "bob", "carl"):
        stack.user(name, "viewer", ["lim-*"], password=PASSWORD)
    return worker


def ask(worker, method: str, path: str, source: str, headers: dict | None = None,
        body: bytes | None = None) -> tuple[int, dict, bytes]:
    """One request from the loopback address ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", worker.web_port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_guesses_from_one_address_are_delayed_and_not_checked(worker):
    assert ask(worker, "GET", "/api/markers", "127.0.1.2", basic("ana", PASSWORD))[0] == 200  # ana's own
    statuses = [ask(worker, "GET", "/api/markers", "127.0.1.1", basic("ana", f"guess-{n}"))[0] for n in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3, statuses
    status, headers, body = ask(worker, "GET", "/api/markers", "127.0.1.1", basic("bob", "another-guess"))
    assert status == 429 and int(headers["Retry-After"]) >= 1 and orjson.loads(body)["error"] == "too_many_attempts"
    time.sleep(2.5)  # past the answer's cache
    assert ask(worker, "GET", "/api/markers", "127.0.1.2", basic("ana", PASSWORD))[0] == 200  # ana is not locked out


def test_guesses_on_an_account_hold_up_new_addresses_but_not_one_that_signed_in_before(worker):
    assert ask(worker, "GET", "/api/markers", "127.0.2.1", basic("bob", PASSWORD))[0] == 200  # bob's own
    for n, pause in enumerate([0, 0, 0, 0, 0, 1.1, 2.1]):  # each guess from another address, as the delay allows
        time.sleep(pause)
        assert ask(worker, "GET", "/api/markers", f"127.0.3.{n + 1}", basic("bob", f"guess-{n}"))[0] == 401
    assert ask(worker, "GET", "/api/markers", "127.0.3.99", basic("bob", PASSWORD))[0] == 429  # 4 s to wait now
    assert ask(worker, "GET", "/api/markers", "127.0.2.1", basic("bob", PASSWORD))[0] == 200


def test_the_login_form_counts_the_same_way(worker):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    statuses = [ask(worker, "POST", "/login", "127.0.4.1", form,
                    urllib.parse.urlencode({"user": "carl", "password": f"guess-{n}"}).encode())[0] for n in range(6)]
    assert statuses == [401] * 5 + [429], statuses
    status, headers, page = ask(worker, "POST", "/login", "127.0.4.1", form,
                                urllib.parse.urlencode({"user": "carl", "password": PASSWORD}).encode())
    assert status == 429 and "Retry-After" in headers and b"too many failed sign-ins" in page


def test_a_change_from_another_sites_page_is_refused_whatever_the_credential(worker, stack):
    circle = orjson.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [14.0, 45.0]},
                           "properties": {"name": "origin-test", "radius": 100}})
    json = {"Content-Type": "application/json"}
    admin = basic("admin", stack.admin_password)
    status, _, body = ask(worker, "POST", "/api/geofences", "127.0.5.1",
                          {**admin, **json, "Origin": "http://evil.example"}, circle)
    assert status == 403 and orjson.loads(body)["error"] == "cross_origin"
    bearer = {"Authorization": f"Bearer {stack.admin_token}"}
    assert ask(worker, "POST", "/api/geofences", "127.0.5.1", {**bearer, **json, "Origin": "http://evil.example"},
               circle)[0] == 403
    status, _, body = ask(worker, "POST", "/api/geofences", "127.0.5.1",
                          {**admin, "Content-Type": "text/plain"}, circle)
    assert status == 415 and orjson.loads(body)["error"] == "not_json"
    assert ask(worker, "POST", "/api/geofences", "127.0.5.1",
               {**admin, "Content-Type": "application/x-www-form-urlencoded"}, circle)[0] == 415
    assert ask(worker, "POST", "/api/geofences", "127.0.5.1", {**admin, **json}, circle)[0] == 201


def tracker(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKER, *args], env=stack.env, capture_output=True, text=True, timeout=60)


def test_sessions_are_listed_and_ended_from_the_command_line(worker, stack):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, _ = ask(worker, "POST", "/login", "127.0.6.1", form,
                             urllib.parse.urlencode({"user": "ana", "password": PASSWORD}).encode())
    assert status == 303
    cookie = {"Cookie": headers["Set-Cookie"].split(";", 1)[0]}
    assert ask(worker, "GET", "/api/markers", "127.0.6.1", cookie)[0] == 200
    listed = tracker(stack, "sessions", "list", "--user", "ana")
    assert listed.returncode == 0 and " ana " in listed.stdout, listed.stdout + listed.stderr
    session_id = listed.stdout.splitlines()[1].split()[0]
    ended = tracker(stack, "sessions", "end", session_id)
    assert ended.returncode == 0 and "1 session ended" in ended.stdout
    wait_for(lambda: ask(worker, "GET", "/api/markers", "127.0.6.1", cookie)[0] == 401, 10, "the session to end")
    missing = tracker(stack, "sessions", "end", session_id)
    assert missing.returncode == 1 and missing.stderr.startswith("tracker: ") and "no session" in missing.stderr


def test_the_cluster_secret_rotates_with_the_previous_one_accepted(worker, stack):
    def local(secret: str) -> int:
        return ask(worker, "GET", "/api/markers?scope=local", "127.0.7.1", {"X-Tracker-Cluster": secret})[0]

    assert local(stack.env["TRACKER_CLUSTER_SECRET"]) == 200
    assert local(OLD_SECRET) == 200
    assert local("not-the-secret") == 401
