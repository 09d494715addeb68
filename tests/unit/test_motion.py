"""The motion model on hand-made sequences: stops, trips, gaps, spikes, the odometer."""
from __future__ import annotations

import math

import orjson
import pytest

from tables import journeys_state
from tracker.journeys import motion
from tracker.journeys.motion import MotionState, Rules, Spike, Stop, Trip

RULES = Rules()
LAT0, LON0 = 48.0, 2.0
M_PER_DEG_LAT = 111_195.0  # the model's sphere: 6,371 km


def at(x_m: float) -> tuple[float, float]:
    """A point x metres east of the origin."""
    return LAT0, LON0 + x_m / (M_PER_DEG_LAT * math.cos(math.radians(LAT0)))


class Track:
    """Fixes one at a time along an east-west line, 10 s apart unless told."""

    def __init__(self) -> None:
        self.t, self.x, self.fixes = 0.0, 0.0, []

    def fix(self, speed=None):
        self.fixes.append((round(self.t * 1e6), *at(self.x), speed))

    def drive(self, metres: float, speed: float = 20.0, step: float = 10.0):
        for _ in range(round(metres / (speed * step))):
            self.t += step
            self.x += speed * step
            self.fix()
        return self

    def wait(self, seconds: float, step: float = 10.0):
        """Still fixes for ``seconds`` after the current one (the last exactly at the end)."""
        end = self.t + seconds
        while self.t < end:
            self.t = min(end, self.t + step)
            self.fix(speed=0.0)
        return self

    def skip(self, seconds: float):
        self.t += seconds
        return self


def kinds(out, kind):
    return [item for item in out if isinstance(item, kind)]


def run(track: Track, rules: Rules = RULES):
    return motion.run(track.fixes, rules)


def test_a_still_period_of_301_s_is_a_stop_between_two_trips():
    track = Track()
    track.fix()
    track.drive(2_000).wait(301).drive(2_000).wait(600).drive(1_000)
    state, out = run(track)
    trips, stops = kinds(out, Trip), kinds(out, Stop)
    assert [round(s.duration_s) for s in stops] == [301, 600]
    assert len(trips) == 2
    assert [round(t.distance_m) for t in trips] == [2_000, 2_000]
    # the first trip runs from the departure to the arrival at the stop
    assert trips[0].start_us == 0 and trips[0].end_us == stops[0].start_us
    assert trips[1].start_us == stops[0].end_us and trips[1].end_us == stops[1].start_us
    assert trips[0].max_speed == pytest.approx(20.0)
    assert trips[0].average_speed == pytest.approx(20.0)


def test_a_still_period_of_299_s_does_not_end_the_trip():
    track = Track()
    track.fix()
    track.drive(2_000).wait(299).drive(2_000).wait(600).drive(1_000)
    _, out = run(track)
    trips, stops = kinds(out, Trip), kinds(out, Stop)
    assert [round(s.duration_s) for s in stops] == [600]
    assert len(trips) == 1
    assert trips[0].start_us == 0 and trips[0].end_us == stops[0].start_us
    assert trips[0].distance_m == pytest.approx(4_000, rel=1e-3)
    assert trips[0].duration_s == pytest.approx(100 + 299 + 100)


def test_a_trip_shorter_than_500_m_is_not_kept():
    track = Track()
    track.fix()
    track.wait(400).drive(400, speed=5.0).wait(400).drive(600)
    _, out = run(track)
    assert kinds(out, Trip) == []
    assert len(kinds(out, Stop)) == 2


def test_a_gap_ends_the_trip_at_the_last_fix_before_it():
    track = Track()
    track.fix()
    track.drive(3_000)
    before_gap = track.t
    track.skip(1_000).drive(3_000).wait(400).drive(1_000)
    _, out = run(track)
    trips = kinds(out, Trip)
    assert len(trips) == 2
    assert trips[0].end_us == round(before_gap * 1e6)
    assert trips[0].distance_m == pytest.approx(3_000, rel=1e-3)
    # the second starts after the gap: the distance across it is in neither trip
    assert trips[1].start_us > round(before_gap * 1e6) + 1_000 * 1_000_000 - 1
    assert trips[1].distance_m == pytest.approx(2_800, rel=1e-3)


def test_a_tracker_asleep_while_parked_gives_one_stop_across_the_gap():
    track = Track()
    track.fix()
    track.drive(2_000).wait(30).skip(8 * 3600).wait(60).drive(2_000).wait(400).drive(500)
    _, out = run(track)
    stops = kinds(out, Stop)
    assert round(stops[0].duration_s) == 30 + 8 * 3600 + 10 + 50
    assert len(kinds(out, Trip)) == 2


def test_a_spike_is_left_out_of_the_distance_and_reported():
    clean, spiky = Track(), Track()
    for track in (clean, spiky):
        track.fix()
        track.drive(1_000)
    spiky.t += 10
    spiky.fixes.append((round(spiky.t * 1e6), *at(spiky.x + 50_000), None))  # 50 km off
    spike_us = spiky.fixes[-1][0]
    clean.t += 10  # the same fixes without it
    for track in (clean, spiky):
        track.drive(1_000).wait(400).drive(600)
    clean_state, clean_out = run(clean)
    spiky_state, spiky_out = run(spiky)
    spikes = kinds(spiky_out, Spike)
    assert [(s.time_us, s.lon) for s in spikes] == [(spike_us, at(1_000 + 50_000)[1])]
    assert spiky_state.odometer == pytest.approx(clean_state.odometer, rel=1e-9)
    assert spiky_state.odometer == pytest.approx(2_600, rel=1e-4)
    assert kinds(spiky_out, Trip) == kinds(clean_out, Trip)


def test_a_genuine_jump_is_accepted_when_the_track_goes_on_from_there():
    track = Track()
    track.fix()
    track.drive(1_000)
    track.x += 50_000  # a teleport (a ferry without fixes): the next fixes continue from there
    track.drive(1_000)
    state, out = run(track)
    assert kinds(out, Spike) == []
    assert state.odometer == pytest.approx(52_000, rel=1e-4)


def test_the_odometer_counts_every_accepted_metre_and_moving_follows_the_last_fix():
    track = Track()
    track.fix()
    track.drive(5_000)
    state, _ = run(track)
    assert state.odometer == pytest.approx(5_000, rel=1e-4)
    assert state.moving
    track.wait(60)
    state, _ = run(track)
    assert not state.moving


def test_a_late_fix_is_refused_and_judged_against_the_open_period():
    track = Track()
    track.fix()
    track.drive(2_000).wait(400).drive(2_000)
    state, _ = run(track)
    before = state.values()
    assert motion.advance(state, 5 * 1_000_000, *at(100), None, RULES, []) is False
    assert state.values() == before
    assert motion.late(state, 5 * 1_000_000) is True  # before the open trip: recompute now
    inside = state.trip_us + 10 * 1_000_000
    assert motion.late(state, inside) is False and state.late_us == inside


def test_a_fix_before_a_new_markers_first_period_waits_for_that_period_to_end():
    track = Track()
    track.fix()
    track.drive(2_000)
    state, finished = run(track)
    before = -5 * 1_000_000  # the first fix is at 0
    assert finished == [] and not state.settled and state.open_since_us == 0
    assert motion.late(state, before) is False and state.late_us == before
    track.wait(400)  # the trip ends: from now on an older fix falls among finished journeys
    state, _ = run(track)
    assert state.settled and motion.late(state, before) is True


def test_a_state_stored_by_an_earlier_version_counts_as_settled():
    track = Track()
    track.fix()
    track.drive(500)
    state, _ = run(track)
    assert not state.settled
    earlier = journeys_state.decode(orjson.dumps(state.values()[:-1]))  # without the last slot
    assert earlier.settled and earlier.values()[:-1] == state.values()[:-1]


def test_starting_again_from_a_stop_finds_the_same_journeys():
    track = Track()
    track.fix()
    for _ in range(4):
        track.drive(3_000).wait(200).drive(1_000).wait(700)
    _, whole = run(track)
    stops = kinds(whole, Stop)
    start = stops[1].start_us
    _, again = motion.run([f for f in track.fixes if f[0] >= start], RULES)
    assert [j for j in whole if not isinstance(j, Trip) or j.start_us >= start][1:] == again


def test_the_state_survives_its_stored_form():
    track = Track()
    track.fix()
    track.drive(2_000).wait(100)
    state, _ = run(track)
    state.suspect = (1, 2.0, 3.0, None)
    state.late_us, state.heard_us = 7, 8
    copy = journeys_state.decode(journeys_state.encode(state))
    assert copy.values() == state.values() and copy.suspect == (1, 2.0, 3.0, None)
    assert journeys_state.decode(None).values() == MotionState().values()


def test_a_new_segment_of_a_recording_ends_the_trip_like_a_gap():
    track = Track()
    track.fix()
    track.drive(2_000)
    end_of_first = track.fixes[-1][0]
    track.skip(600)
    track.x += 3_000  # walked on while the device did not record
    track.fix()
    track.drive(2_000).wait(400).drive(600)
    as_one = [f + (False,) for f in track.fixes]
    broken = [f + (f[0] == end_of_first + 600 * 1_000_000,) for f in track.fixes]
    _, out = motion.run(as_one, RULES)
    assert [round(t.distance_m, -2) for t in kinds(out, Trip)] == [7_000]
    _, out = motion.run(broken, RULES)
    trips = kinds(out, Trip)
    assert [round(t.distance_m, -2) for t in trips] == [2_000, 2_000]
    assert trips[0].end_us == end_of_first
