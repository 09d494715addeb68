"""OwnTracks in HTTP mode: ``{"_type": "location", "lat", "lon", "tst" (epoch s), "acc",
"alt", "vel" (km/h), "cog", "batt", "tid", ...}``. Other ``_type`` values carry no position."""
from __future__ import annotations

from typing import Any

from tracker.position import InvalidPosition, format_time, parse_time
from tracker.protocols import known, number, scalar_attributes

SOURCE = "owntracks"
FIELDS = {"_type", "lat", "lon", "tst", "acc", "alt", "vel", "cog", "batt"}


def is_location(body: Any) -> bool:
    return isinstance(body, dict) and body.get("_type") == "location"


def from_location(body: dict[str, Any], marker_id: str) -> dict[str, Any]:
    if body.get("tst") in (None, ""):
        raise InvalidPosition("missing_field", "tst is required")
    velocity = known(number(body.get("vel"), "vel"))
    return {
        "marker_id": marker_id,
        "lat": number(body.get("lat"), "lat"),
        "lon": number(body.get("lon"), "lon"),
        "time": format_time(parse_time(body["tst"], max_future=None)),
        "speed": None if velocity is None else velocity / 3.6,
        "heading": known(number(body.get("cog"), "cog")),
        "altitude": number(body.get("alt"), "alt"),
        "accuracy": known(number(body.get("acc"), "acc")),
        "battery": known(number(body.get("batt"), "batt")),
        "source": SOURCE,
        "attributes": scalar_attributes(body, FIELDS) or None,
    }
