"""The validation function: every field, with good and bad values."""
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from tracker.positions.model import InvalidPosition, parse_position, parse_time

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
GOOD = {"marker_id": "truck-7", "lat": 45.5, "lon": 14.25, "time": "2026-06-01T11:59:00Z"}


def with_(**changes):
    record = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return record


@pytest.mark.parametrize(
    "changes, field, expected",
    [
        ({}, "marker_id", "truck-7"),
        ({"marker_id": "a"}, "marker_id", "a"),
        ({"marker_id": "A.b:c_d-9" + "x" * 55}, "marker_id", "A.b:c_d-9" + "x" * 55),
        ({"marker_id": "_a-."}, "marker_id", "_a-."),
        ({"marker_id": "9-"}, "marker_id", "9-"),
        ({"marker_id": "__proto__"}, "marker_id", "__proto__"),
        ({"lat": -90}, "lat", -90.0),
        ({"lat": 90.0}, "lat", 90.0),
        ({"lon": -180}, "lon", -180.0),
        ({"lon": 180}, "lon", 180.0),
        ({"time": 1780315140}, "time", datetime(2026, 6, 1, 11, 59, tzinfo=timezone.utc)),
        ({"time": 1780315140.5}, "time", datetime(2026, 6, 1, 11, 59, 0, 500000, tzinfo=timezone.utc)),
        ({"time": 1780315140000}, "time", datetime(2026, 6, 1, 11, 59, tzinfo=timezone.utc)),
        ({"time": "1780315140"}, "time", datetime(2026, 6, 1, 11, 59, tzinfo=timezone.utc)),
        ({"time": "2026-06-01T13:59:00+02:00"}, "time", datetime(2026, 6, 1, 11, 59, tzinfo=timezone.utc)),
        ({"time": "2026-06-01 11:59:00"}, "time", datetime(2026, 6, 1, 11, 59, tzinfo=timezone.utc)),
        ({"time": "2026-06-01T12:05:00Z"}, "time", datetime(2026, 6, 1, 12, 5, tzinfo=timezone.utc)),
        ({"speed": 0}, "speed", 0.0),
        ({"speed": 36.1}, "speed", 36.1),
        ({"heading": 0}, "heading", 0.0),
        ({"heading": 360}, "heading", 360.0),
        ({"altitude": -400.5}, "altitude", -400.5),
        ({"accuracy": 4}, "accuracy", 4.0),
        ({"battery": 0}, "battery", 0.0),
        ({"battery": 100}, "battery", 100.0),
        ({"source": "osmand"}, "source", "osmand"),
        ({"speed": None}, "speed", None),
        ({"unknown_extra": 1}, "source", None),
        ({"attributes": {"charge": True, "odometer": 1234.5, "activity": "walking", "x": None}},
         "attributes", {"charge": True, "odometer": 1234.5, "activity": "walking", "x": None}),
        ({"attributes": {}}, "attributes", None),
    ],
)
def test_accepts(changes, field, expected):
    position = parse_position(orjson.dumps(with_(**changes)), now=NOW)
    assert getattr(position, field) == expected


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"", "not_json"),
        (b"{not json", "not_json"),
        (b'{"marker_id": "a", "lat": NaN, "lon": 1, "time": 1}', "not_json"),
        (b"\xff\xfe\x00", "not_json"),
        (b"[1, 2]", "not_object"),
        (b"42", "not_object"),
        (orjson.dumps(with_(marker_id=...)), "missing_field"),
        (orjson.dumps(with_(marker_id="")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id="x" * 65)), "bad_marker_id"),
        (orjson.dumps(with_(marker_id="has space")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id="<img src=x>")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id=7)), "bad_marker_id"),
        (orjson.dumps(with_(marker_id="-rf")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id="-")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id=".")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id="..")), "bad_marker_id"),
        (orjson.dumps(with_(marker_id=".hidden")), "bad_marker_id"),
        (orjson.dumps(with_(lat=...)), "missing_field"),
        (orjson.dumps(with_(lat=90.0001)), "out_of_range"),
        (orjson.dumps(with_(lat=-91)), "out_of_range"),
        (orjson.dumps(with_(lat="45.5")), "wrong_type"),
        (orjson.dumps(with_(lat=True)), "wrong_type"),
        (orjson.dumps(with_(lon=...)), "missing_field"),
        (orjson.dumps(with_(lon=180.5)), "out_of_range"),
        (orjson.dumps(with_(lon=[1])), "wrong_type"),
        (orjson.dumps(with_(time=...)), "missing_field"),
        (orjson.dumps(with_(time="yesterday")), "bad_time"),
        (orjson.dumps(with_(time="2026-06-01T12:05:01Z")), "future"),
        (orjson.dumps(with_(time="2026-06-02T11:00:00Z")), "future"),
        (orjson.dumps(with_(time=-5)), "out_of_range"),
        (orjson.dumps(with_(time="1960-01-01T00:00:00Z")), "out_of_range"),
        (orjson.dumps(with_(time=False)), "wrong_type"),
        (orjson.dumps(with_(time={"s": 1})), "wrong_type"),
        (orjson.dumps(with_(time="nan")), "not_finite"),
        (b"{\"marker_id\": \"a\", \"lat\": 1, \"lon\": 1, \"time\": 1e300}", "out_of_range"),
        (b"{\"marker_id\": \"a\", \"lat\": 1, \"lon\": 1, \"time\": 100000000000000000000000}", "out_of_range"),
        (orjson.dumps(with_(speed=-1)), "out_of_range"),
        (orjson.dumps(with_(speed="fast")), "wrong_type"),
        (orjson.dumps(with_(heading=360.5)), "out_of_range"),
        (orjson.dumps(with_(heading=-1)), "out_of_range"),
        (orjson.dumps(with_(altitude=1e6)), "out_of_range"),
        (orjson.dumps(with_(accuracy=-0.1)), "out_of_range"),
        (orjson.dumps(with_(battery=101)), "out_of_range"),
        (orjson.dumps(with_(battery=-1)), "out_of_range"),
        (orjson.dumps(with_(source=5)), "wrong_type"),
        (orjson.dumps(with_(source="x" * 65)), "wrong_type"),
        (orjson.dumps(with_(source="bad\nline")), "wrong_type"),
        (orjson.dumps(with_(attributes=[1])), "wrong_type"),
        (orjson.dumps(with_(attributes={"nested": {"a": 1}})), "wrong_type"),
        (orjson.dumps(with_(attributes={"long": "x" * 257})), "wrong_type"),
        (orjson.dumps(with_(attributes={f"k{i}": i for i in range(33)})), "wrong_type"),
        (orjson.dumps(with_(attributes={"": 1})), "wrong_type"),
        (orjson.dumps(with_(attributes={"x": "a\u0000b"})), "wrong_type"),
        (orjson.dumps(with_(time="9999-12-31T23:00:00-05:00")), "out_of_range"),
        (orjson.dumps(with_(time="0001-01-01T00:00:00+01:00")), "out_of_range"),
    ],
)
def test_rejects_with_a_reason(raw, code):
    with pytest.raises(InvalidPosition) as caught:
        parse_position(raw, now=NOW)
    assert caught.value.code == code
    assert caught.value.reason.startswith(code + ": ")
    assert len(caught.value.message) > 5


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("field", ["lat", "lon", "speed", "battery", "time"])
def test_rejects_non_finite_numbers_from_decoded_input(field, value):
    with pytest.raises(InvalidPosition) as caught:
        parse_position(with_(**{field: value}), now=NOW)
    assert caught.value.code == "not_finite"


def test_millisecond_and_second_epochs_agree():
    seconds = parse_position(with_(time=1780315140), now=NOW)
    millis = parse_position(with_(time=1780315140123), now=NOW)
    assert millis.time - seconds.time == timedelta(milliseconds=123)


def test_to_dict_uses_contract_names_and_iso_utc():
    position = parse_position(with_(time=1780315140, speed=3), now=NOW)
    assert position.to_dict() == {
        "marker_id": "truck-7", "lat": 45.5, "lon": 14.25, "time": "2026-06-01T11:59:00Z",
        "speed": 3.0, "heading": None, "altitude": None, "accuracy": None, "battery": None,
        "source": None, "attributes": None,
    }


def test_round_trip_through_json_keeps_the_position():
    position = parse_position(with_(time="2026-06-01T11:59:00.250Z", battery=50), now=NOW)
    assert parse_position(position.to_json(), now=NOW) == position


def test_a_refused_marker_id_is_told_the_whole_rule():
    for marker_id in ("-rf", ".hidden", "has space"):
        with pytest.raises(InvalidPosition) as caught:
            parse_position(with_(marker_id=marker_id), now=NOW)
        assert caught.value.message == (
            "marker_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -, not starting with - or .")


def test_the_future_limit_is_five_minutes_after_now_and_says_so():
    assert parse_position(with_(time="2026-06-01T12:05:00Z"), now=NOW).time == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidPosition) as caught:
        parse_position(with_(time="2026-06-01T12:05:00.001Z"), now=NOW)
    assert caught.value.code == "future"
    assert "more than 5 min ahead" in caught.value.message


def test_the_time_parser_of_the_edges_applies_the_same_limit():
    assert parse_time("2026-06-01T12:05:00Z", now=NOW) == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidPosition) as caught:
        parse_time("2026-06-01T12:06:00Z", now=NOW)
    assert caught.value.code == "future"
    assert parse_time("2026-06-02T12:00:00Z", max_future=None) == NOW + timedelta(days=1)
