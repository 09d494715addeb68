"""``tracker import``: recorded tracks sent to ``gps.positions`` with their own times, at full speed.

Every file is read first (``tracker.tracks.files``), so a bad one stops the import before
anything is sent. Each point becomes one record of the topic's contract for ``--marker``:

- time: the file's own. A point without one gets one spread evenly between the timed points
  around it (1 s apart before the first and after the last, as ``tracker replay`` does) and
  ``"source": "import:interpolated"``; the others ``"source": "import"``. A file without
  any time needs ``--start`` and ``--interval``: its point i gets START + i * INTERVAL,
  counted on across such files so that two of them do not overlap.
- speed and heading: the file's own, else derived from the previous point of the file by
  ``tracker.tracks.derived_motion``. A value the validator would refuse is left out, so that one
  odd field does not send a whole fix to the dead-letter topic.

The records go through the producer of ``tracker send`` and ``tracker replay``, in batches to
the marker's partition (the one Kafka's default partitioner picks for its key), without
waiting for each; the worker validates them and appends them to the history, and, being
older, they do not move ``latest`` back.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError
from tracker.tracks.derived_motion import derived_heading, derived_speed
from tracker.journeys.motion import TRACK_BREAK
from tracker.positions.model import (EPOCH, MARKER_ID_PATTERN, MARKER_ID_RULE, MAX_FUTURE, OPTIONAL_RANGES,
                              InvalidPosition, format_time, parse_time)
from tracker.settings import settings
from tracker.tracks.files import BadTrackFile, Point, fill_times, read

SOURCE = "import"
SOURCE_INTERPOLATED = "import:interpolated"
#: Records encoded and handed to the producer at a time (it packs them into batches of its
#: own size and sends them while the next chunk is encoded).
CHUNK = 10_000


def add_command(commands) -> None:
    parser = commands.add_parser("import", help="send recorded tracks with their own times, at full speed")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a GPX 1.0 or 1.1, GeoJSON or OwnTracks Recorder (.rec) file")
    parser.add_argument("--marker", required=True, help="marker id")
    parser.add_argument("--dry-run", action="store_true", help="say what would be sent, per file, and send nothing")
    parser.add_argument("--start", metavar="TIME",
                        help="for files without times: the first point's time (ISO 8601 or epoch seconds)")
    parser.add_argument("--interval", metavar="S", type=float, help="for files without times: seconds between points")
    parser.set_defaults(run=run)


@dataclass
class FileFixes:
    """One file's points with the times they are sent with."""
    path: str
    points: list[Point]
    times: list[datetime]
    interpolated: list[bool]
    interval: float | None = None  # times from --start, this far apart

    def summary(self) -> str:
        text = f"{self.path}: {len(self.points)} points, {format_time(min(self.times))} to {format_time(max(self.times))}"
        if self.interval is not None:
            text += f" (times from --start, {self.interval:g} s apart)"
        elif any(self.interpolated):
            text += f" ({sum(self.interpolated)} interpolated)"
        return text


async def run(args: argparse.Namespace) -> int:
    marker_id = args.marker
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise CommandError(f"--marker {marker_id!r} is not a marker id ({MARKER_ID_RULE})", EXIT_USAGE)
    start = _start(args.start, args.interval)
    try:
        files = plan([Path(name) for name in args.files], start, args.interval)
    except BadTrackFile as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    for fixes in files:
        print(fixes.summary())
    total = sum(len(fixes.points) for fixes in files)
    every = [moment for fixes in files for moment in fixes.times]
    repeated = len(every) - len(set(every))
    if repeated:
        print(f"{repeated} points share their time with another: the history keeps one point per time")
    if args.dry_run:
        print(f"dry run: {total} points would be sent as {marker_id}; nothing sent")
        return 0
    from tracker.stream.producer import started

    async with started(settings, settings.topic) as producer:
        sent, elapsed = await send_all(producer, settings.topic, marker_id.encode(), records(files, marker_id), total)
    print(f"imported {sent} points as {marker_id} in {elapsed:.1f} s ({sent / max(elapsed, 1e-9):,.0f} points/s)")
    return 0


def _start(start: str | None, interval: float | None) -> datetime | None:
    if (start is None) != (interval is None):
        raise CommandError("--start and --interval go together", EXIT_USAGE)
    if start is None:
        return None
    if not (interval > 0 and math.isfinite(interval)):
        raise CommandError("--interval must be a number of seconds more than 0", EXIT_USAGE)
    try:
        return parse_time(start, max_future=None)
    except InvalidPosition as exc:
        raise CommandError(f"--start: {exc.message}", EXIT_USAGE) from None


def plan(paths: list[Path], start: datetime | None = None, interval: float | None = None) -> list[FileFixes]:
    """Every file read and its points timed, or ``BadTrackFile`` naming the file and the reason."""
    files = []
    untimed = 0  # points given times from --start so far
    latest_allowed = datetime.now(timezone.utc) + MAX_FUTURE
    for path in paths:
        points = read(path)
        times: list[datetime | None] = [point.time for point in points]
        if all(moment is None for moment in times):
            if start is None:
                raise BadTrackFile(f"{path}: no point has a time: pass --start TIME --interval S "
                                   f"to give point i the time TIME + i * S")
            try:
                step = timedelta(seconds=interval)
                fixes = FileFixes(str(path), points, [start + step * (untimed + i) for i in range(len(points))],
                                  [False] * len(points), interval)
            except OverflowError:
                raise BadTrackFile(f"{path}: --start and --interval give times beyond the calendar") from None
            untimed += len(points)
        else:
            fixes = FileFixes(str(path), points, fill_times(times), [moment is None for moment in times])
        earliest, latest = min(fixes.times), max(fixes.times)
        if earliest < EPOCH:
            raise BadTrackFile(f"{path}: its times start at {format_time(earliest)}, before 1970: "
                               f"the tracker would refuse those points")
        if latest > latest_allowed:
            raise BadTrackFile(f"{path}: its times reach {format_time(latest)}, more than "
                               f"{MAX_FUTURE.total_seconds() / 60:g} min from now: the tracker would refuse those points")
        files.append(fixes)
    return files


def records(files: list[FileFixes], marker_id: str) -> Iterator[bytes]:
    """The records of every file's points, in order: the contract's JSON, time in ISO 8601 UTC."""
    dumps, option = orjson.dumps, orjson.OPT_UTC_Z
    ranges = [(name, *OPTIONAL_RANGES[name]) for name in ("altitude", "accuracy", "battery")]
    speed_low, speed_high = OPTIONAL_RANGES["speed"]
    heading_low, heading_high = OPTIONAL_RANGES["heading"]
    for fixes in files:
        previous: Point | None = None
        previous_time = None
        for point, moment, guessed in zip(fixes.points, fixes.times, fixes.interpolated):
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
            if point.track_break:
                fix["attributes"] = {TRACK_BREAK: True}
            yield dumps(fix, option=option)
            previous, previous_time = point, moment


async def send_all(producer, topic: str, key: bytes, values: Iterable[bytes], total: int,
                   label: str = "import") -> tuple[int, float]:
    """Send the ``total`` values under ``key`` to its partition, in batches (taking the next
    values while the last batches are on their way), and wait until the broker has
    acknowledged all; progress on stderr about once a second. (records acknowledged,
    seconds taken)"""
    from aiokafka.errors import KafkaError

    from tracker.positions.intake import partition_of
    from tracker.stream.producer import batch_sender
    from tracker.tracks.sender import _progress

    started = last_report = time.monotonic()
    acknowledged = 0
    values = iter(values)
    pending: list[tuple[asyncio.Future, int]] = []

    def settle() -> None:
        """Count the acknowledged batches (raising a failed one's error); keep the others."""
        nonlocal acknowledged, pending
        waiting = []
        for future, count in pending:
            if future.done():
                future.result()
                acknowledged += count
            else:
                waiting.append((future, count))
        pending = waiting

    try:
        partitions = sorted(await producer.partitions_for(topic))
        partition = partitions[partition_of(key, len(partitions))]
        send = batch_sender(producer)
        while chunk := [(key, value) for value in islice(values, CHUNK)]:
            pending.extend(await send(topic, partition, chunk))
            await asyncio.sleep(0)  # let the producer send while the next chunk is encoded
            settle()
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                _progress(label, acknowledged, total, now - started)
        while pending:
            await asyncio.wait([future for future, _ in pending], timeout=1.0)
            settle()
            if pending:
                _progress(label, acknowledged, total, time.monotonic() - started)
    except KafkaError as exc:
        _progress(label, acknowledged, total, time.monotonic() - started, end="\n")
        raise CommandError(f"Kafka failed after {acknowledged} of {total} points: {exc}", EXIT_UNAVAILABLE) from None
    elapsed = time.monotonic() - started
    _progress(label, acknowledged, total, elapsed, end="\n")
    return acknowledged, elapsed
