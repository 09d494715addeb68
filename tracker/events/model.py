"""What happened to a marker, from its fixes in fix-time order: the events model.

``MarkerState`` is one marker's state (stored in a table by ``tracker.events.stored``); ``Detector.apply``
takes the state and one fix and returns the new state and the events the fix caused.
Pure functions of their input: a replay of the same fixes gives the same events, with the
same ids.

- ``geofence_enter`` / ``geofence_exit``: the set of geofences holding the fix changed.
  The first fix of a marker inside a geofence enters it.
- ``overspeed``: speed above the limit (the lowest ``speed_limit`` of the geofences holding
  the fix, else the global limit); raised when speeding starts, and again only after the
  speed stayed at or below the limit for ``overspeed_reset_s`` of fix time.
- ``low_battery``: the battery level crossed below the threshold.
- ``online``: the first fix or heartbeat after an ``offline`` (which ``Detector.offline``
  raises on wall-clock time, outside this function).
- ``alarm``: a report (fix or heartbeat) carries the attribute ``alarm`` (Traccar Client's
  ``sos``, a tracker's ``powerCut``...): one event per alarm it names, whatever the report's
  time, since an alarm describes what happened then, not the marker's present. Its id is made
  from the report's time and the alarm, so the same alarm reported again is the same event.

Heartbeats (``Detector.apply_heard``: reports without a position) keep a marker online and
bring it back, and carry its battery and its alarms; they never move it, so they touch
neither the geofences nor the speed, and a fix is late or not by the fixes alone.

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
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from tracker.events.fixlog import E7, FixLog
from tracker.geofences.model import GeofenceIndex
from tracker.positions.model import format_micros

#: Every event type, in the order the docs list them.
TYPES = ("geofence_enter", "geofence_exit", "overspeed", "low_battery", "offline", "online", "alarm")

#: Fixes remembered per marker, to place late fixes between their neighbours.
LOG_SIZE = 16


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
    log: FixLog = field(default_factory=FixLog)  # the last ``LOG_SIZE`` fixes
    seen_us: int | None = None  # wall-clock time the tracker last received a report of the marker
    heard_us: int | None = None  # newest heartbeat applied (its report time)

    @property
    def reported_us(self) -> int | None:
        """The time of the newest report applied, fix or heartbeat."""
        if self.heard_us is None or (self.time_us is not None and self.time_us > self.heard_us):
            return self.time_us
        return self.heard_us

    def to_json(self) -> dict:
        """The JSON form (``tables.events_state`` stores a packed form; workers of earlier
        versions read only this one)."""
        data = {"t": self.time_us, "in": self.inside, "sp": self.speeding, "calm": self.calm_since_us,
                "bat": self.battery, "off": self.offline, "log": self.log.rows(), "seen": self.seen_us}
        if self.heard_us is not None:  # absent until the first heartbeat: states stay as they were
            data["hb"] = self.heard_us
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> "MarkerState":
        if not data:
            return cls()
        return cls(data["t"], data["in"], data["sp"], data["calm"], data["bat"], data["off"],
                   FixLog.of_rows(data["log"]), data.get("seen"), data.get("hb"))


@dataclass(frozen=True)
class Limits:
    speed_limit: float | None = None  # m/s; None: only geofences' own limits
    overspeed_reset_s: float = 60.0
    low_battery: float = 20.0


#: Indexes in a fix list (``tracker.positions.model.FIX_FIELDS`` plus ``received_us``).
_MARKER, _TIME, _LAT, _LON, _SPEED, _BATTERY, _ATTRIBUTES, _RECEIVED = 0, 1, 2, 3, 4, 8, 10, 11
#: Indexes in a heartbeat list (``tracker.positions.model.HEARD_FIELDS`` plus ``received_us``).
_HEARD_BATTERY, _HEARD_ATTRIBUTES, _HEARD_RECEIVED = 2, 4, 5
#: The most alarms one report raises.
MAX_ALARMS = 8


def alarms_of(attributes: dict | None) -> list[str]:
    """The alarms a report's attributes name: ``alarm`` as text, several separated by commas
    (as a Traccar server joins them)."""
    value = attributes.get("alarm") if attributes else None
    if not isinstance(value, str):
        return []
    names = []
    for name in value.split(","):
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return names[:MAX_ALARMS]


class Detector:
    """``judge_geofences=False``: the geofences are not known yet (a worker that started while
    Postgres was away, with no snapshot of them); each marker keeps the geofences it was
    in, and no crossing is raised, rather than an exit from every one of them."""

    def __init__(self, geofences: GeofenceIndex, limits: Limits, judge_geofences: bool = True) -> None:
        self.geofences = geofences
        self.limits = limits
        self.judge_geofences = judge_geofences
        self.names = {g.geofence_id: g.name for g in geofences.geofences}
        self._reset_us = limits.overspeed_reset_s * 1_000_000

    def apply(self, state: MarkerState, fix: dict) -> list[dict]:
        """Apply one fix (``marker_id``, ``time_us``, ``lat``, ``lon``, optional ``speed``,
        ``battery``, ``received_us``) to ``state`` in place; the events it causes, oldest first."""
        holding = self.geofences.containing(fix["marker_id"], fix["lat"], fix["lon"])
        return self._apply(state, fix["marker_id"], fix["time_us"], fix["lat"], fix["lon"], fix.get("speed"),
                           fix.get("battery"), fix.get("received_us"), holding, fix.get("attributes")) or []

    def apply_fixes(self, fixes: list[list], load: Callable[[str], MarkerState]) -> tuple[list[dict], dict]:
        """Apply fixes (lists, as the batches topic carries them) in the order given, each
        marker's state loaded once with ``load``; the events, and every state touched."""
        holdings = (self.geofences.containing_many([f[_MARKER] for f in fixes], [f[_LAT] for f in fixes],
                                                   [f[_LON] for f in fixes])
                    if len(self.geofences) else None)
        states: dict[str, MarkerState] = {}
        events: list[dict] = []
        for i, fix in enumerate(fixes):
            marker_id = fix[_MARKER]
            state = states.get(marker_id)
            if state is None:
                state = states[marker_id] = load(marker_id)
            found = self._apply(state, marker_id, fix[_TIME], fix[_LAT], fix[_LON], fix[_SPEED], fix[_BATTERY],
                                fix[_RECEIVED] if len(fix) > _RECEIVED else None,
                                holdings[i] if holdings is not None else (), fix[_ATTRIBUTES])
            if found:
                events += found
        return events, states

    def apply_heard(self, heard: list[list], load: Callable[[str], MarkerState]) -> tuple[list[dict], dict]:
        """Apply heartbeats (lists, as the batches topic carries them) in the order given;
        the events, and every state touched."""
        states: dict[str, MarkerState] = {}
        events: list[dict] = []
        for report in heard:
            marker_id = report[_MARKER]
            state = states.get(marker_id)
            if state is None:
                state = states[marker_id] = load(marker_id)
            found = self._heard(state, marker_id, report[_TIME], report[_HEARD_BATTERY], report[_HEARD_ATTRIBUTES],
                                report[_HEARD_RECEIVED] if len(report) > _HEARD_RECEIVED else None)
            if found:
                events += found
        return events, states

    def offline(self, marker_id: str, state: MarkerState) -> dict | None:
        """The ``offline`` event of a marker whose last fix is too old (the caller decides,
        on wall-clock time), at the time and place of its newest fix; None if it is
        offline already."""
        if state.offline or state.time_us is None:
            return None
        state.offline = True
        # At its newest report: a heartbeat after the fix brought it back online, and the
        # next offline must not share the first one's time, and so its id.
        return self._event(marker_id, state.reported_us, *self._last_place(state), "offline")

    @staticmethod
    def _last_place(state: MarkerState) -> tuple[float | None, float | None]:
        """Where the marker's newest fix is, from its log (None, None without one)."""
        log = state.log
        if not log:
            return None, None
        newest = max(range(len(log)), key=log.times.__getitem__)
        return log.lats[newest] / E7, log.lons[newest] / E7

    # --- the rules --------------------------------------------------------------------

    def _apply(self, state: MarkerState, marker_id: str, t: int, lat: float, lon: float, speed, battery,
               received_us, holding, attributes=None) -> list[dict] | None:
        """The events of one fix (None for none: the common case costs no list)."""
        if received_us is not None and (state.seen_us is None or received_us > state.seen_us):
            state.seen_us = received_us
        alarms = self._alarms(marker_id, t, lat, lon, attributes) if attributes and "alarm" in attributes else None
        if not self.judge_geofences:
            ids = state.inside
        else:
            ids = [g.geofence_id for g in holding] if holding else []
        newest = state.time_us
        if newest is not None and t <= newest:
            if t == newest:
                return alarms  # a duplicate
            late = self._late(state, marker_id, t, lat, lon, ids)
            return alarms + late if alarms else late
        events = self._geofence_changes(state, marker_id, t, lat, lon, ids) if ids or state.inside else alarms
        if alarms and events is not alarms:
            events = alarms + events
        if speed is not None and (holding or self.limits.speed_limit is not None):
            found = self._speed(state, marker_id, t, lat, lon, speed, holding)
            if found:
                events = events + found if events else found
        if battery is not None and (state.heard_us is None or t > state.heard_us):
            found = self._battery(state, marker_id, t, lat, lon, battery)
            if found:
                events = events + found if events else found
        if state.offline:
            state.offline = False
            events = (events or []) + [self._event(marker_id, t, lat, lon, "online")]
        state.time_us = t
        state.inside = ids
        state.log.append(t, ids, round(lat * E7), round(lon * E7), LOG_SIZE)
        return events

    def _heard(self, state: MarkerState, marker_id: str, t: int, battery, attributes, received_us) -> list[dict]:
        """The events of one heartbeat: its alarms; and, when it is the newest report, its
        battery and ``online``. An older one only keeps the marker from going offline."""
        if received_us is not None and (state.seen_us is None or received_us > state.seen_us):
            state.seen_us = received_us
        lat, lon = self._last_place(state)
        events = self._alarms(marker_id, t, lat, lon, attributes) if attributes else []
        newest = state.reported_us
        if newest is not None and t <= newest:
            return events
        state.heard_us = t
        if battery is not None:
            events += self._battery(state, marker_id, t, lat, lon, battery)
        if state.offline:
            state.offline = False
            events.append(self._event(marker_id, t, lat, lon, "online"))
        return events

    def _alarms(self, marker_id: str, t: int, lat, lon, attributes: dict) -> list[dict]:
        return [self._event(marker_id, t, lat, lon, "alarm", detail=name, alarm=name) for name in alarms_of(attributes)]

    def _geofence_changes(self, state: MarkerState, marker_id: str, t: int, lat: float, lon: float,
                          ids: list[int]) -> list[dict]:
        # A geofence deleted since the marker entered it is left silently.
        events = [self._geofence(marker_id, t, lat, lon, "geofence_exit", gid)
                  for gid in state.inside if gid not in ids and gid in self.names]
        events += [self._geofence(marker_id, t, lat, lon, "geofence_enter", gid)
                   for gid in ids if gid not in state.inside]
        return events

    def _late(self, state: MarkerState, marker_id: str, t: int, lat: float, lon: float,
              ids: list[int]) -> list[dict]:
        """A fix older than the newest: the pair it proves missing, if any."""
        log = state.log
        times = log.times
        at = bisect.bisect_left(times, t)
        if at < len(times) and times[at] == t:
            return []  # a duplicate
        if at == 0 or at == len(times) or not self.judge_geofences:
            return []  # older than the log, or no later fix to close the pair with
        before, after = log.geofences(at - 1), log.geofences(at)
        after_t, after_lat, after_lon = times[at], log.lats[at] / E7, log.lons[at] / E7
        events = []
        for gid in ids:
            if gid not in before and gid not in after:  # it went in and out between them
                events += [self._geofence(marker_id, t, lat, lon, "geofence_enter", gid, late=True),
                           self._geofence(marker_id, after_t, after_lat, after_lon, "geofence_exit", gid, late=True)]
        for gid in before:
            if gid in after and gid not in ids and gid in self.names:  # it went out and back between them
                events += [self._geofence(marker_id, t, lat, lon, "geofence_exit", gid, late=True),
                           self._geofence(marker_id, after_t, after_lat, after_lon, "geofence_enter", gid, late=True)]
        log.insert(at, t, ids, round(lat * E7), round(lon * E7), LOG_SIZE)
        return events

    def _speed(self, state: MarkerState, marker_id: str, t: int, lat: float, lon: float, speed: float,
               holding) -> list[dict]:
        limit = self.limits.speed_limit
        for geofence in holding:
            if geofence.speed_limit is not None and (limit is None or geofence.speed_limit < limit):
                limit = geofence.speed_limit
        if limit is None:
            return []
        if speed > limit:
            state.calm_since_us = None
            if state.speeding:
                return []
            state.speeding = True
            return [self._event(marker_id, t, lat, lon, "overspeed", detail=limit, speed=speed, limit=limit)]
        if state.speeding:
            if state.calm_since_us is None:
                state.calm_since_us = t
            elif t - state.calm_since_us >= self._reset_us:
                state.speeding, state.calm_since_us = False, None
        return []

    def _battery(self, state: MarkerState, marker_id: str, t: int, lat: float, lon: float,
                 battery: float) -> list[dict]:
        threshold = self.limits.low_battery
        crossed = battery < threshold and (state.battery is None or state.battery >= threshold)
        state.battery = battery
        return [self._event(marker_id, t, lat, lon, "low_battery", battery=battery)] if crossed else []

    # --- events -----------------------------------------------------------------------

    def _geofence(self, marker_id: str, t: int, lat: float, lon: float, kind: str, gid: int,
                  late: bool = False) -> dict:
        extra = {"late": True} if late else {}
        return self._event(marker_id, t, lat, lon, kind, detail=gid, geofence_id=gid,
                           geofence_name=self.names.get(gid), **extra)

    @staticmethod
    def _event(marker_id: str, t: int, lat, lon, kind: str, detail: Any = "", **fields) -> dict:
        return {"id": event_id(marker_id, kind, t, detail), "marker_id": marker_id, "type": kind, "time_us": t,
                "position": {"lat": lat, "lon": lon}, **fields}


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
    """A ``gps.events`` value as its record (a dict with ``id``, ``marker_id``, ``type``,
    ``time``, ...); ``ValueError`` if it is not one."""
    record = orjson.loads(value)
    if not isinstance(record, dict) or not all(isinstance(record.get(key), str) for key in _REQUIRED):
        raise ValueError(f"an event needs the text fields {', '.join(_REQUIRED)}")
    datetime.fromisoformat(record["time"])  # ValueError if it is not a time
    return record


_REQUIRED = ("id", "marker_id", "type", "time")
