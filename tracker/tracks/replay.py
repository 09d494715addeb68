"""GPX tracks as a stream of fixes, with the track's own timing.

Every track point of every segment (and route points when a file has no track) becomes a
fix, in file order. Points without a time get one: spread evenly between the timed points
around them, or 1 s apart when the file has no times at all.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import gpxpy
import gpxpy.gpx
import orjson

from tracker.positions.model import format_time
from tracker.tracks.files import fill_times

DEFAULT_STEP = timedelta(seconds=1)


class BadTrack(Exception):
    """The file cannot be replayed; the message says why, in one line."""


@dataclass(frozen=True)
class TrackPoint:
    offset: timedelta  # from the first point
    lat: float
    lon: float
    altitude: float | None


def load(path: Path) -> list[TrackPoint]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadTrack(f"cannot read {path}: {exc.__class__.__name__}: {exc}") from None
    try:
        gpx = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise BadTrack(f"{path} is not valid GPX: {first_line}") from None
    raw = [p for track in gpx.tracks for segment in track.segments for p in segment.points]
    if not raw:
        raw = [p for route in gpx.routes for p in route.points]
    if not raw:
        raise BadTrack(f"{path} has no track or route points")
    times = _fill_times([_utc(p.time) for p in raw])
    start = times[0]
    return [TrackPoint(t - start, p.latitude, p.longitude, p.elevation) for t, p in zip(times, raw)]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _fill_times(times: list[datetime | None]) -> list[datetime]:
    if all(t is None for t in times):
        base = datetime(2000, 1, 1, tzinfo=timezone.utc)
        return [base + DEFAULT_STEP * i for i in range(len(times))]
    filled = fill_times(times, DEFAULT_STEP)
    # Never go backwards: a point recorded out of order keeps its predecessor's time + 1 ms.
    for i in range(1, len(filled)):
        if filled[i] <= filled[i - 1]:
            filled[i] = filled[i - 1] + timedelta(milliseconds=1)
    return filled


def records(points, marker_id: str, speedup: float, start, loop: bool):
    """(seconds after start, key, value) for each point, once or forever."""
    from tracker.tracks.derived_motion import derived_heading, derived_speed

    key = marker_id.encode()
    span = points[-1].offset.total_seconds() + 1.0  # one pass, and a second before the next
    passes = itertools.count() if loop else range(1)
    for lap in passes:
        previous = None
        for point in points:
            due = (lap * span + point.offset.total_seconds()) / speedup
            fix = {"marker_id": marker_id, "lat": point.lat, "lon": point.lon,
                   "time": format_time(start + timedelta(seconds=due)), "source": "replay"}
            if point.altitude is not None:
                fix["altitude"] = point.altitude
            if previous is not None:
                speed = derived_speed(previous.lat, previous.lon, point.lat, point.lon,
                                      (point.offset - previous.offset).total_seconds())
                if speed is not None:
                    fix["speed"] = speed
                heading = derived_heading(previous.lat, previous.lon, point.lat, point.lon)
                if heading is not None:
                    fix["heading"] = heading
            previous = point
            yield due, key, orjson.dumps(fix)
