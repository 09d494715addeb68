"""The stream's fast read of a report gives what the reference rules give: the same fix, the
same heartbeat, or the same refusal with the same reason, whatever the bytes."""
import json

import orjson
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from tracker.positions.decoding import read_report
from tracker.positions.model import InvalidPosition, decode_object, parse_report

NOW_US = 1_800_000_000 * 1_000_000


def reference(raw: bytes, now_us: int = NOW_US):
    try:
        return parse_report(decode_object(raw), now_us)
    except InvalidPosition as error:
        return error.code, error.message


def fast(raw: bytes, now_us: int = NOW_US):
    try:
        return read_report(raw, now_us)
    except InvalidPosition as error:
        return error.code, error.message


def same(raw: bytes) -> None:
    expected, got = reference(raw), fast(raw)
    assert got == expected, raw
    assert orjson.dumps(got) == orjson.dumps(expected), raw  # 1 and 1.0 too, attributes and all


GOOD = {"marker_id": "van-1", "lat": 45.5, "lon": 14.25, "time": 1_799_999_990}

CASES = [
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":45,"lon":14,"time":1799999990000,"speed":3,"heading":359.5,"altitude":-3.5,'
    b'"accuracy":12,"battery":80,"source":"osmand","attributes":{"charge":true,"odometer":1234.5,"note":null}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":"2027-01-15T08:00:00+01:00"}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990.25}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":"1799999990"}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1800000400}',  # future
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":-1}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":100000000000000000000}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":true}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":null}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25}',
    b'{"marker_id":"van-1","lat":91,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":1e400,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":1e-400,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":-0.0,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":true,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":"45.5","lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"speed":-1}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"battery":null,"speed":null}',
    b'{"marker_id":"-van","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van\\n","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"' + b"v" * 65 + b'","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"marker_id":7,"lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"a","marker_id":"van-2","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"time":1e400,"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"attributes":{"a":1e400},"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":null}',
    b'{"kind":1e400,"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"kind":null}',
    b'{"other":1e400,"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"other":"\xff","marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"source":"\\ud800"}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"source":"\\ud83d\\ude00"}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"source":"tab\\there"}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"source":5}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"n":100000000000000000000}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"n":[1]}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":[]}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":null}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"a":"\\u0000"}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"a":1,"a":"two"}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"n":18446744073709551615}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"n":-9223372036854775809}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"caf\\u00e9":"\\ud83d\\ude00"}}',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990,"attributes":{"":1}}',
    b'{"marker_id":"van-1","lat":45,"lon":-0,"time":1799999990,"speed":1e1,"attributes":{"a":1e2,"b":-0,"c":1.0}}',
    b'{"kind":"heartbeat","marker_id":"van-1","time":1799999990,"battery":50}',
    b'{"kind":"beat","marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'{"kind":null,"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'\xef\xbb\xbf{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}',
    b'  {"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990}\n ',
    b'{"marker_id":"van-1","lat":45.5,"lon":14.25,"time":1799999990} x',
    b'{"marker_id":"van-1","lat":NaN,"lon":14.25,"time":1799999990}',
    b'{"marker_id":"van-\xff","lat":45.5,"lon":14.25,"time":1799999990}',
    b'', b'null', b'[1, 2]', b'"text"', b'not json', b'{', b'{}',
]


@pytest.mark.parametrize("raw", CASES)
def test_a_record_reads_as_the_reference_reads_it(raw):
    same(raw)


def test_the_common_case_is_a_fix_with_every_field_in_place():
    assert read_report(orjson.dumps({**GOOD, "speed": 3}), NOW_US) == (
        False, ["van-1", 1_799_999_990_000_000, 45.5, 14.25, 3.0, None, None, None, None, None, None])


def test_a_refusal_says_why():
    with pytest.raises(InvalidPosition) as refused:
        read_report(orjson.dumps({**GOOD, "lat": 91}), NOW_US)
    assert refused.value.code == "out_of_range" and "lat" in refused.value.message


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([45.5, -180.0, 90.0, 0.0, 1_799_999_990,
                                                                       1_799_999_990_123, "van-1", "2027-01-01"]),
    st.text(max_size=70))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), SCALARS, max_size=4))
FIELDS = st.sampled_from(["marker_id", "lat", "lon", "time", "speed", "heading", "altitude", "accuracy", "battery",
                          "source", "attributes", "kind", "other"])


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.dictionaries(FIELDS, VALUES, max_size=12), st.dictionaries(FIELDS, VALUES, max_size=3))
def test_any_object_reads_as_the_reference_reads_it(fields, changes):
    same(json.dumps({**GOOD, **changes}).encode())  # json: integers beyond 64 bits too
    same(json.dumps(fields).encode())


@hypothesis_settings(max_examples=1000, deadline=None)
@given(st.data())
def test_any_bytes_read_as_the_reference_reads_them(data):
    raw = bytearray(orjson.dumps({**GOOD, "speed": 2.5, "source": "app", "attributes": {"a": 1},
                                  "other": [1.5, "text", {"b": None}, True]}))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at:at + 1] = data.draw(st.binary(max_size=2))
    same(bytes(raw))
