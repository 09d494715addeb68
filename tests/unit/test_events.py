"""The events model: one marker's fixes, in fix-time order or not, and what they raise."""
import pytest

from tracker.events.model import Detector, Limits, MarkerState
from tracker.geofences.model import GeofenceIndex, parse_feature

S = 1_000_000  # µs
DEPOT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
         "properties": {"name": "depot", "radius": 200, "speed_limit": 5}}
CITY = {"type": "Feature", "properties": {"name": "city"}, "geometry": {
    "type": "Polygon", "coordinates": [[[2.0, 48.5], [2.7, 48.5], [2.7, 49.0], [2.0, 49.0], [2.0, 48.5]]]}}
ISLANDS = {"type": "Feature", "properties": {"name": "islands"}, "geometry": {"type": "MultiPolygon", "coordinates": [
    [[[10.0, 10.0], [10.1, 10.0], [10.1, 10.1], [10.0, 10.1], [10.0, 10.0]]],
    [[[11.0, 11.0], [11.1, 11.0], [11.1, 11.1], [11.0, 11.1], [11.0, 11.0]]]]}}
IN_DEPOT, IN_CITY, OUTSIDE = (48.85, 2.35), (48.7, 2.2), (50.0, 5.0)


def detector(**limits):
    index = GeofenceIndex([parse_feature(DEPOT, 1), parse_feature(CITY, 2), parse_feature(ISLANDS, 3)])
    return Detector(index, Limits(**limits))


def fix(seconds, at, speed=None, battery=None):
    return {"marker_id": "van-1", "time_us": seconds * S, "lat": at[0], "lon": at[1], "speed": speed,
            "battery": battery}


def run(det, fixes, state=None):
    state = state or MarkerState()
    return state, [(e["type"], e.get("geofence_name"), e["time_us"] // S, e.get("late", False))
                   for f in fixes for e in det.apply(state, f)]


def test_a_first_fix_inside_enters_and_moving_out_exits():
    _, events = run(detector(), [fix(0, IN_DEPOT), fix(10, IN_CITY), fix(20, OUTSIDE)])
    assert events == [("geofence_enter", "depot", 0, False), ("geofence_enter", "city", 0, False),
                      ("geofence_exit", "depot", 10, False), ("geofence_exit", "city", 20, False)]


def test_each_part_of_a_multipolygon_is_the_same_geofence():
    _, events = run(detector(), [fix(0, (10.05, 10.05)), fix(10, (11.05, 11.05)), fix(20, (10.5, 10.5))])
    assert events == [("geofence_enter", "islands", 0, False), ("geofence_exit", "islands", 20, False)]


def test_an_exact_duplicate_raises_nothing():
    state, _ = run(detector(), [fix(0, OUTSIDE), fix(10, IN_CITY)])
    assert run(detector(), [fix(10, IN_CITY), fix(0, OUTSIDE)], state)[1] == []


def test_a_late_fix_inside_gives_a_late_pair_not_a_flip():
    det = detector()
    state, events = run(det, [fix(0, OUTSIDE), fix(20, OUTSIDE), fix(10, IN_CITY)])
    assert events == [("geofence_enter", "city", 10, True), ("geofence_exit", "city", 20, True)]
    assert state.inside == [] and state.time_us == 20 * S  # the present is unchanged
    assert run(det, [fix(30, OUTSIDE)], state)[1] == []  # and no spurious exit follows


def test_a_late_fix_outside_between_two_inside_gives_a_late_exit_and_enter():
    _, events = run(detector(), [fix(0, IN_CITY), fix(20, IN_CITY), fix(10, OUTSIDE)])
    assert events[1:] == [("geofence_exit", "city", 10, True), ("geofence_enter", "city", 20, True)]


def test_a_late_fix_that_agrees_with_its_neighbours_raises_nothing():
    _, events = run(detector(), [fix(0, IN_CITY), fix(20, IN_CITY), fix(10, IN_CITY)])
    assert events == [("geofence_enter", "city", 0, False)]


def ids(fixes, order=None):
    state, det = MarkerState(), detector()
    return [e["id"] for i in (order or range(len(fixes))) for e in det.apply(state, fixes[i])]


def test_replaying_the_same_fixes_gives_the_same_event_ids():
    fixes = [fix(0, OUTSIDE), fix(10, IN_DEPOT, speed=9), fix(20, OUTSIDE)]
    first, again = ids(fixes), ids(fixes)
    assert first == again and len(set(first)) == len(first) == 5  # depot and city in and out, overspeed


def test_overspeed_is_raised_once_and_again_only_after_a_calm_minute():
    det = detector(speed_limit=30.0, overspeed_reset_s=60)
    _, events = run(det, [fix(0, OUTSIDE, speed=35), fix(10, OUTSIDE, speed=40), fix(20, OUTSIDE, speed=20),
                          fix(50, OUTSIDE, speed=35),  # back above before a calm minute: still the same
                          fix(60, OUTSIDE, speed=20), fix(130, OUTSIDE, speed=20), fix(140, OUTSIDE, speed=31)])
    assert [(kind, t) for kind, _, t, _ in events] == [("overspeed", 0), ("overspeed", 140)]


def test_a_geofence_speed_limit_applies_inside_it():
    _, events = run(detector(speed_limit=30.0), [fix(0, IN_DEPOT, speed=6), fix(10, IN_CITY, speed=6)])
    assert ("overspeed", None, 0, False) in events


def test_low_battery_is_raised_once_when_it_crosses_the_threshold():
    _, events = run(detector(low_battery=20), [fix(0, OUTSIDE, battery=50), fix(10, OUTSIDE, battery=19),
                                               fix(20, OUTSIDE, battery=15), fix(30, OUTSIDE, battery=80),
                                               fix(40, OUTSIDE, battery=10)])
    assert [(kind, t) for kind, _, t, _ in events] == [("low_battery", 10), ("low_battery", 40)]


def test_offline_then_the_next_fix_is_online():
    det = detector()
    state, _ = run(det, [fix(0, OUTSIDE)])
    offline = det.offline("van-1", state)
    assert offline["type"] == "offline" and det.offline("van-1", state) is None  # once
    assert run(det, [fix(900, OUTSIDE)], state)[1] == [("online", None, 900, False)]


def test_the_state_survives_a_round_trip_through_json():
    det = detector(speed_limit=1)
    state, _ = run(det, [fix(0, IN_CITY, speed=5, battery=10)])
    again = MarkerState.from_json(state.to_json())
    assert again == state


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [0, 2, 1, 3], [1, 0, 2, 3]])
def test_a_late_fix_between_its_neighbours_gives_the_events_of_a_sorted_run(order):
    """While the fixes around a late one are known, the events equal those of the sorted run."""
    fixes = [fix(0, OUTSIDE), fix(10, IN_CITY), fix(20, OUTSIDE), fix(30, OUTSIDE)]
    got = ids(fixes, order)
    assert len(got) == len(set(got)) == 2 and set(got) == set(ids(fixes))


def test_a_crossing_already_raised_keeps_the_time_of_the_first_fix_seen_beyond_it():
    """Out of 10 in, 30 out, 20 out (late): the exit was raised at 30 and is not moved to 20."""
    state, events = run(detector(), [fix(0, OUTSIDE), fix(10, IN_CITY), fix(30, OUTSIDE), fix(20, OUTSIDE)])
    assert events == [("geofence_enter", "city", 10, False), ("geofence_exit", "city", 30, False)]


def test_without_the_geofences_a_marker_keeps_those_it_was_in_and_no_crossing_is_raised():
    state, _ = run(detector(), [fix(0, IN_CITY)])
    unknown = Detector(GeofenceIndex([]), Limits(), judge_geofences=False)  # Postgres away at the start
    assert run(unknown, [fix(10, OUTSIDE), fix(20, IN_DEPOT)], state)[1] == []
    assert state.inside == [2]
    # Once they are known again, what changed since is raised at the next fix.
    assert run(detector(), [fix(30, IN_DEPOT)], state)[1] == [("geofence_enter", "depot", 30, False)]
