"""Speed and heading derived from two consecutive points of a recorded track (``tracker
replay``, ``tracker import``), only where the validator would take them.

A speed is derived only over a time step of at least ``MIN_STEP_SECONDS``: points that share
one timestamp (a broken device clock), or whose times were filled a millisecond apart, would
give thousands of m/s, and a fix with such a speed is refused as a whole (it would land in
the dead-letter topic). A speed outside the validator's range is left out too.
"""
from __future__ import annotations

from tracker.positions.geo import bearing_degrees, distance_m
from tracker.positions.model import OPTIONAL_RANGES

MIN_STEP_SECONDS = 1.0
_SPEED_LOW, _SPEED_HIGH = OPTIONAL_RANGES["speed"]


def derived_speed(lat1: float, lon1: float, lat2: float, lon2: float, seconds: float) -> float | None:
    """m/s from one point to the next, ``seconds`` later (rounded to 0.01); ``None`` when
    the step is shorter than a second, or the speed one the validator would reject."""
    if not seconds >= MIN_STEP_SECONDS:  # also NaN
        return None
    speed = round(distance_m(lat1, lon1, lat2, lon2) / seconds, 2)
    return speed if _SPEED_LOW <= speed <= _SPEED_HIGH else None


def derived_heading(lat1: float, lon1: float, lat2: float, lon2: float) -> float | None:
    """Degrees from north from one point to the next (rounded to 0.1); ``None`` when they
    are the same place."""
    if lat1 == lat2 and lon1 == lon2:
        return None
    return round(bearing_degrees(lat1, lon1, lat2, lon2), 1)
