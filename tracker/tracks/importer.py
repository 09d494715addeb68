"""``tracker import``: recorded tracks sent to ``gps.positions`` with their own times, at full speed.

Every file is read twice, as a stream (``tracker.tracks.files``, one reader per format in
``tracker.tracks.formats``), so that memory stays flat whatever its size: first every file
is checked (``check``: its points counted, its bad points counted with their reasons, its
times' span found), so that a file that cannot be read, or has no valid point, stops the
import before anything is sent; then each is read again and sent (``records``). Each point
becomes one record of the topic's contract for ``--marker``:

- time: the file's own. A point without one gets one spread evenly between the timed points
  around it (1 s apart before the first and after the last, as ``tracker replay`` does) and
  ``"source": "import:interpolated"``; the others ``"source": "import"``. A file without
  any time needs ``--start`` and ``--interval``: its point i gets START + i * INTERVAL,
  counted on across such files so that two of them do not overlap. ``--interval`` alone
  times the LineStrings of a KML file from their TimeSpans.
- speed and heading: the file's own, else derived from the previous point of the file by
  ``tracker.tracks.derived_motion``. A value the validator would refuse is left out, so that one
  odd field does not send a whole fix to the dead-letter topic.
- a point that cannot be used (no coordinates, off the globe, a time that is not one, from
  before 1970 or more than 5 minutes ahead of now) is left out; the summary says how many
  and why.

The records go through the producer of ``tracker send`` and ``tracker replay``, in batches to
the marker's partition (the one Kafka's default partitioner picks for its key), without
waiting for each; the worker validates them and appends them to the history, and, being
older, they do not move ``latest`` back. The history keeps one point per marker and time,
so importing a file again adds nothing.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from tracker.cli.common import EXIT_USAGE, CommandError
from tracker.tracks.derived_motion import derived_heading, derived_speed
from tracker.journeys.motion import TRACK_BREAK
from tracker.positions.model import (EPOCH, MARKER_ID_PATTERN, MARKER_ID_RULE, MAX_FUTURE, MICROSECOND,
                                     OPTIONAL_RANGES, InvalidPosition, format_time, parse_time)
from tracker.settings import settings
from tracker.tracks.sender import bar, send_all
from tracker.tracks.files import (DEFAULT_STEP, BadTrackFile, Point, Reading, Skips, Source, read, sources,
                                  timed)

SOURCE = "import"
SOURCE_INTERPOLATED = "import:interpolated"


def add_command(commands) -> None:
    parser = commands.add_parser("import", help="send recorded tracks with their own times, at full speed")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="GPX, KML/KMZ, TCX, GeoJSON, CSV, Overland, Google Takeout (Records.json, "
                             "Semantic Location History, Timeline.json, or the Takeout .zip) or OwnTracks .rec "
                             "(docs/imports.md)")
    parser.add_argument("--marker", required=True, help="marker id")
    parser.add_argument("--dry-run", action="store_true", help="say what would be sent, per file, and send nothing")
    parser.add_argument("--start", metavar="TIME",
                        help="for files without times: the first point's time (ISO 8601 or epoch seconds)")
    parser.add_argument("--interval", metavar="S", type=float,
                        help="for files without times (with --start), and KML LineStrings with a TimeSpan: "
                             "seconds between points")
    parser.set_defaults(run=run)


@dataclass
class Checked:
    """One source after the first reading: how many points it sends, over what span of time."""
    source: Source
    format: str = ""
    count: int = 0
    first: datetime | None = None  # the earliest time sent (interpolated times included)
    last: datetime | None = None
    interpolated: int = 0
    skips: Skips = field(default_factory=Skips)
    start: datetime | None = None  # times from --start: the first point's
    interval: float | None = None

    def summary(self) -> str:
        text = (f"{self.source.name}: {self.count} points ({self.format}), "
                f"{format_time(self.first)} to {format_time(self.last)}")
        if self.start is not None:
            text += f" (times from --start, {self.interval:g} s apart)"
        elif self.interpolated:
            text += f" ({self.interpolated} interpolated)"
        if self.skips.total:
            text += f"; {self.skips.summary()}"
        return text


async def run(args: argparse.Namespace) -> int:
    marker_id = args.marker
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise CommandError(f"--marker {marker_id!r} is not a marker id ({MARKER_ID_RULE})", EXIT_USAGE)
    start = _start(args.start, args.interval)
    latest_allowed = datetime.now(timezone.utc) + MAX_FUTURE
    try:
        files, repeated = check([Path(name) for name in args.files], start, args.interval, latest_allowed)
    except BadTrackFile as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    for checked in files:
        print(checked.summary())
    total = sum(checked.count for checked in files)
    if repeated:
        print(f"{repeated} points share their time with another: the history keeps one point per time")
    if args.dry_run:
        print(f"dry run: {total} points would be sent as {marker_id}; nothing sent")
        return 0
    from tracker.stream.producer import started

    async with started(settings, settings.topic) as producer:
        sent, elapsed = await send_all(producer, settings.topic, marker_id.encode(),
                                       records(files, marker_id, args.interval, latest_allowed), total)
    print(f"imported {sent} points as {marker_id} in {elapsed:.1f} s ({sent / max(elapsed, 1e-9):,.0f} points/s)")
    return 0


def _start(start: str | None, interval: float | None) -> datetime | None:
    if start is not None and interval is None:
        raise CommandError("--start and --interval go together", EXIT_USAGE)
    if interval is not None and not (interval > 0 and math.isfinite(interval)):
        raise CommandError("--interval must be a number of seconds more than 0", EXIT_USAGE)
    if start is None:
        return None
    try:
        return parse_time(start, max_future=None)
    except InvalidPosition as exc:
        raise CommandError(f"--start: {exc.message}", EXIT_USAGE) from None


def check(paths: list[Path], start: datetime | None = None, interval: float | None = None,
          latest_allowed: datetime | None = None, progress: bool = True) -> tuple[list[Checked], int]:
    """Every file read once and checked: (a ``Checked`` per source, how many points share
    their time with another), or ``BadTrackFile`` naming the file and the reason."""
    latest_allowed = latest_allowed or datetime.now(timezone.utc) + MAX_FUTURE
    files: list[Checked] = []
    untimed = 0  # points given times from --start so far
    moments = array("q")  # µs of every point's time but the interpolated ones
    for path in paths:
        for source in sources(path):
            checked = _check(source, interval, latest_allowed, moments, progress)
            if checked.start is None and checked.first is None:  # no point has a time
                if start is None:
                    raise BadTrackFile(f"{source.name}: no point has a time: pass --start TIME --interval S "
                                       f"to give point i the time TIME + i * S")
                step = timedelta(seconds=interval)
                try:
                    checked.start = start + step * untimed
                    checked.first, checked.last = checked.start, checked.start + step * (checked.count - 1)
                except OverflowError:
                    raise BadTrackFile(f"{source.name}: --start and --interval give times beyond the calendar") from None
                checked.interval = interval
                first_us = (checked.start - EPOCH) // MICROSECOND
                moments.extend(first_us + round(interval * 1e6) * i for i in range(checked.count))
                untimed += checked.count
            if checked.first < EPOCH:
                raise BadTrackFile(f"{source.name}: its times start at {format_time(checked.first)}, before 1970: "
                                   f"the tracker would refuse those points")
            if checked.last > latest_allowed:
                raise BadTrackFile(f"{source.name}: its times reach {format_time(checked.last)}, more than "
                                   f"{MAX_FUTURE.total_seconds() / 60:g} min from now: the tracker would refuse "
                                   f"those points")
            files.append(checked)
    return files, _repeats(moments)


def _check(source: Source, interval: float | None, latest_allowed: datetime, moments: array,
           progress: bool) -> Checked:
    """One source read through: its count, skips and the span of its times (``first`` is
    ``None`` if no point has a time)."""
    reading = Reading(interval=None if interval is None else timedelta(seconds=interval))
    checked = Checked(source, skips=reading.skips)
    shown = _Progress(f"reading {source.name}", source.size) if progress else None
    count = timed_count = leading = trailing = 0
    low = high = first = last = None
    for point in _valid(read(source, reading, shown), reading.skips, latest_allowed):
        count += 1
        moment = point.time
        if moment is None:
            if timed_count:
                trailing += 1
            else:
                leading += 1
            continue
        timed_count += 1
        trailing = 0
        moments.append((moment - EPOCH) // MICROSECOND)
        if first is None:
            first = low = high = moment
        elif moment < low:
            low = moment
        elif moment > high:
            high = moment
        last = moment
    if shown is not None:
        shown.done()
    checked.format, checked.count, checked.interpolated = reading.format, count, count - timed_count
    if not count:
        reason = f": {reading.skips.summary()}" if reading.skips.total else ""
        raise BadTrackFile(f"{source.name}: no valid point{reason}" if reason else f"{source.name}: no points")
    if timed_count:
        checked.first = min(low, first - DEFAULT_STEP * leading)
        checked.last = max(high, last + DEFAULT_STEP * trailing)
    return checked


def _valid(points: Iterable[Point], skips: Skips, latest_allowed: datetime) -> Iterator[Point]:
    """The points whose time (if they have one) the tracker would take."""
    for index, point in enumerate(points, 1):
        moment = point.time
        if moment is not None and not EPOCH <= moment <= latest_allowed:
            skips.add("time before 1970" if moment < EPOCH else
                      f"time more than {MAX_FUTURE.total_seconds() / 60:g} min from now", f"point {index}")
            continue
        yield point


def _repeats(moments: array) -> int:
    """How many of the times are equal to another one (each time's first not counted)."""
    if len(moments) < 2:
        return 0
    import numpy

    ordered = numpy.frombuffer(moments, dtype=numpy.int64)
    ordered.sort()
    return int(numpy.count_nonzero(ordered[1:] == ordered[:-1]))


def timed_points(checked: Checked, interval: float | None, latest_allowed: datetime,
                 ) -> Iterator[tuple[Point, datetime, bool]]:
    """(point, time, interpolated) of a checked source, read again."""
    reading = Reading(interval=None if interval is None else timedelta(seconds=interval))
    points = _valid(read(checked.source, reading), reading.skips, latest_allowed)
    if checked.start is None:
        yield from timed(points)
        return
    step = timedelta(seconds=checked.interval)
    for i, point in enumerate(points):
        yield point, checked.start + step * i, False


def records(files: list[Checked], marker_id: str, interval: float | None = None,
            latest_allowed: datetime | None = None) -> Iterator[bytes]:
    """The records of every file's points, in order: the contract's JSON, time in ISO 8601 UTC."""
    latest_allowed = latest_allowed or datetime.now(timezone.utc) + MAX_FUTURE
    dumps, option = orjson.dumps, orjson.OPT_UTC_Z
    ranges = [(name, *OPTIONAL_RANGES[name]) for name in ("altitude", "accuracy", "battery")]
    speed_low, speed_high = OPTIONAL_RANGES["speed"]
    heading_low, heading_high = OPTIONAL_RANGES["heading"]
    for checked in files:
        previous: Point | None = None
        previous_time = None
        for point, moment, guessed in timed_points(checked, interval, latest_allowed):
            fix = {"marker_id": marker_id, "lat": point.lat, "lon": point.lon, "time": moment}
            speed, heading = point.speed, point.heading
            if previous is not None:
                if speed is None:
                    speed = derived_speed(previous.lat, previous.lon, point.lat, point.lon,
                                          (moment - previous_time).total_seconds())
                if heading is None:
                    heading = derived_heading(previous.lat, previous.lon, point.lat, point.lon)
            # A value the validator would refuse (NaN too) is left out.
            if speed is not None and speed_low <= speed <= speed_high:
                fix["speed"] = speed
            if heading is not None and heading_low <= heading <= heading_high:
                fix["heading"] = heading
            for name, low, high in ranges:
                value = getattr(point, name)
                if value is not None and low <= value <= high:
                    fix[name] = value
            fix["source"] = SOURCE_INTERPOLATED if guessed else SOURCE
            if point.attributes:
                fix["attributes"] = {**point.attributes, TRACK_BREAK: True} if point.track_break else point.attributes
            elif point.track_break:
                fix["attributes"] = {TRACK_BREAK: True}
            yield dumps(fix, option=option)
            previous, previous_time = point, moment


class _Progress:
    """``reading NAME: 312 of 1,024 MB`` on stderr, about once a second, for files of a MB or more."""

    def __init__(self, label: str, size: int) -> None:
        self.label, self.size, self.last, self.shown = label, size, 0.0, False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0:
            self.last, self.shown = now, True
            print(f"\r{self.label}: {bar(done, self.size)} {done / 1e6:,.0f} of {self.size / 1e6:,.0f} MB",
                  end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:
            print(f"\r{self.label}: {bar(self.size, self.size)} {self.size / 1e6:,.0f} MB read",
                  file=sys.stderr, flush=True)
