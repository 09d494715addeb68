"""Reports without a position and alarms, through the pipeline's pure parts: the topic's
contract, the intake's verdict, the batch records, the events model and the ``latest`` value."""
from types import SimpleNamespace

import orjson
import pytest

from tables.changelog import Sent
from tables.latest import LatestWriter, decode, encode, latest, position_of
from tracker.events.model import Detector, Limits, MarkerState, event_id
from tracker.geofences.model import GeofenceIndex
from tracker.positions.intake import Judge
from tracker.positions.live_hub import row_of
from tracker.positions.model import InvalidPosition, format_micros, parse_report
from tracker.stream import batches
from tests.unit import tables

S = 1_000_000
NOW_US = 1_900_000_000 * S
JUDGE = Judge(8)


def heartbeat(marker_id="phone", t=NOW_US // S - 30, **extra) -> dict:
    return {"kind": "heartbeat", "marker_id": marker_id, "time": t, **extra}


# --- the topic's contract ------------------------------------------------------------------

def test_a_heartbeat_needs_no_coordinates_and_keeps_battery_and_attributes():
    is_heartbeat, heard = parse_report(heartbeat(battery=55, attributes={"alarm": "sos"}, lat=None), NOW_US)
    assert is_heartbeat and heard == ["phone", NOW_US - 30 * S, 55.0, None, {"alarm": "sos"}]


@pytest.mark.parametrize("record, code", [
    (heartbeat(marker_id=None), "missing_field"),
    ({**heartbeat(), "time": None}, "missing_field"),
    (heartbeat(t=NOW_US // S + 600), "future"),
    (heartbeat(battery=140), "out_of_range"),
    ({**heartbeat(), "kind": "ping"}, "bad_kind"),
    ({"marker_id": "phone", "time": 1}, "missing_field"),  # without kind it is a position, and has no lat
])
def test_a_bad_heartbeat_is_refused_by_the_same_rules(record, code):
    with pytest.raises(InvalidPosition) as caught:
        parse_report(record, NOW_US)
    assert caught.value.code == code


def test_the_intake_places_heartbeats_apart_from_fixes_and_batches_carry_them_in_records_of_their_own():
    key = b"phone"
    partition = JUDGE.partition_of(key)
    position = {"marker_id": "phone", "lat": 45.0, "lon": 14.0, "time": NOW_US // S - 60}
    records = [SimpleNamespace(key=key, value=orjson.dumps(value), offset=i, timestamp=NOW_US // 1000,
                               partition=partition, topic="gps.positions")
               for i, value in enumerate([position, heartbeat(battery=50)])]
    verdict = JUDGE.judge(partition, records, NOW_US // 1000)
    assert len(verdict.fixes) == 1 and verdict.heard == [["phone", NOW_US - 30 * S, 50.0, None, None, NOW_US]]
    values = list(batches.encode(verdict.fixes, verdict.heard))
    assert [batches.decode(value) for value in values] == [verdict.fixes, []]  # earlier readers: no fixes
    assert batches.decode_parts(values[1]) == ([], [], verdict.heard)
    assert batches.decode_record(values[1]) == ([], [])


# --- events ------------------------------------------------------------------------------

def fix(t, lat=45.0, battery=None, attributes=None, received=None):
    return ["van", t * S, lat, 14.0, None, None, None, None, battery, None, attributes, (received or t) * S]


def beat(t, battery=None, attributes=None, received=None):
    return ["van", t * S, battery, None, attributes, (received or t) * S]


def detector():
    return Detector(GeofenceIndex([]), Limits(low_battery=20))


def apply(det, state, fixes=(), heard=()):
    found = []
    if fixes:
        found += det.apply_fixes(list(fixes), lambda _: state)[0]
    if heard:
        found += det.apply_heard(list(heard), lambda _: state)[0]
    return [(e["type"], e["time_us"] // S, e.get("alarm"), e.get("battery")) for e in found]


def test_a_heartbeat_keeps_the_marker_from_going_offline_and_brings_it_back():
    det, state = detector(), MarkerState()
    apply(det, state, [fix(100)])
    apply(det, state, heard=[beat(160, received=170)])
    assert state.seen_us == 170 * S and not state.offline and state.time_us == 100 * S  # not a fix
    offline = det.offline("van", state)
    assert offline["time_us"] == 160 * S  # at the newest report
    assert offline["position"] == {"lat": 45.0, "lon": 14.0}
    assert apply(det, state, heard=[beat(300)]) == [("online", 300, None, None)]
    # the next silence gets an offline of its own, not the first one's id again
    assert det.offline("van", state)["id"] != offline["id"]


def test_an_old_or_repeated_heartbeat_changes_nothing_but_when_the_marker_was_heard():
    det, state = detector(), MarkerState()
    apply(det, state, [fix(100, battery=50)], [beat(120, battery=40)])
    assert state.battery == 40
    state.offline = True
    assert apply(det, state, heard=[beat(120, battery=10), beat(90, battery=10, received=500)]) == []
    assert state.battery == 40 and state.offline and state.seen_us == 500 * S


def test_a_heartbeats_battery_crossing_the_threshold_raises_low_battery_once():
    det, state = detector(), MarkerState()
    apply(det, state, [fix(100, battery=30)])
    assert apply(det, state, heard=[beat(110, battery=15), beat(120, battery=14)]) == [
        ("low_battery", 110, None, 15.0)]
    assert apply(det, state, [fix(105, battery=50)]) == []  # an older reading than the heartbeat's


def test_an_alarm_is_an_event_of_its_own_with_an_id_of_the_report_and_the_alarm():
    det, state = detector(), MarkerState()
    assert apply(det, state, [fix(100, attributes={"alarm": "sos"})]) == [("alarm", 100, "sos", None)]
    # the same report again, late, or as a heartbeat at the same time: the same event, the same id
    again = det.apply_fixes([fix(100, attributes={"alarm": "sos"})], lambda _: state)[0]
    assert [e["id"] for e in again] == [event_id("van", "alarm", 100 * S, "sos")]
    assert det.apply_heard([beat(100, attributes={"alarm": "sos"})], lambda _: state)[0][0]["id"] == again[0]["id"]
    # a late one still raises (an SOS does not expire), and a Traccar list of alarms raises each
    apply(det, state, [fix(200)])
    assert apply(det, state, [fix(150, attributes={"alarm": "powerCut, sos"})]) == [
        ("alarm", 150, "powerCut", None), ("alarm", 150, "sos", None)]
    assert apply(det, state, [fix(300, attributes={"alarm": 1})]) == []  # not text: no alarm


def test_a_heartbeats_alarm_is_placed_at_the_newest_fix():
    det, state = detector(), MarkerState()
    assert apply(det, state, heard=[beat(50, attributes={"alarm": "sos"})]) == [("alarm", 50, "sos", None)]
    found = det.apply_heard([beat(60, attributes={"alarm": "sos"})], lambda _: state)[0]
    assert found[0]["position"] == {"lat": None, "lon": None}  # no fix yet
    apply(det, state, [fix(100, lat=46.5)])
    found = det.apply_heard([beat(110, attributes={"alarm": "sos"})], lambda _: state)[0]
    assert found[0]["position"] == {"lat": 46.5, "lon": 14.0}


def test_a_state_with_a_heartbeat_is_read_by_workers_of_earlier_versions():
    state = MarkerState(time_us=1, seen_us=2, heard_us=3)
    data = state.to_json()
    assert data["hb"] == 3 and MarkerState.from_json(data) == state
    assert "hb" not in MarkerState(time_us=1).to_json()  # unchanged until a heartbeat comes
    earlier = {key: value for key, value in data.items() if key != "hb"}
    assert MarkerState.from_json(earlier).heard_us is None


# --- latest ------------------------------------------------------------------------------

@pytest.fixture()
def writer():
    tables.clear(latest)
    return LatestWriter(lambda *args: None)


def stored(marker_id="van") -> list:
    return decode(tables.contents(latest)[marker_id.encode()])


def write(writer, changes):
    """Store the changes as the agent does (``commit``: the writer's memory of each value too)."""
    writer.commit(0, changes, Sent(0, 0))


def at(seconds: int) -> str:
    return format_micros(seconds * S)


def test_a_heartbeat_refreshes_a_markers_battery_and_when_it_was_heard_never_backwards(writer):
    assert writer.heard_changes(0, [beat(100, battery=50)]) == []  # no row yet: no position to show
    write(writer, writer.changes(0, [fix(100, battery=80)], {"van": (1200.0, False)}))
    write(writer, writer.heard_changes(0, [beat(160, battery=70, received=170), beat(150, battery=99)]))
    position = position_of(stored())
    assert (position["battery"], position["time"], position["odometer"]) == (70, at(100), 1200.0)
    assert position["heard_at"] == at(170) and position["received_at"] == at(100)
    assert writer.heard_changes(0, [beat(160, battery=70, received=170)]) == []  # a replay writes nothing
    assert row_of(stored())[6] == 70 and row_of(stored())[10] == 170_000


def test_a_newer_fix_keeps_the_time_heard_and_drops_an_older_heartbeats_battery(writer):
    write(writer, writer.changes(0, [fix(100, battery=80)]))
    write(writer, writer.heard_changes(0, [beat(160, battery=70, received=300)]))
    write(writer, writer.changes(0, [fix(200, battery=60, received=210)]))
    position = position_of(stored())
    assert position["battery"] == 60 and position["heard_at"] == at(300)
    write(writer, writer.changes(0, [fix(150, received=400)]))  # a late fix: heard, not moved
    assert position_of(stored())["time"] == at(200) and position_of(stored())["heard_at"] == at(400)


def test_a_value_with_liveness_is_read_by_workers_of_earlier_versions(writer):
    """They read the first fourteen elements: the fix, its receipt, the odometer, the motion."""
    write(writer, writer.changes(0, [fix(100, battery=80)]))
    write(writer, writer.heard_changes(0, [beat(160, battery=70)]))
    value = stored()
    assert len(value) == 15 and value[:12] == fix(100, battery=80) and value[12:14] == [None, None]
    assert orjson.loads(encode(value))[1] == 100 * S
