"""What happened to a marker, from its fixes in fix-time order: the events model.

``MarkerState`` is one marker's state (JSON-serialisable, for a table); ``Detector.apply``
takes the state and one fix and returns the new state and the events the fix caused.
Pure functions of their input: a replay of the same fixes gives the same events, with the
same ids.

- ``geofence_enter`` / ``geofence_exit``: the set of geofences holding the fix changed.
  The first fix of a marker inside a geofence enters it.
- ``overspeed``: speed above the limit (the lowest ``speed_limit`` of the geofences holding
  the fix, else the global limit); raised when speeding starts, and again only after the
  speed stayed at or below the limit for ``overspeed_reset_s`` of fix time.
- ``low_battery``: the battery level crossed below the threshold.
- ``online``: the first fix after an ``offline`` (which ``Detector.offline`` raises on
  wall-clock time, outside this function).

Time follows the fixes, not their arrival:

- a fix at the same time as one already applied is a duplicate and changes nothing;
- a fix older than the newest applied one (a late fix) never flips the current state. If
  its neighbours in time (the fixes just before and after it, kept for the last
  ``LOG_SIZE`` fixes) agree that the marker was outside a geofence the late fix is in (or
  inside one it is out of), the marker did enter and leave (or leave and come back)
  between them: the missing pair is emitted with ``"late": true``. A late fix older than
  that log changes nothing. Late fixes do not raise speed or battery events: those
  describe the marker's present;
- an event once raised is never moved or withdrawn: a late fix that shows a crossing
  happened earlier than the fix that raised it (out at 20 arriving after out at 30) leaves
  the crossing at the time of the first fix seen beyond it.
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracker.geofences import GeofenceIndex
from tracker.position import format_micros

#: Every event type, in the order the docs list them.
TYPES = ("geofence_enter", "geofence_exit", "overspeed", "low_battery", "offline", "online")

#: Fixes remembered per marker, to place late fixes between their neighbours.
LOG_SIZE = 32


def event_id(marker_id: str, kind: str, time_us: int, detail: Any = "") -> str:
    """The same event always gets the same id (a replay, a second worker)."""
    return hashlib.sha256(f"{marker_id}\0{kind}\0{time_us}\0{detail}".encode()).hexdigest()[:32]


@dataclass
class MarkerState:
    time_us: int | None = None  # newest applied fix
    inside: list[int] = field(default_factory=list)  # geofence ids holding the newest fix
    speeding: bool = False
    calm_since_us: int | None = None  # speed at or below the limit since (while speeding)
    battery: float | None = None
    offline: bool = False
    log: list[list] = field(default_factory=list)  # [time_us, [geofence ids], lat, lon], oldest first

    def to_json(self) -> dict:
        return {"t": self.time_us, "in": self.inside, "sp": self.speeding, "calm": self.calm_since_us,
                "bat": self.battery, "off": self.offline, "log": self.log}

    @classmethod
    def from_json(cls, data: dict | None) -> "MarkerState":
        if not data:
            return cls()
        return cls(data["t"], data["in"], data["sp"], data["calm"], data["bat"], data["off"], data["log"])


@dataclass(frozen=True)
class Limits:
    speed_limit: float | None = None  # m/s; None: only geofences' own limits
    overspeed_reset_s: float = 60.0
    low_battery: float = 20.0


class Detector:
    def __init__(self, geofences: GeofenceIndex, limits: Limits) -> None:
        self.geofences = geofences
        self.limits = limits
        self.names = {g.geofence_id: g.name for g in geofences.geofences}

    def apply(self, state: MarkerState, fix: dict) -> list[dict]:
        """Apply one fix (``marker_id``, ``time_us``, ``lat``, ``lon``, ``speed``, ``battery``)
        to ``state`` in place; the events it causes, oldest first."""
        t = fix["time_us"]
        times = [entry[0] for entry in state.log]
        if t in times or t == state.time_us:
            return []  # a duplicate
        holding = self.geofences.containing(fix["marker_id"], fix["lat"], fix["lon"])
        ids = [g.geofence_id for g in holding]
        if state.time_us is not None and t < state.time_us:
            return self._late(state, fix, ids, bisect.bisect(times, t))
        events = self._geofence_changes(state, fix, ids)
        events += self._speed(state, fix, holding)
        events += self._battery(state, fix)
        if state.offline:
            state.offline = False
            events.append(self._event(fix, "online"))
        state.time_us = t
        state.inside = ids
        state.log.append([t, ids, fix["lat"], fix["lon"]])
        del state.log[:-LOG_SIZE]
        return events

    def offline(self, marker_id: str, state: MarkerState, position: dict) -> dict | None:
        """The ``offline`` event of a marker whose last fix is too old (the caller decides,
        on wall-clock time); None if it is offline already."""
        if state.offline or state.time_us is None:
            return None
        state.offline = True
        return self._event({**position, "marker_id": marker_id, "time_us": state.time_us}, "offline")

    # --- the rules --------------------------------------------------------------------

    def _geofence_changes(self, state: MarkerState, fix: dict, ids: list[int]) -> list[dict]:
        events = [self._geofence(fix, "geofence_exit", gid) for gid in state.inside if gid not in ids]
        events += [self._geofence(fix, "geofence_enter", gid) for gid in ids if gid not in state.inside]
        return events

    def _late(self, state: MarkerState, fix: dict, ids: list[int], at: int) -> list[dict]:
        """A fix older than the newest: the pair it proves missing, if any."""
        log = state.log
        if at == 0 or at == len(log):
            return []  # older than the log, or no later fix to close the pair with
        before, (after_t, after, after_lat, after_lon) = log[at - 1][1], log[at]
        closing = {**fix, "time_us": after_t, "lat": after_lat, "lon": after_lon}  # the fix after it
        events = []
        for gid in ids:
            if gid not in before and gid not in after:  # it went in and out between them
                events += [self._geofence(fix, "geofence_enter", gid, late=True),
                           self._geofence(closing, "geofence_exit", gid, late=True)]
        for gid in before:
            if gid in after and gid not in ids:  # it went out and back between them
                events += [self._geofence(fix, "geofence_exit", gid, late=True),
                           self._geofence(closing, "geofence_enter", gid, late=True)]
        log.insert(at, [fix["time_us"], ids, fix["lat"], fix["lon"]])
        del log[:-LOG_SIZE]
        return events

    def _speed(self, state: MarkerState, fix: dict, holding) -> list[dict]:
        speed = fix.get("speed")
        limits = [g.speed_limit for g in holding if g.speed_limit is not None]
        limit = min(limits) if limits else self.limits.speed_limit
        if speed is None or limit is None:
            return []
        t = fix["time_us"]
        if speed > limit:
            state.calm_since_us = None
            if state.speeding:
                return []
            state.speeding = True
            return [self._event(fix, "overspeed", detail=limit, speed=speed, limit=limit)]
        if state.speeding:
            if state.calm_since_us is None:
                state.calm_since_us = t
            elif t - state.calm_since_us >= self.limits.overspeed_reset_s * 1_000_000:
                state.speeding, state.calm_since_us = False, None
        return []

    def _battery(self, state: MarkerState, fix: dict) -> list[dict]:
        battery = fix.get("battery")
        if battery is None:
            return []
        threshold = self.limits.low_battery
        crossed = battery < threshold and (state.battery is None or state.battery >= threshold)
        state.battery = battery
        return [self._event(fix, "low_battery", battery=battery)] if crossed else []

    # --- events -----------------------------------------------------------------------

    def _geofence(self, fix: dict, kind: str, gid: int, late: bool = False) -> dict:
        extra = {"late": True} if late else {}
        return self._event(fix, kind, detail=gid, geofence_id=gid, geofence_name=self.names.get(gid), **extra)

    @staticmethod
    def _event(fix: dict, kind: str, detail: Any = "", **fields) -> dict:
        return {"id": event_id(fix["marker_id"], kind, fix["time_us"], detail), "marker_id": fix["marker_id"],
                "type": kind, "time_us": fix["time_us"],
                "position": {"lat": fix.get("lat"), "lon": fix.get("lon")}, **fields}


# --- on the wire ----------------------------------------------------------------------

def record_of(event: dict) -> dict:
    """An event as ``gps.events``, Postgres and webhooks carry it: ``time`` in ISO 8601 UTC
    in place of ``time_us``; every other field as the detector made it."""
    record = {key: value for key, value in event.items() if key != "time_us"}
    record["time"] = format_micros(event["time_us"])
    return record


def encode(event: dict) -> bytes:
    """The ``gps.events`` value of an event from ``Detector``."""
    return orjson.dumps(record_of(event))


def decode(value: bytes) -> dict:
    """A ``gps.events`` value as its record (a dict with ``id``, ``marker_id``, ``type``, ``time``, ...)."""
    return orjson.loads(value)
