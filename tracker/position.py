"""The position model and the one validation function that every entry point uses.

A position is accepted as a JSON object (bytes or text) or as an already decoded mapping:

    {"marker_id": str, "lat": float, "lon": float,
     "time": epoch seconds | epoch milliseconds | ISO 8601 string,
     "speed"?: m/s, "heading"?: degrees, "altitude"?: m, "accuracy"?: m,
     "battery"?: %, "source"?: str, "attributes"?: {name: text | number | bool | null}}

``parse_position`` returns a ``Position`` or raises ``InvalidPosition`` with a short
machine-readable code and a message meant for a person.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import orjson

MARKER_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_FUTURE = timedelta(hours=24)
#: Epoch numbers above this are milliseconds (the same rule as the OsmAnd protocol).
EPOCH_MILLIS_ABOVE = 2**31 - 1
MAX_SOURCE_LENGTH = 64
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_TEXT = 256
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Optional numeric fields and their inclusive ranges.
OPTIONAL_RANGES: dict[str, tuple[float, float]] = {
    "speed": (0.0, 1_000.0),  # m/s
    "heading": (0.0, 360.0),  # degrees from north
    "altitude": (-12_000.0, 100_000.0),  # m
    "accuracy": (0.0, 1_000_000.0),  # m
    "battery": (0.0, 100.0),  # %
}


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


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when there are some."""
    text = moment.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def parse_position(raw: bytes | str | Mapping[str, Any], *, now: datetime | None = None) -> Position:
    """Validate one record; raise ``InvalidPosition`` saying what is wrong."""
    data = _decode(raw)
    now = now or datetime.now(timezone.utc)
    marker_id = _marker_id(data)
    lat = _number(data, "lat", required=True)
    lon = _number(data, "lon", required=True)
    _check_range("lat", lat, -90.0, 90.0)
    _check_range("lon", lon, -180.0, 180.0)
    time = parse_time(data.get("time"), now=now)
    optional = {}
    for name, (low, high) in OPTIONAL_RANGES.items():
        value = _number(data, name, required=False)
        if value is not None:
            _check_range(name, value, low, high)
        optional[name] = value
    return Position(marker_id=marker_id, lat=lat, lon=lon, time=time, source=_source(data),
                    attributes=_attributes(data), **optional)


def parse_time(value: Any, *, now: datetime | None = None,
               max_future: timedelta | None = MAX_FUTURE) -> datetime:
    """Epoch seconds, epoch milliseconds or ISO 8601 (naive means UTC) to an aware UTC datetime.

    A time more than ``max_future`` after ``now`` is refused (``None``: no limit).
    """
    if value is None:
        raise InvalidPosition("missing_field", "time is required")
    if isinstance(value, bool):
        raise InvalidPosition("wrong_type", "time must be a number or an ISO 8601 string")
    if isinstance(value, str) and _looks_numeric(value):
        value = float(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidPosition("not_finite", "time must be finite")
        seconds = value / 1000.0 if value > EPOCH_MILLIS_ABOVE else float(value)
        if seconds < 0:
            raise InvalidPosition("out_of_range", f"time {value} is before 1970")
        try:
            moment = EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            raise InvalidPosition("out_of_range", f"time {value} is too far in the future") from None
    elif isinstance(value, str):
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
    else:
        raise InvalidPosition("wrong_type", "time must be a number or an ISO 8601 string")
    if max_future is not None and moment > (now or datetime.now(timezone.utc)) + max_future:
        raise InvalidPosition("future_time", f"time {format_time(moment)} is more than 24 h ahead")
    return moment


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


def _marker_id(data: Mapping[str, Any]) -> str:
    value = data.get("marker_id")
    if value is None:
        raise InvalidPosition("missing_field", "marker_id is required")
    if not isinstance(value, str) or not MARKER_ID_PATTERN.fullmatch(value):
        raise InvalidPosition(
            "bad_marker_id", "marker_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -"
        )
    return value


def _number(data: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = data.get(name)
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
    return number


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InvalidPosition("out_of_range", f"{name} {value} is outside [{low:g}, {high:g}]")


def _source(data: Mapping[str, Any]) -> str | None:
    value = data.get("source")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SOURCE_LENGTH or not value.isprintable():
        raise InvalidPosition(
            "wrong_type", f"source must be printable text of at most {MAX_SOURCE_LENGTH} characters"
        )
    return value


def _attributes(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """Free-form extras a device sends (e.g. ``charge``, ``odometer``): flat and bounded."""
    value = data.get("attributes")
    if value is None:
        return None
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
