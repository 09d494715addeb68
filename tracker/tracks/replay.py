"""Recorded tracks as a stream of fixes, with the track's own timing (``tracker replay``).

The file is read by the import's readers (``tracker.tracks.files``: GPX, KML, TCX, GeoJSON,
CSV, Overland, Google Takeout, OwnTracks ``.rec``), first to check it, then once per pass,
as a stream. Every point becomes a fix, in file order. Points without a time get one:
spread evenly between the timed points around them, or 1 s apart when the file has no
times at all; a point recorded out of order keeps its predecessor's time + 1 ms, so that
the replay never goes backwards.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import orjson

from tracker.positions.model import format_time
from tracker.tracks.files import DEFAULT_STEP, BadTrackFile, Reading, Source, read, sources, timed

__all__ = ["BadTrackFile", "TrackPoint", "check", "points", "records"]

_BASE = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class TrackPoint:
    offset: timedelta  # from the first point
    lat: float
    lon: float
    altitude: float | None


@dataclass(frozen=True)
class Track:
    """A checked file: its sources, how many points, and whether any has a time."""
    sources: list[Source]
    count: int
    timed: bool


def check(path: Path) -> Track:
    """The file read once: ``BadTrackFile`` naming it and the reason if it has no usable point."""
    found = sources(path)
    count = with_time = 0
    for source in found:
        reading = Reading()
        for point in read(source, reading):
            count += 1
            with_time += point.time is not None
    if not count:
        raise BadTrackFile(f"{path}: no track or route points")
    return Track(found, count, with_time > 0)


def points(track: Track) -> Iterator[TrackPoint]:
    """The track's points, read again, with offsets from the first that never go backwards."""
    stream = (point for source in track.sources for point in read(source, Reading()))
    if track.timed:
        moments = timed(stream)
    else:
        moments = ((point, _BASE + DEFAULT_STEP * i, True) for i, point in enumerate(stream))
    start = previous = None
    for point, moment, _ in moments:
        if start is None:
            start = previous = moment
        elif moment <= previous:
            moment = previous + timedelta(milliseconds=1)
        previous = moment
        yield TrackPoint(moment - start, point.lat, point.lon, point.altitude)


def records(laps, marker_id: str, speedup: float, start, loop: bool):
    """(seconds after start, key, value) for each point of ``laps()`` (the track's points,
    read again for each pass), once or forever; a pass starts a second after the last one's
    last point."""
    from tracker.tracks.derived_motion import derived_heading, derived_speed

    key = marker_id.encode()
    passes = itertools.count() if loop else range(1)
    lap_start = 0.0
    for _ in passes:
        previous = None
        offset = 0.0
        for point in laps():
            offset = point.offset.total_seconds()
            due = (lap_start + offset) / speedup
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
        lap_start += offset + 1.0
