"""What a Traccar server forwards (``forward.type=json``; the same JSON over Kafka), as its
``PositionForwarderJson`` builds it: ``{"position": Position, "device": Device}`` serialised by
its Jackson mapper (ISO 8601 times with an offset, nulls written out, speed in knots; the
position's ``id`` is still 0, it is forwarded before it is stored)."""
from datetime import datetime, timezone

import orjson
import pytest

from tracker.positions.model import InvalidPosition, micros_of, parse_position, parse_report
from tracker.ingest.protocols import traccar

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)

#: One forwarded position of a GT06 tracker, field for field as Traccar writes it.
SAMPLE = orjson.loads(b"""{
  "position": {
    "id": 0, "attributes": {"sat": 9, "ignition": true, "motion": true, "batteryLevel": 76,
                                "odometer": 1534217.0, "distance": 12.36, "totalDistance": 1534217.35,
                                "alarm": "overspeed", "event": 0, "power": 12.4, "ip": "203.0.113.7",
                                "result": "xyz"},
    "deviceId": 17, "protocol": "gt06", "serverTime": "2026-11-28T10:15:31.512+00:00",
    "deviceTime": "2026-11-28T10:15:30.000+00:00", "fixTime": "2026-11-28T11:15:30.000+01:00",
    "valid": true, "latitude": 45.815011, "longitude": 15.981919, "altitude": 122.0,
    "speed": 27.0, "course": 271.0, "address": null, "accuracy": 0.0, "network": null, "geofenceIds": null
  },
  "device": {
    "id": 17, "attributes": {}, "groupId": 0, "calendarId": 0, "name": "Van 3", "uniqueId": "359881234567890",
    "status": "online", "lastUpdate": "2026-11-28T10:15:31.512+00:00", "positionId": 81233, "phone": null,
    "model": null, "contact": null, "category": "van", "disabled": false, "expirationTime": null
  }
}""")


def sample(**changes) -> dict:
    body = orjson.loads(orjson.dumps(SAMPLE))
    for path, value in changes.items():
        part, name = path.split("__")
        if value is ...:
            body[part].pop(name, None)
        else:
            body[part][name] = value
    return body


def test_a_forwarded_position_in_our_units():
    position = parse_position(traccar.convert(SAMPLE), now=NOW)
    assert position.marker_id == "359881234567890"
    assert position.time == datetime(2026, 11, 28, 10, 15, 30, tzinfo=timezone.utc)  # +01:00 honoured
    assert (position.lat, position.lon, position.altitude) == (45.815011, 15.981919, 122.0)
    assert position.speed == pytest.approx(27.0 * 1852 / 3600)  # knots
    assert position.heading == 271.0
    assert position.accuracy is None  # Traccar's 0: not reported
    assert position.battery == 76
    assert position.source == "traccar"
    # understood attributes kept, the device's name as the marker's name; ip, power, the rest dropped
    assert position.attributes == {"motion": True, "ignition": True, "odometer": 1534217.0, "sat": 9,
                                   "alarm": "overspeed", "event": 0, "name": "Van 3"}


def test_no_gps_fix_is_a_heartbeat_at_the_device_time_with_battery_and_alarm():
    record = traccar.convert(sample(position__valid=False))
    assert not traccar.has_fix(record)
    is_heartbeat, heard = parse_report(record, micros_of(NOW))
    assert is_heartbeat and heard[:3] == ["359881234567890", micros_of(datetime(2026, 11, 28, 10, 15, 30,
                                                                                 tzinfo=timezone.utc)), 76]
    assert heard[4]["alarm"] == "overspeed" and heard[4]["name"] == "Van 3"


@pytest.mark.parametrize("changes", [
    {"position__speed": None, "position__course": None, "position__altitude": None, "position__attributes": None},
    {"position__speed": ..., "position__course": ..., "position__altitude": ..., "position__accuracy": ...,
     "position__attributes": ..., "position__valid": ..., "device__name": ...},
])
def test_missing_measures_are_unknown(changes):
    position = parse_position(traccar.convert(sample(**changes)), now=NOW)
    assert (position.lat, position.lon) == (45.815011, 15.981919)
    assert position.speed is None and position.heading is None and position.battery is None


@pytest.mark.parametrize("unique_id, expected", [("  359881234567890 ", "359881234567890"), ("ABC_12:x", "ABC_12:x")])
def test_the_unique_id_is_the_marker_id(unique_id, expected):
    assert traccar.convert(sample(device__uniqueId=unique_id))["marker_id"] == expected


@pytest.mark.parametrize("body, code, words", [
    (sample(device__uniqueId="truck 7/2"), "bad_marker_id", "not a valid marker id"),
    (sample(device__uniqueId=""), "missing_field", "device.uniqueId"),
    (sample(device__uniqueId=359881234567890), "missing_field", "device.uniqueId"),
    ({"position": SAMPLE["position"]}, "missing_field", "device"),
    ({"device": SAMPLE["device"]}, "missing_field", "position"),
    (sample(position__fixTime=...), "missing_field", "fixTime"),
    (sample(position__latitude="north"), "wrong_type", "latitude"),
    ([SAMPLE], "wrong_type", "expected"),
])
def test_what_cannot_be_a_position_is_refused_with_its_reason(body, code, words):
    with pytest.raises(InvalidPosition) as caught:
        parse_position(traccar.convert(body), now=NOW)
    assert caught.value.code == code and words in caught.value.message


def test_an_out_of_range_fix_is_refused_by_the_usual_validation():
    with pytest.raises(InvalidPosition):
        parse_position(traccar.convert(sample(position__latitude=95.0)), now=NOW)
