"""Phones on a real worker, broker and database: heartbeats keep a parked phone alive without
storing positions, an SOS reaches a webhook once, Traccar Client 10's JSON array keeps its
good positions when one is bad, and an Overland batch of 500 lands whole."""
import json
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from tracker.accounts.devices import Registry
from tracker.testing import run_sync, wait_for
from tracker.webhooks import store as webhook_store
from tracker.webhooks.model import parse_webhook

OFFLINE_AFTER = 5
PHONES = ("parked", "silent", "sos", "array", "overland")


@pytest.fixture(scope="module")
def phones(stack, receiver):
    """The phones' secrets, a webhook for alarms, then a worker that goes offline after 5 s of silence."""
    import psycopg

    async def register():
        registry = await Registry.connect(stack.settings.database_url)
        try:
            secrets = {name: await registry.add(name, name) for name in PHONES}
        finally:
            await registry.close()
        async with await psycopg.AsyncConnection.connect(stack.settings.database_url, autocommit=True) as conn:
            await webhook_store.add(conn, parse_webhook({"url": receiver.url + "/alarms", "types": ["alarm"]},
                                                                stack.settings.webhook_allow_private), None)
        return secrets

    secrets = run_sync(register())
    worker = stack.worker(TRACKER_OFFLINE_AFTER=str(OFFLINE_AFTER)).start()
    worker.wait_ready()
    wait_for(lambda: worker.health() and worker.health()["partitions"], 60, "the worker to own partitions")
    return worker, secrets


def form(worker, secret: str, **params) -> int:
    """A Traccar Client 10 report: a form body posted to the URL the user typed."""
    status, _, _ = worker.request("POST", f"/ingest/osmand/{secret}", urllib.parse.urlencode(params).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"}, token=None)
    return status


def stored(stack, marker_id: str) -> list[tuple]:
    return stack.query("SELECT extract(epoch FROM fix_time)::bigint, lat, battery FROM positions "
                       "WHERE marker_id = %s ORDER BY fix_time", marker_id)


def events_of(stack, marker_id: str) -> list[tuple]:
    return stack.query("SELECT type, event FROM events WHERE marker_id = %s ORDER BY event_time, type", marker_id)


def test_a_heartbeat_between_two_positions_keeps_the_parked_phone_online(stack, phones):
    worker, secrets = phones
    start = int(time.time())
    statuses = [form(worker, secrets["parked"], id="parked", lat=45.1, lon=14.1, timestamp=start, batt=90,
                     charge="false"),
                form(worker, secrets["silent"], id="silent", lat=46.1, lon=15.1, timestamp=start, batt=90)]
    first_sent = time.monotonic()
    time.sleep(3)
    # Traccar Client 10 standing still: only id, timestamp, batt and charge.
    statuses.append(form(worker, secrets["parked"], id="parked", timestamp=start + 3, batt=85, charge="true"))
    heard = wait_for(lambda: (m := worker.get("/api/markers/parked")[1]) and m["battery"] == 85 and m,
                     20, "the heartbeat's battery on the marker")
    assert heard["time"] == datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert heard["heard_at"] > heard["received_at"] and heard["lat"] == 45.1
    # 6.5 s since the first fix: past the offline delay, not past the heartbeat's
    time.sleep(max(0.0, first_sent + 6.5 - time.monotonic()))
    statuses += [form(worker, secrets["parked"], id="parked", lat=45.2, lon=14.2, timestamp=start + 6, batt=84),
                 form(worker, secrets["silent"], id="silent", lat=46.2, lon=15.2, timestamp=start + 6, batt=84)]
    assert statuses == [200] * 5

    wait_for(lambda: len(stored(stack, "silent")) == 2 and len(events_of(stack, "silent")) == 2, 30,
             "the silent phone's two positions, and its offline and online")
    # the parked phone is on another partition, and latest is written apart from history
    wait_for(lambda: len(stored(stack, "parked")) == 2 and worker.get("/api/markers/parked")[1].get("lat") == 45.2,
             30, "the parked phone's second position in history and in latest")
    assert [kind for kind, _ in events_of(stack, "silent")] == ["offline", "online"]
    assert [row[:2] for row in stored(stack, "parked")] == [(start, 45.1), (start + 6, 45.2)]  # no position of the heartbeat
    assert events_of(stack, "parked") == []  # never offline: its heartbeat spoke for it
    latest = worker.get("/api/markers/parked")[1]
    assert (latest["lat"], latest["battery"]) == (45.2, 84)


def test_an_sos_raises_one_alarm_event_and_reaches_the_webhook_once(stack, phones, receiver):
    worker, secrets = phones
    moment = int(time.time())
    sos = {"id": "sos", "lat": 45.5, "lon": 14.5, "timestamp": moment, "batt": 40, "alarm": "sos"}
    assert form(worker, secrets["sos"], **sos) == 200
    assert form(worker, secrets["sos"], **sos) == 200  # sent again: the phone did not get the first answer
    # and an SOS from a phone that has no fix at the moment, a heartbeat
    assert form(worker, secrets["sos"], id="sos", timestamp=moment + 1, alarm="sos") == 200

    wait_for(lambda: len(receiver.delivered("/alarms")) >= 2, 30, "the alarms at the webhook")
    time.sleep(2)  # a third delivery, if any, would arrive now
    bodies = sorted((json.loads(r["body"]) for r in receiver.delivered("/alarms")), key=lambda e: e["time"])
    assert [(e["marker_id"], e["type"], e["alarm"]) for e in bodies] == [("sos", "alarm", "sos")] * 2
    assert bodies[0]["position"] == {"lat": 45.5, "lon": 14.5}
    assert bodies[1]["position"] == {"lat": 45.5, "lon": 14.5}  # the heartbeat's: the newest fix's place
    # the events sink writes Postgres apart from the notifier's deliveries
    wait_for(lambda: len(events_of(stack, "sos")) >= 2, 30, "the alarms in Postgres")
    assert [kind for kind, _ in events_of(stack, "sos")] == ["alarm", "alarm"]
    status, listed = worker.get("/api/events?type=alarm&marker=sos")
    assert status == 200 and [e["alarm"] for e in listed["events"]] == ["sos", "sos"]


def test_a_bad_element_of_a_json_array_goes_to_the_dlq_and_the_rest_is_kept(stack, phones):
    worker, secrets = phones
    moment = int(time.time()) - 60
    queued = [{"id": "array", "lat": 45.0 + i / 100, "lon": 14.0, "timestamp": moment + i, "speed": 10.0,
               "batt": 70, "charge": False, "battery_health": "good", "battery_voltage": 4012,
               "battery_temp": 28.5} for i in range(3)]
    queued.insert(1, {"id": "array", "lat": 123.0, "lon": 14.0, "timestamp": moment})  # a bad one
    status, _, _ = worker.request("POST", f"/ingest/osmand?token={secrets['array']}", json.dumps(queued).encode(),
                                  headers={"Content-Type": "application/json"}, token=None)
    assert status == 200
    rows = wait_for(lambda: len(stored(stack, "array")) == 3 and stored(stack, "array"), 30, "the three good ones")
    assert [row[1] for row in rows] == [45.0, 45.01, 45.02]
    (attributes,) = stack.query("SELECT attributes FROM positions WHERE marker_id = 'array' LIMIT 1")[0]
    assert attributes == {"charge": False, "battery_health": "good", "battery_voltage": 4012, "battery_temp": 28.5}
    letters = stack.read_topic(stack.settings.dlq_topic, expect=1)
    (letter,) = [letter for letter in letters if letter["source"]["topic"] == "/ingest/osmand"]
    assert letter["code"] == "out_of_range" and letter["source"]["offset"] == 1
    assert json.loads(letter["payload"])["lat"] == 123.0


def test_an_overland_batch_of_500_lands(stack, phones):
    worker, secrets = phones
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    locations = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [14.0 + i / 10_000, 45.0]},
                  "properties": {"timestamp": (start + timedelta(seconds=10 * i)).isoformat().replace("+00:00", "Z"),
                                 "altitude": 120, "speed": 4.2, "horizontal_accuracy": 10, "vertical_accuracy": 4,
                                 "motion": ["walking"], "battery_state": "unplugged", "battery_level": 0.8,
                                 "device_id": "", "wifi": "Home Network"}} for i in range(500)]
    status, _, answer = worker.request("POST", "/ingest/overland", json.dumps({"locations": locations}).encode(),
                                       headers={"Content-Type": "application/json",
                                                "Authorization": f"Bearer {secrets['overland']}"}, token=None)
    assert (status, answer) == (200, {"result": "ok"})
    rows = wait_for(lambda: len(stored(stack, "overland")) == 500 and stored(stack, "overland"), 60, "500 positions")
    assert rows[0][0] == int(start.timestamp()) and rows[-1][0] == int(start.timestamp()) + 4990
    assert {row[2] for row in rows} == {80.0}
    status, latest = wait_for(lambda: (answer := worker.get("/api/markers/overland"))[1].get("lon")
                              == pytest.approx(14.0499) and answer, 30, "the newest of the batch in latest")
    assert status == 200 and latest["lon"] == pytest.approx(14.0499) and latest["source"] == "overland"
