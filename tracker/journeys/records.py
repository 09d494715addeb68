"""The records of ``gps.journeys``: what the motion model finished, and days to recompute.

Each is compact JSON keyed by marker id, times in microseconds since the epoch:

- ``{"kind": "trip", "marker_id", "start_us", "start_lat", "start_lon", "end_us", "end_lat",
  "end_lon", "distance_m", "max_speed"}``
- ``{"kind": "stop", "marker_id", "start_us", "end_us", "lat", "lon"}``
- ``{"kind": "spike", "marker_id", "time_us"}``: a fix the model left out (history flags it)
- ``{"kind": "dirty", "marker_id", "day", "wait_for_us"}``: a late fix made that UTC day's
  trips and stops stale; recompute them from history once it holds the fix at ``wait_for_us``

The journeys sink (``agents/journeys_sink.py``) writes them to Postgres; ``RULES`` are the
motion model's thresholds from the settings.
"""
from __future__ import annotations

from datetime import datetime, timezone

import orjson

from tracker.journeys.motion import Rules, Spike, Stop, Trip
from tracker.settings import settings

RULES = Rules(
    motion_speed=settings.motion_speed,
    motion_distance=settings.motion_distance,
    stop_min_seconds=settings.stop_min_seconds,
    trip_min_meters=settings.trip_min_meters,
    gap_seconds=settings.trip_gap_seconds,
    max_speed=settings.max_speed,
)

KINDS = ("trip", "stop", "spike", "dirty")


def record_of(marker_id: str, item: Trip | Stop | Spike) -> dict:
    if isinstance(item, Trip):
        return {"kind": "trip", "marker_id": marker_id, **item._asdict()}
    if isinstance(item, Stop):
        return {"kind": "stop", "marker_id": marker_id, **item._asdict()}
    return {"kind": "spike", "marker_id": marker_id, "time_us": item.time_us}


def dirty_record(marker_id: str, time_us: int, wait_for_us: int) -> dict:
    return {"kind": "dirty", "marker_id": marker_id, "day": day_of(time_us).isoformat(), "wait_for_us": wait_for_us}


def day_of(time_us: int):
    return datetime.fromtimestamp(time_us / 1_000_000, timezone.utc).date()


def trip_of(record: dict) -> Trip:
    return Trip(*(record[name] for name in Trip._fields))


def stop_of(record: dict) -> Stop:
    return Stop(*(record[name] for name in Stop._fields))


def encode(record: dict) -> bytes:
    return orjson.dumps(record)


def decode(value: bytes) -> dict:
    """A record of the topic; ValueError if it is not one."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(record, dict) or record.get("kind") not in KINDS or not isinstance(record.get("marker_id"), str):
        raise ValueError("not a journeys record")
    return record
