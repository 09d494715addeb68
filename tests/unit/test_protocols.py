"""Exact samples of what Traccar Client and OwnTracks send, converted to the topic's units."""
from datetime import datetime, timedelta, timezone

import pytest

from tracker.positions.model import InvalidPosition, parse_position
from tracker.ingest.protocols import osmand, owntracks

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)


def test_traccar_query_mode():
    record = osmand.from_query({
        "id": "phone-1", "timestamp": "1795768800", "lat": "45.81", "lon": "15.98", "speed": "10",
        "bearing": "271.5", "altitude": "120.4", "accuracy": "4.9", "batt": "87", "charge": "true",
        "hdop": "0.8",
    }, NOW)
    position = parse_position(record, now=NOW)
    assert position.marker_id == "phone-1"
    assert position.time == datetime(2026, 11, 27, 8, 40, tzinfo=timezone.utc)
    assert position.speed == pytest.approx(5.14444, rel=1e-4)  # 10 knots
    assert (position.heading, position.altitude, position.accuracy, position.battery) == (271.5, 120.4, 4.9, 87)
    assert position.attributes == {"charge": True, "hdop": "0.8"}
    assert position.source == "osmand"


@pytest.mark.parametrize("timestamp, expected", [
    ("1795768800", datetime(2026, 11, 27, 8, 40, tzinfo=timezone.utc)),
    ("1795768800123", datetime(2026, 11, 27, 8, 40, 0, 123000, tzinfo=timezone.utc)),
    ("2026-11-27T08:40:00Z", datetime(2026, 11, 27, 8, 40, tzinfo=timezone.utc)),
    ("2026-11-27 08:40:00", datetime(2026, 11, 27, 8, 40, tzinfo=timezone.utc)),
    (None, NOW),
])
def test_traccar_timestamps(timestamp, expected):
    params = {"deviceid": "d", "location": "1.5,2.5"}
    if timestamp is not None:
        params["timestamp"] = timestamp
    position = parse_position(osmand.from_query(params, NOW), now=NOW)
    assert position.time == expected
    assert (position.lat, position.lon) == (1.5, 2.5)


@pytest.mark.parametrize("params, code", [
    ({"lat": "1", "lon": "2"}, "missing_field"),
    ({"id": "d", "lat": "1"}, "missing_field"),
    ({"id": "d", "lat": "north", "lon": "2"}, "wrong_type"),
    ({"id": "d", "lat": "1", "lon": "2", "timestamp": "soon"}, "bad_time"),
    ({"id": "d", "lat": "1", "lon": "2", "speed": "nan"}, "not_finite"),
])
def test_traccar_query_errors(params, code):
    with pytest.raises(InvalidPosition) as caught:
        parse_position(osmand.from_query(params, NOW), now=NOW)
    assert caught.value.code == code


def test_traccar_json_mode():
    body = {
        "device_id": "phone-2",
        "location": {
            "timestamp": "2026-11-27T11:59:30.500Z",
            "coords": {"latitude": 45.1, "longitude": 14.2, "accuracy": 8.5, "speed": 3.2,
                       "heading": -1, "altitude": 250},
            "is_moving": True, "odometer": 12345.6,
            "battery": {"level": 0.42, "is_charging": False},
            "activity": {"type": "on_foot"},
            "extras": {"trip": "morning", "password": "hunter2"},
            "uuid": "3f1c-…", "mock": False,
        },
    }
    ((_, record),) = osmand.from_json(body, NOW)
    position = parse_position(record, now=NOW)
    assert position.speed == 3.2 and position.heading is None  # m/s kept; -1 means unknown
    assert position.battery == pytest.approx(42.0)
    assert position.time == datetime(2026, 11, 27, 11, 59, 30, 500000, tzinfo=timezone.utc)
    assert position.attributes == {"is_moving": True, "odometer": 12345.6, "charge": False,
                                   "activity": "on_foot"}  # extras and unknown fields dropped


def test_traccar_json_mode_accepts_a_list_of_locations():
    location = {"timestamp": "2026-11-27T11:00:00Z", "coords": {"latitude": 1, "longitude": 2}}
    records = osmand.from_json({"device_id": "d", "location": [location, location]}, NOW)
    assert len(records) == 2


def test_owntracks_location():
    body = {"_type": "location", "lat": 48.85, "lon": 2.35, "tst": 1795768800, "acc": 12, "alt": 35,
            "vel": 36, "cog": 90, "batt": 66, "tid": "ab", "t": "u", "conn": "m"}
    position = parse_position(owntracks.from_location(body, "ana"), now=NOW)
    assert position.marker_id == "ana" and position.source == "owntracks"
    assert position.speed == pytest.approx(10.0)  # 36 km/h
    assert (position.heading, position.altitude, position.accuracy, position.battery) == (90, 35, 12, 66)
    assert position.attributes == {"tid": "ab", "t": "u", "conn": "m"}


SECRETS = {"password": "hunter2", "token": "abc", "key": "AKIA123", "secret": "s3cret"}


def test_traccar_query_mode_keeps_only_known_attributes():
    params = {"id": "phone-1", "lat": "45.81", "lon": "15.98", "timestamp": "1795768800", **SECRETS,
              "hdop": "0.8", "sat": "9", "odometer": "12000", "ignition": "false", "motion": "true",
              "alarm": "sos", "note": "picked up the kids", "driverUniqueId": "4711",
              "wifi": "aa:bb:cc:dd:ee:ff,-61", "cell": "219,1,123,456"}
    position = parse_position(osmand.from_query(params, NOW), now=NOW)
    assert position.attributes == {"hdop": "0.8", "sat": "9", "odometer": "12000", "ignition": False,
                                   "motion": True, "alarm": "sos"}


def test_traccar_query_mode_with_nothing_known_has_no_attributes():
    params = {"id": "phone-1", "lat": "45.81", "lon": "15.98", **SECRETS, "unknown": "1"}
    assert parse_position(osmand.from_query(params, NOW), now=NOW).attributes is None


def test_owntracks_keeps_only_known_attributes():
    body = {"_type": "location", "lat": 48.85, "lon": 2.35, "tst": 1795768800, **SECRETS,
            "tid": "ab", "t": "p", "conn": "w", "bs": 2, "vac": 3, "m": 2, "p": 101.3,
            "SSID": "Home Network", "BSSID": "aa:bb:cc:dd:ee:ff", "inregions": ["home"],
            "topic": "owntracks/ana/phone", "tag": "private note", "newfield": "?"}
    position = parse_position(owntracks.from_location(body, "ana"), now=NOW)
    assert position.attributes == {"tid": "ab", "t": "p", "conn": "w", "bs": 2, "vac": 3, "m": 2, "p": 101.3}


def test_owntracks_kinds():
    assert owntracks.is_location({"_type": "location"})
    assert not owntracks.is_location({"_type": "waypoint"})
    assert not owntracks.is_location([1])
    with pytest.raises(InvalidPosition):
        owntracks.from_location({"_type": "location", "lat": 1, "lon": 2}, "ana")


@pytest.mark.parametrize("ahead, accepted", [(timedelta(minutes=4), True), (timedelta(minutes=6), False)])
def test_the_edges_refuse_a_fix_more_than_five_minutes_ahead_of_its_receipt(ahead, accepted):
    epoch = int((NOW + ahead).timestamp())
    converters = [
        lambda: parse_position(osmand.from_query({"id": "d", "lat": "1", "lon": "2", "timestamp": str(epoch)}, NOW),
                               now=NOW),
        lambda: parse_position(owntracks.from_location({"_type": "location", "lat": 1, "lon": 2, "tst": epoch}, "d"),
                               now=NOW),
    ]
    for convert in converters:
        if accepted:
            assert convert().time == NOW + ahead
        else:
            with pytest.raises(InvalidPosition) as caught:
                convert()
            assert caught.value.code == "future"
