"""How a marker's events state (``tracker.events.model.MarkerState``) is stored: the values of
the table ``events-state`` (``tables/events_state.py``).

Two stored forms, both always read:

- **packed** (written by default), little-endian: one byte ``1``; one byte of flags
  (``_SPEEDING``, ``_OFFLINE``, then which of the optional fields are set); the newest
  fix's time, ``calm_since_us``, ``seen_us``, ``heard_us`` (int64, 0 when unset); the
  battery (float64); the number of geofences holding the newest fix and the number of
  fixes in the log (uint16 each). Then the arrays: the geofences holding the newest fix
  (int64), and the log column by column: times (int64), latitudes and longitudes (int32,
  1e-7 degree), how many geofences held each fix (uint16), their ids (int64).
- **json**, compact JSON of ``MarkerState.to_json`` (it starts with ``{``): what workers of
  earlier versions wrote and read, written when ``TRACKER_STATE_FORMAT=json``.
"""
from __future__ import annotations

import struct
import sys
from array import array

import orjson

from tracker.events.fixlog import FixLog
from tracker.events.model import MarkerState
from tracker.settings import settings

PACKED = 1  # the first byte of a packed state
_HEAD = struct.Struct("<BBqqqqdHH")
_SPEEDING, _OFFLINE, _TIME, _CALM, _SEEN, _HEARD, _BATTERY = (1 << bit for bit in range(7))
_LITTLE = sys.byteorder == "little"
assert (array("q").itemsize, array("i").itemsize, array("H").itemsize) == (8, 4, 2)


def encode(state: MarkerState) -> bytes:
    if settings.state_format == "json":
        return orjson.dumps(state.to_json())
    return pack(state)


def decode(value: bytes | None) -> MarkerState:
    """A stored value as a state (a new marker's for None); ``ValueError`` for a value in
    neither form."""
    if value is None:
        return MarkerState()
    if value[:1] == b"{":
        return MarkerState.from_json(orjson.loads(value))
    return unpack(value)


def pack(state: MarkerState) -> bytes:
    t, calm, seen, heard, battery = state.time_us, state.calm_since_us, state.seen_us, state.heard_us, state.battery
    flags = ((state.speeding and _SPEEDING) | (state.offline and _OFFLINE) | (t is not None and _TIME)
             | (calm is not None and _CALM) | (seen is not None and _SEEN) | (heard is not None and _HEARD)
             | (battery is not None and _BATTERY))
    log, inside = state.log, state.inside
    head = _HEAD.pack(PACKED, flags, t or 0, calm or 0, seen or 0, heard or 0, battery or 0.0, len(inside),
                      len(log.times))
    if _LITTLE:  # the arrays join as they are in memory, without a copy each
        return b"".join((head, array("q", inside), log.times, log.lats, log.lons, log.counts, log.ids))
    parts = (array("q", inside), log.times, log.lats, log.lons, log.counts, log.ids)
    return b"".join((head, *(_swapped(part) for part in parts)))


def unpack(value: bytes) -> MarkerState:
    if value[:1] != bytes((PACKED,)) or len(value) < _HEAD.size:
        raise ValueError(f"not an events state: {bytes(value[:16])!r}")
    _, flags, t, calm, seen, heard, battery, n_inside, n_log = _HEAD.unpack_from(value)
    view, at = memoryview(value), _HEAD.size
    arrays = []
    for code, count in (("q", n_inside), ("q", n_log), ("i", n_log), ("i", n_log), ("H", n_log)):
        at = _read(arrays, view, at, code, count)
    counts = arrays[-1]
    at = _read(arrays, view, at, "q", sum(counts))
    if at != len(value):
        raise ValueError(f"an events state of {len(value)} bytes, {at} expected")
    inside, times, lats, lons, counts, ids = arrays
    return MarkerState(
        time_us=t if flags & _TIME else None, inside=inside.tolist(), speeding=bool(flags & _SPEEDING),
        calm_since_us=calm if flags & _CALM else None, battery=battery if flags & _BATTERY else None,
        offline=bool(flags & _OFFLINE), log=FixLog(times, lats, lons, counts, ids),
        seen_us=seen if flags & _SEEN else None, heard_us=heard if flags & _HEARD else None)


def _read(arrays: list, view: memoryview, at: int, code: str, count: int) -> int:
    part = array(code)
    end = at + part.itemsize * count
    if end > len(view):
        raise ValueError(f"an events state cut short at {len(view)} bytes")
    part.frombytes(view[at:end])
    if not _LITTLE:
        part.byteswap()
    arrays.append(part)
    return end


def _swapped(part: array) -> bytes:
    copy = array(part.typecode, part)
    copy.byteswap()
    return copy.tobytes()
