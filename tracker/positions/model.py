"""The position model and the one validation function that every entry point uses.

A position is accepted as a JSON object (bytes or text) or as an already decoded mapping:

    {"marker_id": str, "lat": float, "lon": float,
     "time": epoch seconds | epoch milliseconds | ISO 8601 string,
     "speed"?: m/s, "heading"?: degrees, "altitude"?: m, "accuracy"?: m,
     "battery"?: %, "source"?: str, "attributes"?: {name: text | number | bool | null}}

``parse_fields`` holds the rules. It returns a *fix*: a list in ``FIX_FIELDS`` order, with
the time as whole microseconds since the epoch, which is the form the stream carries
between agents, the ``latest`` table stores and the history sink copies to Postgres. ISO
8601 text is produced only at the edges (HTTP, exports). ``parse_position`` wraps the
same rules in a ``Position`` for the command line.

A *heartbeat* is a report without a position (a phone standing still, one that knows only
the cell towers around it): ``{"kind": "heartbeat", "marker_id", "time", "battery"?,
"source"?, "attributes"?}``. ``parse_heartbeat`` checks it by the same rules and returns it
in ``HEARD_FIELDS`` order; it refreshes the marker's liveness (its battery, when it was
last heard, online) and raises its alarms, and is never a position. ``parse_report``
checks either kind.

A rejected record raises ``InvalidPosition`` with a short machine-readable code and a
message meant for a person. The common case (floats in range, integer epochs) is checked
inline; anything else goes through the helper that owns the rule and either converts the
value or raises with the exact reason.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import orjson

#: The one rule for a marker id (also a device id). The first character may not be ``-``
#: or ``.``: such an id is read as an option by command-line tools, or as a relative path
#: (``.``, ``..``) in a URL or a file name made from it.
MARKER_ID_PATTERN = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:-]{0,63}")
#: The rule in words, for every message that refuses a marker id.
MARKER_ID_RULE = "1 to 64 characters of A-Z a-z 0-9 _ . : -, not starting with - or ."
#: What any stored marker id looks like, including ids that versions before the rule on
#: the first character accepted: for checking rows read back, never for accepting new ids.
STORED_MARKER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: How far a fix may be ahead of its reference: the Kafka timestamp of its record in the
#: stream, the time it was received at the HTTP and command-line edges. ``latest`` only
#: moves forward, so a fix from the future would freeze its marker until that time comes;
#: five minutes covers a phone's clock drift.
MAX_FUTURE = timedelta(minutes=5)
#: Epoch numbers above this are milliseconds (the same rule as the OsmAnd protocol).
EPOCH_MILLIS_ABOVE = 2**31 - 1
MAX_SOURCE_LENGTH = 64
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_TEXT = 256
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
MAX_FUTURE_US = MAX_FUTURE // MICROSECOND
#: The last microsecond Python's datetime can represent (9999-12-31T23:59:59.999999Z).
MAX_TIME_US = (datetime.max.replace(tzinfo=timezone.utc) - EPOCH) // MICROSECOND
_MAX_TIME_MS = MAX_TIME_US // 1_000

#: Optional numeric fields and their inclusive ranges.
OPTIONAL_RANGES: dict[str, tuple[float, float]] = {
    "speed": (0.0, 1_000.0),  # m/s
    "heading": (0.0, 360.0),  # degrees from north
    "altitude": (-12_000.0, 100_000.0),  # m
    "accuracy": (0.0, 1_000_000.0),  # m
    "battery": (0.0, 100.0),  # %
}

#: The layout of a fix. The stream appends ``received_us`` (the record's Kafka time).
FIX_FIELDS = ("marker_id", "time_us", "lat", "lon", *OPTIONAL_RANGES, "source", "attributes")
#: ``kind`` of a report without a position.
HEARTBEAT = "heartbeat"
#: The layout of a heartbeat; the stream appends ``received_us`` too.
HEARD_FIELDS = ("marker_id", "time_us", "battery", "source", "attributes")

_OPTIONAL = tuple((name, low, high) for name, (low, high) in OPTIONAL_RANGES.items())
_MARKER_ID_MATCH = MARKER_ID_PATTERN.fullmatch
_loads = orjson.loads


class InvalidPosition(ValueError):
    """A record that cannot become a position; ``code`` is stable, ``message`` explains."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Position:
    marker_id: str
    lat: float
    lon: float
    time: datetime  # timezone-aware, UTC
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    accuracy: float | None = None
    battery: float | None = None
    source: str | None = None
    attributes: dict[str, Any] | None = None

    @classmethod
    def from_fix(cls, fix: list) -> "Position":
        marker_id, time_us, lat, lon, speed, heading, altitude, accuracy, battery, source, attributes = fix[:11]
        return cls(marker_id, lat, lon, time_of(time_us), speed, heading, altitude, accuracy, battery,
                   source, attributes)

    def to_dict(self) -> dict[str, Any]:
        """The contract's field names, with ``time`` as ISO 8601 UTC."""
        return {
            "marker_id": self.marker_id,
            "lat": self.lat,
            "lon": self.lon,
            "time": format_time(self.time),
            "speed": self.speed,
            "heading": self.heading,
            "altitude": self.altitude,
            "accuracy": self.accuracy,
            "battery": self.battery,
            "source": self.source,
            "attributes": self.attributes,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


#: The attributes that name a marker for people, first found wins: ``name`` (a tracker's
#: name from its gateway), ``device`` (the OwnTracks app's device name).
NAME_ATTRIBUTES = ("name", "device")


def display_name(attributes: Mapping[str, Any] | None) -> str | None:
    """What the map shows as a marker's name, from its fix's attributes (None if none)."""
    if not attributes:
        return None
    for key in NAME_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when there are some."""
    text = moment.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def time_of(time_us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=time_us)


def micros_of(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def format_micros(time_us: int) -> str:
    return format_time(time_of(time_us))


def parse_position(raw: bytes | str | Mapping[str, Any], *, now: datetime | None = None) -> Position:
    """Validate one record; raise ``InvalidPosition`` saying what is wrong."""
    now = now or datetime.now(timezone.utc)
    return Position.from_fix(parse_fields(_decode(raw), micros_of(now)))


def read_fix(raw: bytes, now_us: int) -> list:
    """Validate one record's bytes as a position: a fix, or ``InvalidPosition``."""
    return parse_fields(decode_object(raw), now_us)


def decode_object(raw: bytes) -> Mapping[str, Any]:
    """A record's bytes as the JSON object they hold, or ``InvalidPosition``."""
    try:
        data = _loads(raw)
    except orjson.JSONDecodeError:
        data = _decode(raw)  # raises with the reason
    if type(data) is not dict:
        data = _decode(raw)
    return data


def parse_report(data: Mapping[str, Any], now_us: int) -> tuple[bool, list]:
    """Either kind of report: (False, a fix) or (True, a heartbeat), or ``InvalidPosition``."""
    kind = data.get("kind")
    if kind is None:
        return False, parse_fields(data, now_us)
    if kind == HEARTBEAT:
        return True, parse_heartbeat(data, now_us)
    raise InvalidPosition("bad_kind", f"kind must be {HEARTBEAT!r} or absent, got {str(kind)[:20]!r}")


def parse_heartbeat(data: Mapping[str, Any], now_us: int) -> list:
    """A heartbeat in ``HEARD_FIELDS`` order, or ``InvalidPosition``: the rules of a fix for
    each field it has (``lat`` and ``lon``, which it does not need, are not read)."""
    marker_id = data.get("marker_id")
    if type(marker_id) is not str or _MARKER_ID_MATCH(marker_id) is None:
        _reject_marker_id(marker_id)
    time_us = _time_us(data.get("time"))
    if time_us > now_us + MAX_FUTURE_US:
        _reject_future(time_us, now_us)
    battery = data.get("battery")
    if battery is not None:
        low, high = OPTIONAL_RANGES["battery"]
        battery = _number("battery", battery, low, high, required=False)
    source, attributes = data.get("source"), data.get("attributes")
    return [marker_id, time_us, battery, None if source is None else checked_source(source),
            None if attributes is None else checked_attributes(attributes)]


def parse_fields(data: Mapping[str, Any], now_us: int) -> list:
    """The rules: a fix in ``FIX_FIELDS`` order, or ``InvalidPosition``."""
    get = data.get
    marker_id = get("marker_id")
    if type(marker_id) is not str or _MARKER_ID_MATCH(marker_id) is None:
        _reject_marker_id(marker_id)
    lat = get("lat")
    if type(lat) is not float or not -90.0 <= lat <= 90.0:
        lat = _number("lat", lat, -90.0, 90.0, required=True)
    lon = get("lon")
    if type(lon) is not float or not -180.0 <= lon <= 180.0:
        lon = _number("lon", lon, -180.0, 180.0, required=True)
    time_us = get("time")
    if type(time_us) is not int or not 0 <= time_us <= _MAX_TIME_MS:
        time_us = _time_us(time_us)
    elif time_us <= EPOCH_MILLIS_ABOVE:  # seconds
        time_us *= 1_000_000
    else:  # milliseconds
        time_us *= 1_000
    if time_us > now_us + MAX_FUTURE_US:
        _reject_future(time_us, now_us)
    fix = [marker_id, time_us, lat, lon]
    for name, low, high in _OPTIONAL:
        value = get(name)
        if value is not None and (type(value) is not float or not low <= value <= high):
            value = _number(name, value, low, high, required=False)
        fix.append(value)
    source = get("source")
    fix.append(None if source is None else checked_source(source))
    attributes = get("attributes")
    fix.append(None if attributes is None else checked_attributes(attributes))
    return fix


def parse_time(value: Any, *, now: datetime | None = None,
               max_future: timedelta | None = MAX_FUTURE) -> datetime:
    """Epoch seconds, epoch milliseconds or ISO 8601 (naive means UTC) to an aware UTC datetime.

    A time more than ``max_future`` after ``now`` is refused (``None``: no limit).
    """
    moment = time_of(_time_us(value))
    if max_future is not None:
        now = now or datetime.now(timezone.utc)
        if moment > now + max_future:
            _reject_future(micros_of(moment), micros_of(now), max_future)
    return moment


def _reject_future(time_us: int, now_us: int, allowance: timedelta = MAX_FUTURE) -> None:
    """Code ``future``: the same for the HTTP answer, the command line and the dead letter."""
    minutes = allowance.total_seconds() / 60
    raise InvalidPosition("future", f"time {format_micros(time_us)} is more than {minutes:g} min "
                                    f"ahead of its receipt ({format_micros(now_us)})")


def _time_us(value: Any) -> int:
    """Any accepted form of ``time`` as microseconds since the epoch."""
    if value is None:
        raise InvalidPosition("missing_field", "time is required")
    if isinstance(value, bool):
        raise InvalidPosition("wrong_type", "time must be a number or an ISO 8601 string")
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)
    if isinstance(value, int):
        if value < 0:
            raise InvalidPosition("out_of_range", f"time {value} is before 1970")
        time_us = value * 1_000 if value > EPOCH_MILLIS_ABOVE else value * 1_000_000
        if time_us > MAX_TIME_US:
            raise InvalidPosition("out_of_range", f"time {value} is too far in the future")
        return time_us
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidPosition("not_finite", "time must be finite")
        seconds = value / 1000.0 if value > EPOCH_MILLIS_ABOVE else value
        if seconds < 0:
            raise InvalidPosition("out_of_range", f"time {value} is before 1970")
        try:
            time_us = timedelta(seconds=seconds) // MICROSECOND
        except OverflowError:
            raise InvalidPosition("out_of_range", f"time {value} is too far in the future") from None
        if time_us > MAX_TIME_US:
            raise InvalidPosition("out_of_range", f"time {value} is too far in the future")
        return time_us
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidPosition("bad_time", f"time {value[:40]!r} is not ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError:
            raise InvalidPosition("out_of_range", f"time {value[:40]!r} is outside the calendar") from None
        if moment < EPOCH:
            raise InvalidPosition("out_of_range", f"time {value[:40]!r} is before 1970")
        return micros_of(moment)
    raise InvalidPosition("wrong_type", "time must be a number or an ISO 8601 string")


def _decode(raw: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    try:
        data = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise InvalidPosition("not_json", f"not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise InvalidPosition("not_object", f"expected a JSON object, got {type(data).__name__}")
    return data


def _reject_marker_id(value: Any) -> None:
    if value is None:
        raise InvalidPosition("missing_field", "marker_id is required")
    raise InvalidPosition("bad_marker_id", f"marker_id must be {MARKER_ID_RULE}")


def _number(name: str, value: Any, low: float, high: float, *, required: bool) -> float | None:
    if value is None:
        if required:
            raise InvalidPosition("missing_field", f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidPosition("wrong_type", f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidPosition("not_finite", f"{name} is too large") from None
    if not math.isfinite(number):
        raise InvalidPosition("not_finite", f"{name} must be finite")
    if not low <= number <= high:
        raise InvalidPosition("out_of_range", f"{name} {number} is outside [{low:g}, {high:g}]")
    return number


def checked_source(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_SOURCE_LENGTH or not value.isprintable():
        raise InvalidPosition(
            "wrong_type", f"source must be printable text of at most {MAX_SOURCE_LENGTH} characters"
        )
    return value


def checked_attributes(value: Any) -> dict[str, Any] | None:
    """Free-form extras a device sends (e.g. ``charge``, ``odometer``): flat and bounded."""
    if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
        raise InvalidPosition("wrong_type", f"attributes must be an object of at most {MAX_ATTRIBUTES} entries")
    for name, item in value.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_ATTRIBUTE_NAME or "\x00" in name:
            raise InvalidPosition("wrong_type", f"attribute names must be 1 to {MAX_ATTRIBUTE_NAME} characters")
        if isinstance(item, str):
            if len(item) > MAX_ATTRIBUTE_TEXT:
                raise InvalidPosition("wrong_type", f"attribute {name!r} is longer than {MAX_ATTRIBUTE_TEXT} characters")
            if "\x00" in item:
                raise InvalidPosition("wrong_type", f"attribute {name!r} contains a NUL character")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidPosition("not_finite", f"attribute {name!r} must be finite")
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise InvalidPosition("wrong_type", f"attribute {name!r} must be text, a number, true/false or null")
    return dict(value) or None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
