"""Events on a real worker, Kafka and Postgres: a van drives into the depot, speeds, runs low
on battery and goes silent; the events reach gps.events, the events table and the API,
each once, and only for those who may see the van."""
import csv
import io
import time

import orjson
import pytest

from tracker.testing import wait_for

DEPOT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
         "properties": {"name": "depot", "radius": 300, "speed_limit": 5}}
CITY = {"type": "Feature", "properties": {"name": "city"}, "geometry": {
    "type": "Polygon", "coordinates": [[[2.0, 48.5], [2.7, 48.5], [2.7, 49.0], [2.0, 49.0], [2.0, 48.5]]]}}
IN_DEPOT, IN_CITY, OUTSIDE = (48.85, 2.35), (48.7, 2.2), (50.0, 5.0)
T0 = int(time.time()) - 600
OFFLINE_AFTER = 4


def fix(marker_id, seconds, at, **extra):
    return marker_id.encode(), orjson.dumps({"marker_id": marker_id, "time": T0 + seconds, "lat": at[0],
                                             "lon": at[1], **extra})


@pytest.fixture(scope="module")
def worker(stack):
    stack.add_geofences([DEPOT, CITY])
    worker = stack.worker(TRACKER_SPEED_LIMIT="30", TRACKER_OFFLINE_AFTER=str(OFFLINE_AFTER)).start()
    worker.wait_ready()
    return worker


def stored(stack, marker_id, types=("geofence_enter", "geofence_exit", "overspeed", "low_battery")):
    """(type, geofence name, seconds after T0, late) of the marker's events in Postgres."""
    return [(kind, name, int(t), late) for kind, name, t, late in stack.query(
        "SELECT type, event->>'geofence_name', extract(epoch FROM event_time) - %s, "
        "coalesce((event->>'late')::boolean, false) FROM events WHERE marker_id = %s AND type = ANY(%s) "
        "ORDER BY event_time, type", T0, marker_id, list(types))]


def test_a_van_crossing_geofences_speeding_and_running_low_raises_each_event_once(stack, worker):
    stack.send([fix("van-1", 0, OUTSIDE, battery=60), fix("van-1", 10, IN_CITY, speed=20, battery=50),
                fix("van-1", 20, IN_DEPOT, speed=8, battery=30),  # over the depot's own limit
                fix("van-1", 20, IN_DEPOT, speed=8, battery=30),  # a duplicate
                fix("van-1", 30, IN_CITY, speed=40, battery=15),  # over the global limit: still the same
                fix("van-1", 50, OUTSIDE, speed=10, battery=12),
                fix("van-1", 40, IN_DEPOT, speed=3, battery=14)])  # late, inside the depot between two fixes
    want = [("geofence_enter", "city", 10, False), ("geofence_enter", "depot", 20, False),
            ("overspeed", None, 20, False), ("geofence_exit", "depot", 30, False),
            ("low_battery", None, 30, False), ("geofence_enter", "depot", 40, True),
            ("geofence_exit", "city", 50, False), ("geofence_exit", "depot", 50, True)]
    got = wait_for(lambda: (lambda rows: rows if len(rows) >= len(want) else None)(stored(stack, "van-1")),
                   60, "the van's events in Postgres")
    assert sorted(got) == sorted(want)

    topic = [e for e in stack.read_topic(stack.settings.events_topic, expect=len(want))
             if e["type"] not in ("offline", "online")]
    assert sorted(e["id"] for e in topic) == sorted(row[0] for row in stack.query(
        "SELECT event_id FROM events WHERE type NOT IN ('offline', 'online')"))
    enter = next(e for e in topic if e["type"] == "geofence_enter" and e["geofence_name"] == "depot"
                 and not e.get("late"))
    assert enter["marker_id"] == "van-1" and enter["position"] == {"lat": IN_DEPOT[0], "lon": IN_DEPOT[1]}
    assert isinstance(enter["geofence_id"], int) and enter["time"].endswith("Z")
    speeding = next(e for e in topic if e["type"] == "overspeed")
    assert (speeding["speed"], speeding["limit"]) == (8, 5)


def test_the_api_lists_events_newest_first_as_json_and_csv_for_those_who_may_see_them(stack, worker):
    wait_for(lambda: len(stored(stack, "van-1")) >= 8, 60, "the van's events")
    status, body = worker.get("/api/events?marker=van-1&type=geofence_enter,geofence_exit&limit=3")
    assert status == 200 and [e["time"] for e in body["events"]] == sorted(
        (e["time"] for e in body["events"]), reverse=True) and len(body["events"]) == 3
    assert {e["type"] for e in body["events"]} <= {"geofence_enter", "geofence_exit"}
    assert worker.get("/api/markers/van-1/events?type=overspeed")[1]["events"][0]["limit"] == 5

    status, text = worker.get("/api/markers/van-1/events?format=csv&type=geofence_enter,geofence_exit")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and len(rows) == 6 and rows[0]["marker_id"] == "van-1"
    assert [row["late"] for row in rows].count("true") == 2

    stranger = stack.user("events-stranger", "viewer", ["truck-*"])
    assert worker.get("/api/events", token=stranger) == (200, {"events": []})
    assert worker.get("/api/markers/van-1/events", token=stranger)[0] == 404  # as if there were no van-1
    assert worker.get("/api/events", token=None)[0] == 401
    status, body = worker.get("/api/events?type=teleport")
    assert status == 400 and "teleport" in body["message"]


def test_a_silent_marker_goes_offline_and_its_next_fix_brings_it_back_online(stack, worker):
    stack.send([fix("van-2", 0, OUTSIDE)])
    def status_events():
        return stored(stack, "van-2", ("offline", "online"))

    assert wait_for(status_events, 30 + OFFLINE_AFTER, "the van going offline") == [("offline", None, 0, False)]
    stack.send([fix("van-2", 100, OUTSIDE)])
    wait_for(lambda: len(status_events()) > 1, 30, "the van back online")
    time.sleep(OFFLINE_AFTER / 2)
    assert status_events() == [("offline", None, 0, False), ("online", None, 100, False)]
