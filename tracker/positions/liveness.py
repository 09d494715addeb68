"""A marker's liveness in its ``latest`` value (``tables.latest``): when the tracker last heard
from it, and its newest heartbeat.

A ``latest`` value is a fix plus ``received_us``, the odometer and motion (indexes 12, 13),
then, once the marker sent a heartbeat or a late fix, ``[heard_us, beat_us, beat_battery]``
(index 14): the newest receipt of any report of it, and the time and battery level of its
newest heartbeat when that is newer than the fix (else null). Both only move forward, so a
replayed batch changes nothing. Pure functions of the value, for the table's writer, the
API and the live feed.
"""
from __future__ import annotations

TIME = 1  # index of time_us in a fix
BATTERY = 8  # index of battery
RECEIVED = 11  # index of received_us
LIVENESS = 14  # index of [heard_us, beat_us, beat_battery]


def heard_of(value: list) -> int:
    """When the tracker last received a report of the marker (µs): a fix or a heartbeat."""
    if len(value) > LIVENESS and value[LIVENESS]:
        return max(value[RECEIVED], value[LIVENESS][0])
    return value[RECEIVED]


def battery_of(value: list) -> float | None:
    """The marker's newest battery level: its newest heartbeat's, when that is newer than
    the fix and carried one; else the fix's."""
    if len(value) > LIVENESS and value[LIVENESS] and value[LIVENESS][2] is not None:
        return value[LIVENESS][2]
    return value[BATTERY]


def with_liveness(value: list, heard_us: int, beat: tuple[int, float | None] | None = None) -> list | None:
    """``value`` (a stored fix) heard at ``heard_us`` and, with ``beat``, by a heartbeat at
    (time, battery); None when that changes nothing (not newer)."""
    liveness = value[LIVENESS] if len(value) > LIVENESS and value[LIVENESS] else [value[RECEIVED], None, None]
    heard, beat_us, beat_battery = liveness
    changed = False
    if heard_us > heard:
        heard, changed = heard_us, True
    if beat is not None and beat[0] > value[TIME] and (beat_us is None or beat[0] > beat_us):
        beat_us, beat_battery = beat[0], beat[1] if beat[1] is not None else beat_battery
        changed = True
    if not changed:
        return None
    padded = value[:LIVENESS] + [None] * (LIVENESS - len(value))
    return [*padded, [heard, beat_us, beat_battery]]
