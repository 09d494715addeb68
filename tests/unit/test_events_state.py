"""The stored forms of a marker's events state: what a worker writes it reads back exactly,
and what a worker of an earlier version wrote it still reads."""
import dataclasses

import orjson
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

import tracker.events.stored as stored_form
from tracker.events.stored import decode, encode
from tracker.events.fixlog import FixLog
from tracker.events.model import LOG_SIZE, MarkerState
from tracker.settings import settings
from tests.unit.test_events import IN_CITY, IN_DEPOT, OUTSIDE, S, detector, fix

EVERY_FIELD = MarkerState(
    time_us=1_796_590_713_147_000, inside=[2, 9_000_000_000], speeding=True, calm_since_us=1_796_590_700_000_000,
    battery=12.5, offline=True,
    log=FixLog.of_rows([[1_796_590_707_147_000, [], -899_999_999, -1_799_999_999],
                        [1_796_590_708_147_000, [2], 488_500_000, 23_500_000],
                        [1_796_590_713_147_000, [2, 9_000_000_000], 900_000_000, 1_800_000_000]]),
    seen_us=1_796_590_713_200_000, heard_us=1_796_590_713_300_000)

#: An events state as workers before the packed form wrote it (``TRACKER_STATE_FORMAT=json``
#: still does), with a heartbeat; and one from before heartbeats and ``seen``.
EARLIER = (b'{"t":20000000,"in":[2],"sp":false,"calm":null,"bat":80.0,"off":false,'
           b'"log":[[0,[],500000000,50000000],[10000000,[1,2],488500000,23500000],[20000000,[2],487000000,22000000]],'
           b'"seen":20000100,"hb":15000000}')
OLDEST = b'{"t":0,"in":[],"sp":false,"calm":null,"bat":null,"off":false,"log":[[0,[],500000000,50000000]]}'
#: The first events states kept the log's coordinates in degrees.
IN_DEGREES = b'{"t":10,"in":[],"sp":false,"calm":null,"bat":null,"off":false,"log":[[0,[],48.7,2.2],[10,[],-33.8688197,151.2092955]]}'


@pytest.fixture()
def json_form(monkeypatch):
    monkeypatch.setattr(stored_form, "settings", dataclasses.replace(settings, state_format="json"))


@pytest.mark.parametrize("state", [EVERY_FIELD, MarkerState(), MarkerState(time_us=0, battery=0.0, seen_us=0)],
                         ids=["every field", "a new marker", "zeros"])
def test_every_field_comes_back_as_it_was_stored(state):
    value = encode(state)
    assert value[0] == stored_form.PACKED and decode(value) == state
    assert len(value) < len(orjson.dumps(state.to_json())) or not state.log


def test_a_state_stored_by_an_earlier_version_is_read_with_every_field():
    state = decode(EARLIER)
    assert (state.time_us, state.inside, state.battery, state.seen_us, state.heard_us) == (20 * S, [2], 80.0,
                                                                                         20_000_100, 15 * S)
    assert state.log.rows() == orjson.loads(EARLIER)["log"]
    assert decode(encode(state)) == state  # and stored again in the packed form
    oldest = decode(OLDEST)
    assert oldest.seen_us is None and oldest.heard_us is None and oldest.log.rows() == [[0, [], 500000000, 50000000]]
    assert decode(IN_DEGREES).log.rows() == [[0, [], 487000000, 22000000], [10, [], -338688197, 1512092955]]


def test_with_the_json_form_a_worker_of_an_earlier_version_reads_what_is_written(json_form):
    value = encode(EVERY_FIELD)
    data = orjson.loads(value)  # all an earlier worker does
    assert data["log"][2] == [1_796_590_713_147_000, [2, 9_000_000_000], 900_000_000, 1_800_000_000]
    assert data["in"] == [2, 9_000_000_000] and data["hb"] == EVERY_FIELD.heard_us
    assert decode(value) == EVERY_FIELD


@pytest.mark.parametrize("value", [b"\x02" + bytes(47), b"\x01" + bytes(10), encode(EVERY_FIELD)[:-1],
                                   encode(EVERY_FIELD) + b"\x00"],
                         ids=["unknown form", "short head", "cut short", "trailing bytes"])
def test_a_value_in_neither_form_is_refused_with_a_reason(value):
    with pytest.raises(ValueError):
        decode(value)


PLACES = st.sampled_from([IN_DEPOT, IN_CITY, OUTSIDE, (48.7000001, 2.2000001)])


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), PLACES, st.sampled_from([None, 3.0, 9.0]),
                          st.sampled_from([None, 10.0, 50.0])), min_size=1, max_size=3 * LOG_SIZE))
def test_a_marker_stored_and_read_back_after_every_fix_raises_what_it_raises_in_memory(fixes):
    """Out-of-order fixes in and out of geofences (late pairs, a log that overflows): a worker
    that stores the state and reads it back after each fix raises the same events, and
    ends with the same state, as one that keeps it in memory."""
    det = detector(speed_limit=5)
    kept, stored = MarkerState(), encode(MarkerState())
    for seconds, place, speed, battery in fixes:
        one = fix(seconds, place, speed=speed, battery=battery)
        read = decode(stored)
        assert det.apply(read, one) == det.apply(kept, one)
        stored = encode(read)
        assert decode(stored) == kept
    assert len(kept.log) <= LOG_SIZE


def test_a_late_fix_inside_two_geofences_is_placed_between_its_neighbours_in_the_log():
    det = detector()
    state = MarkerState()
    for seconds, place in [(0, OUTSIDE), (20, OUTSIDE), (10, IN_DEPOT)]:
        det.apply(state, fix(seconds, place))
    assert [(t // S, ids) for t, ids, _, _ in state.log.rows()] == [(0, []), (10, [1, 2]), (20, [])]
    assert decode(encode(state)).log.geofences(1) == [1, 2]


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.lists(st.integers(1, 2**40), max_size=3),
                          st.integers(-900_000_000, 900_000_000), st.booleans()), max_size=40))
def test_the_log_keeps_the_newest_fixes_in_order_with_their_geofences(steps):
    """Fixes added at the end and before a later one, with any number of geofences: the log
    holds what a list of rows would, read from memory or from the store."""
    log, rows = FixLog(), []
    for t, ids, lat, late in steps:
        if late and rows:
            at = len(rows) // 2
            log.insert(at, t, ids, lat, -lat, keep=8)
            rows.insert(at, [t, ids, lat, -lat])
            del rows[:-8]
        else:
            log.append(t, ids, lat, -lat, keep=8)
            rows.append([t, ids, lat, -lat])
            del rows[:-8]
        assert log.rows() == rows
        assert decode(encode(MarkerState(log=log))).log.rows() == rows
