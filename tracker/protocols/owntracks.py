"""OwnTracks in HTTP mode: ``{"_type": "location", "lat", "lon", "tst" (epoch s), "acc",
"alt", "vel" (km/h), "cog", "batt", "tid", ...}``. Other ``_type`` values carry no position.

Of the other fields only those in ``ATTRIBUTES`` are kept: ``tid`` (the two-letter label
the app shows), ``t`` (what triggered the report), ``conn`` (Wi-Fi, mobile or offline),
``bs`` (battery status: unplugged, charging, full), ``vac`` (vertical accuracy, m), ``m``
(monitoring mode) and ``p`` (air pressure, kPa). Dropped, among the rest: ``SSID`` and
``BSSID`` (the Wi-Fi network the phone is on names a home or a workplace, and access point
addresses are in public location databases), ``inregions``/``inrids`` (the names of the
user's own regions, as lists), ``topic`` (MQTT user and device names), ``tag``, ``poi``
and ``image`` (free text and photos), and any field a later app version adds.
"""
from __future__ import annotations

from typing import Any

from tracker.position import InvalidPosition, format_time, parse_time
from tracker.protocols import allowed_attributes, known, number

SOURCE = "owntracks"
#: The other message types OwnTracks sends; over MQTT they are counted, not stored.
OTHER_TYPES = ("transition", "waypoint", "waypoints", "lwt", "card", "cmd", "status", "steps", "beacon", "encrypted")
#: Fields kept as attributes.
ATTRIBUTES = ("tid", "t", "conn", "bs", "vac", "m", "p")


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
        "attributes": allowed_attributes(body, ATTRIBUTES) or None,
    }
