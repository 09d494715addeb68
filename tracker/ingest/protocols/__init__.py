"""What phone apps send, turned into ``gps.positions`` records (the topic's JSON contract).

Each converter returns plain dicts in the contract's units (speed in m/s, battery in %);
``tracker.positions.model.parse_report`` then validates them like any other record. A report
without usable coordinates (a phone standing still, one that knows only the cell towers
and Wi-Fi networks around it) becomes a heartbeat (``heartbeat``): it keeps the marker
alive, with its battery and alarms, and is never a position.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

from datetime import datetime

from tracker.positions.model import HEARTBEAT, MAX_ATTRIBUTE_TEXT, InvalidPosition, format_time, parse_time


def number(value: Any, name: str) -> float | None:
    """A number from JSON or from a query string; '' and null mean absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidPosition("wrong_type", f"{name} must be a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise InvalidPosition("wrong_type", f"{name} must be a number, got {str(value)[:20]!r}") from None
    if not math.isfinite(result):
        raise InvalidPosition("not_finite", f"{name} must be finite")
    return result


def known(value: float | None) -> float | None:
    """Apps report an unknown speed or heading as a negative number."""
    return None if value is None or value < 0 else value


def allowed_attributes(items: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """The plain values (text, number, true/false) of the names in ``allowed``; nothing else.

    An allow-list rather than a list of what to drop: an app, or a person editing its server
    URL, can put anything into a request (a password, an API key, a note, the name of a
    home network), and attributes are stored for good and shown to everyone who may see the
    marker. Only values whose meaning is known are kept.
    """
    kept = {}
    for name in allowed:
        value = items.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, str):
            kept[name] = value[:MAX_ATTRIBUTE_TEXT]
        elif isinstance(value, (bool, int, float)):
            kept[name] = value
    return kept


def flag(value: str | bool) -> bool:
    """A true/false as Traccar Client and trackers write it: in a query string, or as JSON."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def report_time(value: Any, now: datetime) -> int | float | str:
    """A report's time as the topic takes it: an epoch number as it is (the topic reads it as
    OsmAnd and OwnTracks mean it: seconds, milliseconds above 2^31 - 1), anything else as
    ISO 8601 UTC (``InvalidPosition`` if it is no time); missing: ``now``. The one
    validation checks the rest (before 1970, ahead of its receipt)."""
    if value is None or value == "":
        return format_time(now)
    if type(value) is int or type(value) is float:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return format_time(parse_time(value, max_future=None))


def missing(value: Any) -> bool:
    """Whether a coordinate is absent ('' and null as well)."""
    return value is None or value == ""


def heartbeat(marker_id: str, time: str, battery: float | None, source: str,
              attributes: dict[str, Any] | None) -> dict[str, Any]:
    """A report without a position, as the topic carries it (``tracker.positions.model.HEARTBEAT``)."""
    return {"kind": HEARTBEAT, "marker_id": marker_id, "time": time, "battery": battery, "source": source,
            "attributes": attributes or None}


#: Many reports of one request: (each element as sent, its record or why it is none).
Converted = list[tuple[Any, "dict[str, Any] | InvalidPosition"]]


def each(convert: Callable[[], dict[str, Any]]) -> "dict[str, Any] | InvalidPosition":
    """``convert()``, or the reason it refused: one element of many, judged on its own."""
    try:
        return convert()
    except InvalidPosition as error:
        return error
