"""The motion model: trips, stops, spikes and the odometer of one marker, fix by fix.

The same code runs live (``agents/journeys.py``, one fix at a time as the stream brings
them) and over history (``tracker.journeys.rebuild``, the fixes of Postgres in time order),
so that both give the same trips and stops for the same fixes. Nothing here does I/O: a
``MotionState`` and a fix give the next state and what was finished.

The rules, with the ``Rules`` that hold their thresholds (``TRACKER_*`` settings):

- **Spike:** a fix whose jump from the previous accepted fix implies more than
  ``max_speed`` is held back; if the jump from it to the next fix does too, it is a spike:
  dropped (``Spike`` is reported, so that history can flag it) and the next fix is judged
  against the fix before it. Otherwise it is accepted. Implied speeds divide by at least 1 s.
- **Odometer:** the sum of the distances between consecutive accepted fixes (spikes excluded),
  gaps included.
- **Moving:** a fix is moving when its speed (reported, or derived from the previous fix
  over at least 1 s) exceeds ``motion_speed``, or it lies more than ``motion_distance``
  from the *anchor*: the last moving fix, which is where the marker came to rest once
  fixes stop moving (the first fix of a marker is an anchor too).
- **Stop:** the fixes after the anchor that do not move form a still period, from the
  anchor's time to its last fix. It is a stop once it lasts ``stop_min_seconds``; the
  stop is finished when a fix moves again.
- **Trip:** opened by the first moving fix after a still period, from that period's last
  fix (the departure); short still periods (a red light) do not end it; it ends at the
  anchor of the still period that becomes a stop. Its distance runs from departure to
  arrival. It is kept if at least ``trip_min_meters`` and ``trip_min_seconds`` long.
- **Gap:** no fix for more than ``gap_seconds`` ends the open trip at the last fix before
  the gap, where a still period begins. If the fix after the gap is still (close to the
  anchor), the gap belongs to that still period (a car parked with its tracker asleep);
  otherwise the period ends at the last fix before the gap and the model starts afresh
  from the new fix, as for a marker's first fix. ``end_idle_trip`` applies the same rule
  before the next fix comes, for a marker silent for that long by the wall clock (the
  live stage's timer, and a rebuild at the end of history), so that the last trip of a
  track is not left open. A fix that starts a new segment of a recorded track (attribute
  ``track_break``, from ``tracker import``: the device stopped recording before it) is
  taken as coming after a gap, however short, and is never held back as a spike.

A still period is also a point from which the model can start again: from the anchor of a
stop, with an empty state, the model finds the same stops and trips as one that ran from
the beginning (``tracker.journeys.rebuild`` recomputes a day this way).
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import NamedTuple

from tracker.positions.geo import EARTH_RADIUS_M

MICROS = 1_000_000
#: The attribute of a fix that starts a new segment of a recording (``tracker import``).
TRACK_BREAK = "track_break"


@dataclass(frozen=True)
class Rules:
    motion_speed: float = 1.5        # m/s
    motion_distance: float = 100.0   # m from the anchor
    stop_min_seconds: float = 300.0
    trip_min_meters: float = 500.0
    trip_min_seconds: float = 60.0
    gap_seconds: float = 900.0
    max_speed: float = 100.0         # m/s: a jump implying more, from both sides, is a spike


class Trip(NamedTuple):
    start_us: int
    start_lat: float
    start_lon: float
    end_us: int
    end_lat: float
    end_lon: float
    distance_m: float
    max_speed: float  # m/s, reported or derived

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / MICROS

    @property
    def average_speed(self) -> float:
        return self.distance_m / self.duration_s if self.end_us > self.start_us else 0.0


class Stop(NamedTuple):
    start_us: int
    end_us: int
    lat: float
    lon: float

    @property
    def duration_s(self) -> float:
        return (self.end_us - self.start_us) / MICROS


class Spike(NamedTuple):
    time_us: int
    lat: float
    lon: float


Finished = Trip | Stop | Spike


class MotionState:
    """What the model knows of one marker. ``values``/``from_values`` give it a compact
    stored form (a flat list of numbers)."""

    __slots__ = (
        "last_us", "last_lat", "last_lon",            # the last accepted fix
        "suspect",                                    # a fix held back as a possible spike, or None
        "odometer",                                   # m
        "still",                                      # the last accepted fix did not move
        "stopped",                                    # the still period has become a stop
        "anchor_us", "anchor_lat", "anchor_lon",      # the last moving fix (a still period's start)
        "trip_open", "trip_us", "trip_lat", "trip_lon",  # the open trip's departure
        "trip_distance", "trip_max",                  # ... its distance and top speed to the anchor
        "pending_distance", "pending_max",            # ... and within the current still period
        "late_us",                                    # the oldest late fix the open period awaits
        "heard_us",                                   # when the tracker received the newest fix (the caller's)
        "settled",                                    # a trip or stop of this marker was finished
    )

    def __init__(self) -> None:
        self.last_us = None
        self.last_lat = self.last_lon = 0.0
        self.suspect = None
        self.odometer = 0.0
        self.still = True
        self.stopped = False
        self.anchor_us = 0
        self.anchor_lat = self.anchor_lon = 0.0
        self.trip_open = False
        self.trip_us = 0
        self.trip_lat = self.trip_lon = 0.0
        self.trip_distance = self.trip_max = 0.0
        self.pending_distance = self.pending_max = 0.0
        self.late_us = None
        self.heard_us = None
        self.settled = False

    @property
    def moving(self) -> bool:
        return self.last_us is not None and not self.still

    @property
    def seen_us(self) -> int | None:
        """The newest fix time the model has taken (accepted or held back)."""
        if self.suspect is not None:
            return self.suspect[0]
        return self.last_us

    @property
    def open_since_us(self) -> int | None:
        """Where the period still open began: the open trip's departure, else the anchor."""
        if self.last_us is None:
            return None
        return self.trip_us if self.trip_open else self.anchor_us

    def values(self) -> tuple:
        """The stored form: every slot's value, in ``__slots__`` order."""
        return _SLOTS_OF(self)

    @classmethod
    def from_values(cls, values: list | tuple | None) -> "MotionState":
        state = cls()
        if values:
            for name, value in zip(cls.__slots__, values):
                setattr(state, name, value)
            if len(values) < len(cls.__slots__):  # stored by an earlier version: it may have finished some
                state.settled = True
            if state.suspect is not None:
                state.suspect = tuple(state.suspect)
        return state


_SLOTS_OF = operator.attrgetter(*MotionState.__slots__)
_RAD = math.pi / 180.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), as ``tracker.positions.geo.distance_m``, inlined for speed."""
    p1, p2 = lat1 * _RAD, lat2 * _RAD
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin((lon2 - lon1) * _RAD / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a) if a < 1.0 else 1.0)


def advance(state: MotionState, t: int, lat: float, lon: float, speed: float | None, rules: Rules,
            out: list, track_break: bool = False) -> bool:
    """Take one fix (``t`` in µs since the epoch, ``speed`` in m/s or None; ``track_break``:
    it starts a new segment of a recording) into ``state``, appending to ``out`` what it
    finished (``Trip``, ``Stop``, ``Spike``). Returns False, and changes nothing, when the
    fix is not newer than every fix taken before (a late fix: see ``late``)."""
    if state.last_us is None:
        _restart(state, t, lat, lon)
        return True
    suspect = state.suspect
    if suspect is not None:
        if t <= suspect[0]:
            return False
        st, slat, slon, sspeed = suspect
        state.suspect = None
        if _implied_speed(st, slat, slon, t, lat, lon) > rules.max_speed:
            out.append(Spike(st, slat, slon))
        else:
            _accept(state, st, slat, slon, sspeed, rules, out)
    elif t <= state.last_us:
        return False
    if track_break:
        _accept(state, t, lat, lon, speed, rules, out, gap=True)
        return True
    d = distance_m(state.last_lat, state.last_lon, lat, lon)  # measured once: the speed it implies, the odometer
    seconds = (t - state.last_us) / MICROS
    if d / (seconds if seconds > 1.0 else 1.0) > rules.max_speed:
        state.suspect = (t, lat, lon, speed)
    else:
        _accept(state, t, lat, lon, speed, rules, out, d=d)
    return True


def run(fixes, rules: Rules, state: MotionState | None = None) -> tuple[MotionState, list]:
    """The model over ``(t, lat, lon, speed[, track_break])`` fixes in order; the final
    state and what was finished."""
    state = MotionState() if state is None else state
    out: list = []
    for t, lat, lon, speed, *track_break in fixes:
        advance(state, t, lat, lon, speed, rules, out, bool(track_break and track_break[0]))
    return state, out


def late(state: MotionState, t: int) -> bool:
    """For a fix ``advance`` refused: True when it is older than the open period and the
    marker has finished trips or stops (those it falls among must be recomputed from
    history now); False when it falls inside the open period, or before it while nothing
    was finished yet: the open period, the marker's first, is then recomputed from the
    beginning once finished (the state remembers the fix: ``late_us``)."""
    since = state.open_since_us
    if since is None or (t < since and state.settled):
        return True
    if state.late_us is None or t < state.late_us:
        state.late_us = t
    return False


def end_idle_trip(state: MotionState, rules: Rules, out: list) -> bool:
    """End the open trip as a gap would, without waiting for the fix after it (the marker
    has been silent for ``gap_seconds``); True if there was one. A fix held back as a
    possible spike stays held."""
    if not state.trip_open:
        return False
    if not state.still:
        state.still = True
        state.pending_distance = state.pending_max = 0.0
    _finish_trip(state, rules, out)
    return True


def _implied_speed(t1: int, lat1: float, lon1: float, t2: int, lat2: float, lon2: float) -> float:
    seconds = (t2 - t1) / MICROS
    return distance_m(lat1, lon1, lat2, lon2) / (seconds if seconds > 1.0 else 1.0)


def _restart(state: MotionState, t: int, lat: float, lon: float) -> None:
    """A marker's first fix, or the first after a gap it moved across: a still period begins."""
    state.last_us, state.last_lat, state.last_lon = t, lat, lon
    state.anchor_us, state.anchor_lat, state.anchor_lon = t, lat, lon
    state.still, state.stopped, state.trip_open = True, False, False
    state.pending_distance = state.pending_max = 0.0


def _accept(state: MotionState, t: int, lat: float, lon: float, speed: float | None, rules: Rules,
            out: list, gap: bool = False, d: float | None = None) -> None:
    """``d``: the distance from the last accepted fix, when the caller measured it."""
    last_us, last_lat, last_lon = state.last_us, state.last_lat, state.last_lon
    if d is None:
        d = distance_m(last_lat, last_lon, lat, lon)
    state.odometer += d
    seconds = (t - last_us) / MICROS
    if gap or seconds > rules.gap_seconds:
        _gap(state, t, lat, lon, speed, rules, out)
        return
    if speed is None and seconds >= 1.0:
        speed = d / seconds
    if (speed is not None and speed > rules.motion_speed) or (
            distance_m(state.anchor_lat, state.anchor_lon, lat, lon) > rules.motion_distance):
        if state.still:  # the still period ends at the previous fix
            if state.stopped:
                _finish_stop(state, last_us, out)
            if state.trip_open:
                state.trip_distance += state.pending_distance
                if state.pending_max > state.trip_max:
                    state.trip_max = state.pending_max
            else:
                state.trip_open = True
                state.trip_us, state.trip_lat, state.trip_lon = last_us, last_lat, last_lon
                state.trip_distance = state.trip_max = 0.0
            state.still = state.stopped = False
        state.trip_distance += d
        if speed is not None and speed > state.trip_max:
            state.trip_max = speed
        state.anchor_us, state.anchor_lat, state.anchor_lon = t, lat, lon
    else:
        if not state.still:  # came to rest at the anchor (the previous fix)
            state.still = True
            state.pending_distance = state.pending_max = 0.0
        state.pending_distance += d
        if speed is not None and speed > state.pending_max:
            state.pending_max = speed
        if not state.stopped and (t - state.anchor_us) / MICROS >= rules.stop_min_seconds:
            state.stopped = True
            if state.trip_open:
                _finish_trip(state, rules, out)
    state.last_us, state.last_lat, state.last_lon = t, lat, lon


def _gap(state: MotionState, t: int, lat: float, lon: float, speed: float | None, rules: Rules,
         out: list) -> None:
    """No fix for longer than ``gap_seconds`` before this one."""
    if not state.still:  # it comes to rest at the last fix before the gap
        state.still = True
        state.pending_distance = state.pending_max = 0.0
    if state.trip_open:
        _finish_trip(state, rules, out)
    still = not (speed is not None and speed > rules.motion_speed) and (
        distance_m(state.anchor_lat, state.anchor_lon, lat, lon) <= rules.motion_distance)
    if still:  # at rest through the gap
        state.stopped = state.stopped or (t - state.anchor_us) / MICROS >= rules.stop_min_seconds
        state.last_us, state.last_lat, state.last_lon = t, lat, lon
        return
    if (state.last_us - state.anchor_us) / MICROS >= rules.stop_min_seconds:
        state.stopped = True
        _finish_stop(state, state.last_us, out)
    _restart(state, t, lat, lon)


def _finish_trip(state: MotionState, rules: Rules, out: list) -> None:
    """The open trip ends at the anchor."""
    state.trip_open = False
    trip = Trip(state.trip_us, state.trip_lat, state.trip_lon, state.anchor_us, state.anchor_lat,
                state.anchor_lon, state.trip_distance, state.trip_max)
    if trip.distance_m >= rules.trip_min_meters and trip.duration_s >= rules.trip_min_seconds:
        out.append(trip)
        state.settled = True


def _finish_stop(state: MotionState, end_us: int, out: list) -> None:
    out.append(Stop(state.anchor_us, end_us, state.anchor_lat, state.anchor_lon))
    state.settled = True
