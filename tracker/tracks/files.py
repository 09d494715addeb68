"""Recorded tracks from files, read as a stream of points: what every format's reader shares.

A reader (``tracker.tracks.formats``, one module per format) turns one file into its points,
in file order, holding only what the format needs at a time: a ``Point`` holds the time
(``None`` when the file gives none), lat, lon, whatever the file says of speed (m/s),
heading (degrees), altitude (m), accuracy (m) and battery (%), and the few other values
whose meaning the format states (``attributes``: heart rate, cadence, activity, ...). The
first point of every track segment or line after the first has ``track_break`` set: the
device stopped recording before it (the journeys take it as a gap:
``tracker.journeys.motion``).

A point that cannot be used (no coordinates, lat or lon out of range, a time that is not
one) is left out and counted in ``Skips`` with the reason; a file that cannot be read at
all raises ``BadTrackFile`` with one line naming the file and the reason.

``sources`` finds what a path holds (a file, or the members of a zip: a Google Takeout
archive, a KMZ); ``read`` picks a source's format by its first bytes and its suffix
(``tracker.tracks.formats.detect``) and streams its points; ``timed`` gives the points
without a time one, as it goes (``tracker import`` and ``tracker replay``).
"""
from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from tracker.positions.model import InvalidPosition, parse_time

#: Points without a time before the first timed point, or after the last, are this far apart.
DEFAULT_STEP = timedelta(seconds=1)
#: The keys other trackers write a point's time under, first found wins.
TIME_KEYS = ("time", "timestamp", "datetime", "when", "recorded_at", "date")
#: Bytes looked at to tell a file's format.
HEAD = 64 * 1024


class BadTrackFile(Exception):
    """The file cannot be imported; the message says why, in one line."""


def first_line(exc: Exception) -> str:
    """A parser's message, which may run over several lines, as one."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else exc.__class__.__name__


class BadPoint(Exception):
    """One point cannot be used; the message is the reason, the same for every such point."""


@dataclass(slots=True)
class Point:
    time: datetime | None  # aware, UTC
    lat: float
    lon: float
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    accuracy: float | None = None
    battery: float | None = None
    track_break: bool = False  # the recording stopped before this point (a new segment or line)
    attributes: dict[str, Any] | None = None  # values the format names: heart_rate, cadence, ...


class Skips:
    """The points a reader left out: how many for each reason, and where the first was."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def add(self, reason: str, where: str) -> None:
        if reason in self.counts:
            self.counts[reason] += 1
        else:
            self.counts[reason] = 1
            self.first[reason] = where

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """``3 skipped: lat outside [-90, 90] (2, the first at point 4); JSON not valid (1, at line 9)``."""
        reasons = sorted(self.counts, key=lambda reason: -self.counts[reason])
        parts = [f"{r} ({self.counts[r]}, the first at {self.first[r]})" if self.counts[r] > 1
                 else f"{r} (1, at {self.first[r]})" for r in reasons[:3]]
        if len(reasons) > 3:
            parts.append(f"{len(reasons) - 3} other reasons ({sum(self.counts[r] for r in reasons[3:])})")
        return f"{self.total} skipped: {'; '.join(parts)}"


@dataclass
class Reading:
    """What a reader is told and tells back while it reads one source."""
    skips: Skips = field(default_factory=Skips)
    #: ``--interval``: the time between the points of a KML LineString timed by its TimeSpan.
    interval: timedelta | None = None
    #: Set by the reader: the format's name, for the summary.
    format: str = ""

    def skip(self, reason: Any, where: str) -> None:
        self.skips.add(str(reason), where)


# --- sources -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One stream of track data: a file, or a member of a zip archive."""
    path: Path
    member: str | None = None  # in the zip at ``path``
    size: int = 0  # bytes, uncompressed

    @property
    def name(self) -> str:
        return str(self.path) if self.member is None else f"{self.path}:{self.member}"

    @property
    def suffix(self) -> str:
        return Path(self.member or self.path.name).suffix.lower()

    def open(self) -> BinaryIO:
        """A binary stream of the data; ``BadTrackFile`` if it cannot be opened."""
        try:
            if self.member is None:
                return open(self.path, "rb")
            archive = zipfile.ZipFile(self.path)
            return _Closing(archive.open(self.member), archive)
        except (OSError, zipfile.BadZipFile) as exc:
            raise BadTrackFile(f"cannot read {self.name}: {getattr(exc, 'strerror', None) or exc}") from None


def sources(path: Path) -> list[Source]:
    """What ``path`` holds: itself, or the members of a zip that carry tracks (see
    ``tracker.tracks.formats.takeout.members``); ``BadTrackFile`` if there is none."""
    from tracker.tracks.formats.takeout import members

    try:
        size = path.stat().st_size
        with open(path, "rb") as stream:
            magic = stream.read(4)
    except OSError as exc:
        raise BadTrackFile(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}") from None
    if magic != b"PK\x03\x04":
        return [Source(path, None, size)]
    try:
        with zipfile.ZipFile(path) as archive:
            chosen = members(archive.infolist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadTrackFile(f"{path}: not a readable zip archive ({exc})") from None
    if not chosen:
        raise BadTrackFile(f"{path}: a zip archive without a track file (Records.json, Semantic Location History, "
                           f"Timeline.json, KML, GPX, GeoJSON, TCX, CSV or .rec)")
    return [Source(path, info.filename, info.file_size) for info in chosen]


def read(source: Source, reading: Reading, progress: Callable[[int], None] | None = None) -> Iterator[Point]:
    """The points of one source, in file order, bad ones counted in ``reading.skips``;
    ``BadTrackFile`` naming the source if it cannot be read. ``progress`` is told the bytes
    read so far, now and then."""
    from tracker.tracks.formats import detect

    with source.open() as raw:
        stream = Counted(raw, progress)
        try:
            head = stream.read(HEAD)
            reader = detect(source, head)
            stream = io.BufferedReader(Prefixed(head, stream), 1 << 16)
            yield from reader(stream, reading)
        except BadTrackFile as exc:
            raise BadTrackFile(f"{source.name}: {exc}") from None
        except UnicodeDecodeError:
            raise BadTrackFile(f"{source.name}: not UTF-8 text") from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise BadTrackFile(f"{source.name}: cannot read it to the end ({exc})") from None


class Counted(io.RawIOBase):
    """A binary stream that counts the bytes read through it."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None = None) -> None:
        self.stream, self.progress, self.count, self.reported = stream, progress, 0, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        if self.progress is not None and self.count - self.reported >= 1 << 20:
            self.reported = self.count
            self.progress(self.count)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class Prefixed(io.RawIOBase):
    """``head`` (already read) and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                data, self.head = self.head + self.stream.read(), b""
                return data
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.stream.read(size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Closing:
    """A zip member's stream that also closes its archive."""

    def __init__(self, stream: BinaryIO, archive: zipfile.ZipFile) -> None:
        self.stream, self.archive = stream, archive

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.stream.close()
        self.archive.close()


# --- times -------------------------------------------------------------------------------------
def timed(points: Iterable[Point], step: timedelta = DEFAULT_STEP) -> Iterator[tuple[Point, datetime, bool]]:
    """(point, time, interpolated) for every point of ``points``, which has at least one with
    a time: a point without one gets a time spread evenly between the timed points around
    it, ``step`` apart before the first and after the last. Holds only the points between
    two timed ones."""
    waiting: list[Point] = []
    last: datetime | None = None
    for point in points:
        moment = point.time
        if moment is None:
            waiting.append(point)
            continue
        if waiting:
            if last is None:  # before the first timed point
                count = len(waiting)
                for i, early in enumerate(waiting):
                    yield early, moment - step * (count - i), True
            else:
                span = (moment - last) / (len(waiting) + 1)
                for i, between in enumerate(waiting, 1):
                    yield between, last + span * i, True
            waiting.clear()
        yield point, moment, False
        last = moment
    if waiting:
        if last is None:
            raise ValueError("no times to fill from")
        for i, late in enumerate(waiting, 1):
            yield late, last + step * i, True


def parse_point_time(value: Any) -> datetime:
    """ISO 8601 text (no zone: UTC) or epoch seconds or milliseconds (numbers or text), as
    an aware UTC datetime; ``BadPoint`` with the reason otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None:
            try:
                if moment.tzinfo is None:
                    return moment.replace(tzinfo=timezone.utc)
                return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
            except OverflowError:
                raise BadPoint("time beyond the calendar") from None
    try:
        return parse_time(value, max_future=None)  # numbers, and the reason for what is not a time
    except InvalidPosition as exc:
        raise BadPoint(_time_reason(exc)) from None
    except (OverflowError, ValueError):
        raise BadPoint("time beyond the calendar") from None


def _time_reason(exc: InvalidPosition) -> str:
    """The reason without the value, so that all such points count under one reason."""
    if exc.code == "bad_time":
        return "time not ISO 8601"
    if "before 1970" in exc.message:
        return "time before 1970"
    if exc.code == "out_of_range":
        return "time beyond the calendar"
    return "time not a time"


# --- numbers and places ----------------------------------------------------------------------------
def number(value: Any, name: str) -> float | None:
    """A number from a file, as a number or as text; ``None`` for null or ''; ``BadPoint``
    otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadPoint(f"{name} not a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BadPoint(f"{name} not a number") from None
    if not math.isfinite(result):
        raise BadPoint(f"{name} not finite")
    return result


def known(value: float | None) -> float | None:
    """Apps write an unknown speed, heading or accuracy as a negative number."""
    return None if value is None or value < 0 else value


def place(lat: Any, lon: Any, time: datetime | None = None) -> Point:
    """A point at (lat, lon), checked; ``BadPoint`` if there is none or it is off the globe."""
    lat, lon = number(lat, "lat"), number(lon, "lon")
    if lat is None or lon is None:
        raise BadPoint("no lat and lon")
    if not -90.0 <= lat <= 90.0:
        raise BadPoint("lat outside [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise BadPoint("lon outside [-180, 180]")
    return Point(time, lat, lon)


_DEGREES = re.compile(r"\s*(?:geo:)?\s*(-?[\d.]+)\s*°?\s*,\s*(-?[\d.]+)\s*°?\s*")


def lat_lon_text(text: Any) -> tuple[str, str]:
    """``"50.0506312°, 14.3439906°"`` (or ``"geo:50.05,14.34"``) as its lat and lon."""
    match = _DEGREES.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise BadPoint("place not 'lat°, lon°'")
    return match[1], match[2]
