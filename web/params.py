"""Query parameters and JSON bodies, parsed strictly: a bad one is a 400 that says why."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from typing import Any, Sequence

import orjson

from tracker.positions.model import MARKER_ID_PATTERN, MARKER_ID_RULE, InvalidPosition, parse_time
from web.errors import BadRequest, UnsupportedMediaType


class BadParameter(BadRequest):
    def __init__(self, name: str, message: str) -> None:
        super().__init__("bad_parameter", message, parameter=name)
        self.name = name


#: The latest time a query may name: a day's arithmetic past it would leave the calendar.
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)


def time_param(query: Any, name: str, default: datetime | None) -> datetime | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        moment = parse_time(raw, max_future=None)
    except InvalidPosition as exc:
        raise BadParameter(name, f"{exc.message}; use ISO 8601 or epoch seconds") from None
    if moment > LATEST:
        raise BadParameter(name, "must be before 9999-12-30")
    return moment


def int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"{raw[:20]!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}")
    return value


def choice_param(query: Any, name: str, default: str, choices: Sequence[str]) -> str:
    raw = query.get(name) or default
    if raw not in choices:
        raise BadParameter(name, f"must be one of {', '.join(choices)}")
    return raw


def bbox_param(query: Any) -> tuple[float, float, float, float] | None:
    raw = query.get("bbox")
    if raw is None or raw == "":
        return None
    try:
        min_lon, min_lat, max_lon, max_lat = (float(part) for part in raw.split(","))
    except ValueError:
        raise BadParameter("bbox", "expected minLon,minLat,maxLon,maxLat") from None
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise BadParameter("bbox", "expected minLon <= maxLon in [-180, 180] and minLat <= maxLat in [-90, 90]")
    return min_lon, min_lat, max_lon, max_lat


def marker_id_param(marker_id: str) -> str:
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise BadRequest("bad_marker_id", f"marker_id must be {MARKER_ID_RULE}")
    return marker_id


async def json_object(request: Any, max_bytes: int, shape: str) -> dict:
    """The request's body, a JSON object of at most ``max_bytes``; ``shape`` shows what is
    expected, for the 400 that refuses anything else. Only ``Content-Type: application/json``
    (or ``…+json``) is read: another site's page can send a form or text anywhere without
    asking, but not JSON, so a body of another type is refused (415)."""
    content_type = request.content_type.lower()
    if content_type != "application/json" and not (content_type.startswith("application/")
                                                   and content_type.endswith("+json")):
        raise UnsupportedMediaType("not_json", f"send the body as Content-Type: application/json, not "
                                               f"{content_type[:60] or 'no type'}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest("too_large", f"the body is larger than {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    while len(raw) <= max_bytes and (more := await request.content.read(max_bytes + 1 - len(raw))):
        raw += more  # a body split over several packets
    if len(raw) > max_bytes:
        raise BadRequest("too_large", f"the body is larger than {max_bytes} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("not_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("not_an_object", f"the body must be an object: {shape}")
    return body


#: The longest time zone name asked for (IANA's are under 40 characters).
TZ_MAX = 64


def zone_param(query) -> str:
    """``tz``: an IANA time zone name, UTC by default; a 400 otherwise."""
    tz = query.get("tz") or "UTC"
    try:
        if len(tz) > TZ_MAX:
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name the file system refuses
        raise BadParameter("tz", f"{tz[:40]!r} is not a time zone; use an IANA name such as Europe/Paris") from None
    return tz
