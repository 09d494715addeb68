"""Requests as each app writes them, converted to the topic's contract: Traccar Client 10
(its form body and its JSON array, heartbeats included), OwnTracks' message types,
Overland's batches and ``/ingest/batch``. Samples made from the apps' documented formats."""
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import orjson
import pytest

from tracker.ingest.protocols import batch, osmand, overland, owntracks
from tracker.positions.model import InvalidPosition, micros_of, parse_report

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
NOW_US = micros_of(NOW)
T = 1795775200  # 2026-11-27T10:26:40Z


def checked(record: dict) -> tuple[bool, list]:
    return parse_report(record, NOW_US)


# --- Traccar Client 10: a form body (Ktor's submitForm), one queued position per request ----

def form(body: str) -> dict[str, str]:
    return dict(parse_qsl(body, keep_blank_values=True))


def test_traccar_client_10_form_body_with_its_battery_fields_and_custom_attributes():
    body = ("id=ana-phone&imei=356938035643809&lat=45.81234&lon=15.97812&timestamp=1795775200&accuracy=4.6"
            "&altitude=131.0&speed=9.72&bearing=271.5&batt=87&charge=true&battery_health=good"
            "&battery_voltage=4012&battery_temp=28.5&team=blue")  # team: a custom attribute
    record = osmand.from_query(form(body), NOW)
    is_heartbeat, fix = checked(record)
    assert not is_heartbeat
    assert fix[:4] == ["ana-phone", T * 1_000_000, 45.81234, 15.97812]
    assert fix[4] == pytest.approx(5.0004, rel=1e-4)  # 9.72 knots
    assert record["attributes"] == {"charge": True, "battery_health": "good", "battery_voltage": "4012",
                                    "battery_temp": "28.5"}  # imei and the custom attribute dropped


def test_traccar_client_10_standing_still_sends_a_heartbeat():
    record = osmand.from_query(form("id=ana-phone&timestamp=1795775200&batt=64&charge=false"), NOW)
    assert checked(record) == (True, ["ana-phone", T * 1_000_000, 64.0, "osmand", {"charge": False}])


def test_a_report_with_only_cell_towers_and_wifi_is_a_heartbeat_without_them():
    query = ("id=ana-phone&timestamp=1795775200&cell=219,1,3120,40211,-71&cell=219,1,3120,40212"
             "&wifi=c8-3a-35-0d-11-20,-62&wifi=00-1a-2b-3c-4d-5e,-80")
    is_heartbeat, heard = checked(osmand.from_query(form(query), NOW))
    assert is_heartbeat and heard == ["ana-phone", T * 1_000_000, None, "osmand", None]


def test_an_sos_is_kept_as_the_alarm_attribute():
    record = osmand.from_query(form("id=ana-phone&lat=45.8&lon=15.9&timestamp=1795775200&alarm=sos"), NOW)
    assert record["attributes"] == {"alarm": "sos"}
    record = osmand.from_query(form("id=ana-phone&timestamp=1795775200&alarm=sos"), NOW)
    assert record["kind"] == "heartbeat" and record["attributes"] == {"alarm": "sos"}


def test_a_form_without_a_device_id_is_refused():
    assert osmand.device_of(form("lat=45.8&lon=15.9&timestamp=1795775200")) is None
    with pytest.raises(InvalidPosition) as caught:
        osmand.from_query(form("timestamp=1795775200&batt=50"), NOW)
    assert caught.value.code == "missing_field"


# --- Traccar Client 10: its JSON option, the queue posted as one array ----------------------

QUEUED = [
    {"id": "ana-phone", "lat": 45.81, "lon": 15.97, "timestamp": T, "accuracy": 4.6, "altitude": 131.0,
     "speed": 0.0, "bearing": 0.0, "batt": 88, "charge": True, "battery_health": "good", "battery_voltage": 4100,
     "battery_temp": 27.0, "team": "blue"},
    {"id": "ana-phone", "timestamp": T + 60, "batt": 88, "charge": True},  # a heartbeat
    {"id": "ana-phone", "lat": 123.0, "lon": 15.97, "timestamp": T + 120},  # out of range
    {"id": "ana-phone", "lat": 45.82, "lon": 15.98, "timestamp": T + 180, "speed": 19.44, "alarm": "sos"},
]


def test_traccar_client_10_json_array_judges_each_position_alone():
    assert osmand.claimed_device(QUEUED) == "ana-phone"
    converted = osmand.from_json(QUEUED, NOW)
    assert [raw for raw, _ in converted] == QUEUED
    first, heard, bad, sos = (record for _, record in converted)
    assert first["attributes"] == {"charge": True, "battery_health": "good", "battery_voltage": 4100,
                                   "battery_temp": 27.0}  # JSON numbers stay numbers; custom dropped
    assert checked(first)[1][:4] == ["ana-phone", T * 1_000_000, 45.81, 15.97]
    assert checked(heard) == (True, ["ana-phone", (T + 60) * 1_000_000, 88.0, "osmand", {"charge": True}])
    with pytest.raises(InvalidPosition) as caught:
        checked(bad)  # the range check is the one validation's, at the edge
    assert caught.value.code == "out_of_range"
    assert sos["attributes"] == {"alarm": "sos"} and sos["speed"] == pytest.approx(10.0, rel=1e-3)


def test_an_element_that_is_not_an_object_is_refused_alone():
    converted = osmand.from_json([QUEUED[0], "garbage", {"lat": 1}], NOW)
    assert not isinstance(converted[0][1], InvalidPosition)
    assert [r.code for _, r in converted[1:]] == ["not_object", "missing_field"]


def test_traccar_client_9_json_is_still_understood():
    body = {"device_id": "ana-phone", "location": [
        {"timestamp": "2026-11-27T10:26:40Z", "coords": {"latitude": 45.8, "longitude": 15.9, "speed": 2.0},
         "battery": {"level": 0.5, "is_charging": False}},
        {"timestamp": "2026-11-27T10:27:40Z", "coords": {}, "battery": {"level": 0.49}}]}
    assert osmand.claimed_device(body) == "ana-phone"
    (_, position), (_, heard) = osmand.from_json(body, NOW)
    assert checked(position)[1][:4] == ["ana-phone", T * 1_000_000, 45.8, 15.9]
    assert checked(heard) == (True, ["ana-phone", (T + 60) * 1_000_000, 49.0, "osmand", None])


# --- OwnTracks -------------------------------------------------------------------------------

LOCATION = {"_type": "location", "lat": 48.8566, "lon": 2.3522, "tst": T, "acc": 12, "alt": 35, "vel": 18,
            "cog": 90, "batt": 71, "bs": 1, "tid": "an", "t": "u", "conn": "w", "SSID": "home", "topic": "x"}


@pytest.mark.parametrize("tst", [T, str(T), float(T)])
def test_owntracks_tst_as_a_number_or_as_text(tst):
    record = owntracks.convert({**LOCATION, "tst": tst}, "ana")
    assert checked(record)[1][1] == T * 1_000_000


def test_an_owntracks_location_without_coordinates_is_a_heartbeat():
    record = owntracks.convert({"_type": "location", "tst": T, "batt": 40, "tid": "an"}, "ana")
    assert checked(record) == (True, ["ana", T * 1_000_000, 40.0, "owntracks", {"tid": "an"}])


def test_a_transition_with_its_place_and_time_is_a_fix():
    transition = {"_type": "transition", "wtst": T - 86_400, "lat": 48.85, "lon": 2.35, "tst": T, "acc": 30,
                  "tid": "an", "event": "enter", "desc": "Home", "t": "c"}
    record = owntracks.convert(transition, "ana")
    assert checked(record)[1][:4] == ["ana", T * 1_000_000, 48.85, 2.35]
    assert record["attributes"] == {"tid": "an", "t": "c", "event": "enter"}  # the region's name dropped
    assert owntracks.convert({"_type": "transition", "event": "leave", "tst": T}, "ana") is None


@pytest.mark.parametrize("message, kind", [
    ({"_type": "waypoint", "desc": "Home", "lat": 48.85, "lon": 2.35, "rad": 50, "tst": T}, "waypoint"),
    ({"_type": "waypoints", "waypoints": []}, "waypoints"),
    ({"_type": "lwt", "tst": T}, "lwt"),
    ({"_type": "card", "name": "Ana", "face": "iVBORw0KGgo="}, "card"),
    ({"_type": "cmd", "action": "reportLocation"}, "cmd"),
    ({"_type": "beacon", "uuid": "CA271EAE-5FA8-4E80-8F08-2A302A95A959", "major": 1, "minor": 2, "tst": T}, "beacon"),
    ({"_type": "status", "iOS": {"locationManager": {"authorizationStatus": "always"}}}, "status"),
    ({"_type": "steps", "steps": 1000, "from": T - 3600, "to": T}, "steps"),
    ({"_type": "encrypted", "data": "c2VjcmV0"}, "encrypted"),
    ({"_type": "something-new", "x": 1}, "other"),
    ([1, 2], "other"),
])
def test_every_other_message_type_is_counted_and_stored_nowhere(message, kind):
    assert owntracks.message_type(message) == kind
    assert owntracks.convert(message, "ana") is None


# --- Overland --------------------------------------------------------------------------------

def point(lon=-122.030581, lat=37.3318, timestamp="2026-11-27T02:26:40-08:00", **properties) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"timestamp": timestamp, "altitude": 12, "speed": 4, "horizontal_accuracy": 30,
                           "vertical_accuracy": -1, "motion": ["driving", "stationary"], "pauses": False,
                           "activity": "other_navigation", "desired_accuracy": 100, "deferred": 1000,
                           "significant_change": "disabled", "locations_in_payload": 2,
                           "battery_state": "charging", "battery_level": 0.89, "device_id": "", "wifi": "Office",
                           **properties}}


def test_overland_points_in_our_units_with_the_current_one_last():
    body = {"locations": [point(), point(speed=-1, timestamp="2026-11-27T10:27:40Z")],
            "current": point(lat=37.4, timestamp="2026-11-27T10:30:00Z"), "trip": {"mode": "car"}}
    points = overland.points(body)
    assert len(points) == 3 and points[-1] is body["current"]
    first, unknown_speed, current = (overland.convert(p, "ana-iphone") for p in points)
    assert checked(first)[1][:5] == ["ana-iphone", T * 1_000_000, 37.3318, -122.030581, 4.0]
    assert first["battery"] == pytest.approx(89.0) and first["accuracy"] == 30
    assert first["attributes"] == {"charge": True, "battery_state": "charging", "motion": "driving,stationary"}
    assert unknown_speed["speed"] is None and current["lat"] == 37.4


def test_an_overland_point_without_coordinates_is_a_heartbeat_and_a_gateways_point_names_its_device():
    heard = overland.convert({"type": "Feature", "geometry": None, "properties": {
        "timestamp": "2026-11-27T10:26:40Z", "battery_level": 0.5, "device_id": "ana-iphone"}}, None)
    assert checked(heard) == (True, ["ana-iphone", T * 1_000_000, 50.0, "overland", None])
    with pytest.raises(InvalidPosition) as caught:
        overland.convert(point(), None)  # a gateway's point without device_id
    assert caught.value.code == "missing_field"
    with pytest.raises(InvalidPosition):
        overland.points({"location": []})


# --- /ingest/batch: the topic's own format -------------------------------------------------

def test_a_json_array_and_ndjson_give_each_element_or_why_not():
    good = {"marker_id": "van-1", "lat": 45.0, "lon": 14.0, "time": T}
    array = orjson.dumps([good, 7, {**good, "kind": "heartbeat"}])
    assert [(raw, isinstance(r, InvalidPosition)) for raw, r in batch.items(array, "application/json")] == [
        (good, False), (7, True), ({**good, "kind": "heartbeat"}, False)]
    lines = orjson.dumps(good) + b"\n{not json\n\n" + orjson.dumps([1]) + b"\n"
    found = batch.items(lines, "application/x-ndjson")
    assert [getattr(r, "code", "ok") for _, r in found] == ["ok", "not_json", "not_object"]
    assert found[1][0] == b"{not json"
    with pytest.raises(InvalidPosition):
        batch.items(b"[1, 2", "application/json")
