"""The management API on a real worker: devices, users, groups, tokens, gateways and share
links, with the command line's permission rules, each change in the audit trail."""
import time
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie

import orjson
import pytest

from tracker.testing import wait_for

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker


def call(worker, method, path, body=None, **kwargs):
    data = None if body is None else orjson.dumps(body)
    return worker.request(method, path, data, headers=JSON if data else None, **kwargs)


def test_an_admin_adds_a_device_whose_secret_reports_and_rotates(stack, worker):
    status, _, device = call(worker, "POST", "/api/devices", {"device_id": "api-phone", "name": "Ann's phone"})
    assert status == 201, device
    secret = device["secret"]
    assert device["settings"]["traccar_client"]["qr_text"].startswith(f"{worker.url}/ingest/osmand/{secret}?id=api-phone")
    assert device["settings"]["owntracks"]["password"] == secret
    assert call(worker, "POST", "/api/devices", {"device_id": "api-phone"})[0] == 409
    assert call(worker, "POST", "/api/devices", {"device_id": "bad id!"})[0] == 400

    fix = urllib.parse.urlencode({"id": "api-phone", "lat": 45.5, "lon": 14.5, "timestamp": int(time.time())})
    assert worker.request("GET", f"/ingest/osmand/{secret}?{fix}", token=None)[0] == 200
    listed = wait_for(lambda: [d for d in worker.get("/api/devices")[1] if d["last_fix_at"]], 60,
                      "the device's fix to be heard")
    assert listed[0]["device_id"] == "api-phone" and listed[0]["name"] == "Ann's phone"

    status, _, rotated = call(worker, "POST", "/api/devices/api-phone/rotate", {})
    assert status == 200 and rotated["secret"] != secret
    wait_for(lambda: worker.request("GET", f"/ingest/osmand/{secret}?{fix}", token=None)[0] == 401, 15,
             "the old secret to stop working (the ingestion caches secrets for 5 s)")
    assert worker.request("GET", f"/ingest/osmand/{rotated['secret']}?{fix}", token=None)[0] == 200
    assert worker.request("POST", "/api/devices/api-phone/rotate", b"", token=stack.admin_token)[0] == 415

    assert worker.request("DELETE", "/api/devices/api-phone")[0] == 204
    assert worker.request("DELETE", "/api/devices/api-phone")[0] == 404
    assert worker.get("/api/devices/api-phone")[0] == 404


def test_users_groups_and_the_access_they_give(stack, worker):
    status, _, user = call(worker, "POST", "/api/users", {"name": "api-viewer", "role": "viewer"})
    assert status == 201 and len(user["password"]) >= 8
    assert call(worker, "POST", "/api/users", {"name": "api-viewer", "role": "viewer"})[0] == 409
    assert call(worker, "POST", "/api/users", {"name": "x", "role": "owner"})[0] == 400
    assert call(worker, "POST", "/api/users", {"name": "y", "role": "viewer", "password": "short"})[0] == 400

    status, _, group = call(worker, "POST", "/api/groups", {"name": "api-trucks", "markers": ["truck-*"],
                                                           "members": ["api-viewer"]})
    assert status == 201 and group["markers"] == ["truck-*"] and group["members"] == ["api-viewer"]
    status, _, group = call(worker, "PATCH", f"/api/groups/{group['id']}",
                            {"markers": ["truck-*", "van-1"], "friends": True})
    assert status == 200 and group["markers"] == ["truck-*", "van-1"] and group["friends"] is True
    assert group["members"] == ["api-viewer"]
    assert call(worker, "PATCH", f"/api/groups/{group['id']}", {"members": ["nobody"]})[0] == 404
    assert worker.get(f"/api/groups/{group['id']}")[1]["members"] == ["api-viewer"]  # nothing half done

    basic = "Basic " + __import__("base64").b64encode(f"api-viewer:{user['password']}".encode()).decode()
    status, _, shares = worker.request("POST", "/api/shares", orjson.dumps({"marker_id": "van-1"}), token=None,
                                       headers={**JSON, "Authorization": basic})
    assert status == 201
    status, _, _ = call(worker, "POST", f"/api/users/{user['id']}/password", {"password": "a-new-password"})
    assert status == 200
    assert [u["groups"] for u in worker.get("/api/users")[1] if u["name"] == "api-viewer"] == [["api-trucks"]]

    admins = [u for u in worker.get("/api/users")[1] if u["role"] == "admin"]
    status, _, error = worker.request("DELETE", f"/api/users/{admins[0]['id']}")
    assert status == 400 and "last admin" in error["message"]
    assert worker.request("DELETE", f"/api/groups/{group['id']}")[0] == 204
    assert worker.request("DELETE", f"/api/users/{user['id']}")[0] == 204
    assert worker.request("DELETE", f"/api/users/{user['id']}")[0] == 404


def test_a_viewer_manages_only_its_own_tokens_and_nothing_an_admin_does(stack, worker):
    viewer_token = stack.user("tok-viewer", "viewer", ["tok-*"])
    for path in ("/api/devices", "/api/users", "/api/groups", "/api/gateways", "/api/audit"):
        assert worker.get(path, token=viewer_token)[0] == 403, path
    assert call(worker, "POST", "/api/devices", {"device_id": "tok-1"}, token=viewer_token)[0] == 403

    status, _, made = call(worker, "POST", "/api/tokens", {"expires_in": "1d"}, token=viewer_token)
    assert status == 201 and made["user"] == "tok-viewer" and made["expires_at"]
    assert worker.get("/api/markers", token=made["token"])[0] == 200
    assert call(worker, "POST", "/api/tokens", {"user": "admin"}, token=viewer_token)[0] == 403
    assert {t["user"] for t in worker.get("/api/tokens", token=viewer_token)[1]} == {"tok-viewer"}
    assert len({t["user"] for t in worker.get("/api/tokens")[1]}) >= 2  # an admin sees everyone's

    admins = [t for t in worker.get("/api/tokens")[1] if t["user"] == "admin"]
    assert worker.request("DELETE", f"/api/tokens/{admins[0]['id']}", token=viewer_token)[0] == 404
    assert worker.request("DELETE", f"/api/tokens/{made['id']}", token=viewer_token)[0] == 204
    wait_for(lambda: worker.get("/api/markers", token=made["token"])[0] == 401, 10, "the revoked token to stop")
    assert call(worker, "POST", "/api/tokens", {"expires_in": "forever"}, token=viewer_token)[0] == 400


def test_gateways(stack, worker):
    status, _, gateway = call(worker, "POST", "/api/gateways", {"name": "api-gw", "prefix": "gw-"})
    assert status == 201 and gateway["token"] and gateway["prefix"] == "gw-"
    assert call(worker, "POST", "/api/gateways", {"name": "api-gw"})[0] == 409
    assert call(worker, "POST", "/api/gateways", {"name": "no spaces"})[0] == 400
    assert [g["name"] for g in worker.get("/api/gateways")[1]] == ["api-gw"]
    assert worker.request("DELETE", "/api/gateways/api-gw")[0] == 204
    assert worker.request("DELETE", "/api/gateways/api-gw")[0] == 404


def test_a_session_s_change_from_another_site_or_not_in_json_is_refused(stack, worker):
    form = urllib.parse.urlencode({"user": "admin", "password": stack.admin_password, "next": "/map"}).encode()
    status, headers, _ = worker.request("POST", "/login", form, token=None,
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303
    cookie = SimpleCookie(headers["Set-Cookie"])
    session = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in cookie.items())}
    body = orjson.dumps({"device_id": "csrf-phone"})
    status, _, error = worker.request("POST", "/api/devices", body, token=None,
                                      headers={**session, **JSON, "Origin": "http://elsewhere.example"})
    assert status == 403 and error["error"] == "cross_origin"
    status, _, error = worker.request("POST", "/api/devices", b"device_id=csrf-phone", token=None,
                                      headers={**session, "Origin": worker.url,
                                               "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and error["error"] == "not_json"
    status, _, _ = worker.request("POST", "/api/devices", body, token=None, headers={**session, **JSON, "Origin": worker.url})
    assert status == 201


def test_every_change_is_in_the_audit_trail_and_no_secret(stack, worker):
    status, trail = worker.get("/api/audit?limit=1000")
    assert status == 200
    actions = [entry["action"] for entry in trail]
    for action in ("device.add", "device.rotate", "device.remove", "user.add", "user.password", "user.remove",
                   "group.add", "group.change", "group.remove", "token.add", "token.revoke", "gateway.add",
                   "gateway.remove", "share.add"):
        assert action in actions, action
    ids = [entry["id"] for entry in trail]
    assert ids == sorted(ids, reverse=True)
    by_viewer = [e for e in trail if e["action"] == "token.add" and e["actor"] == "tok-viewer"]
    assert by_viewer and by_viewer[0]["via"] == "token"
    session_add = [e for e in trail if e["action"] == "device.add" and e["target"] == "device:csrf-phone"]
    assert session_add and session_add[0]["via"] == "session" and session_add[0]["actor"] == "admin"
    assert [e["action"] for e in worker.get("/api/audit?action=gateway")[1]] == ["gateway.remove", "gateway.add"]
    text = orjson.dumps(trail).decode()
    assert "password\":\"" not in text and "secret" not in text
    oldest = worker.get(f"/api/audit?before={ids[-2]}&limit=5")[1]
    assert [e["id"] for e in oldest] == ids[-1:]
