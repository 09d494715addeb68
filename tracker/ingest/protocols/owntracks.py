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

from tracker.positions.model import InvalidPosition, format_time, parse_time
from tracker.ingest.protocols import allowed_attributes, known, number

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


def friend_topic(marker_id: str) -> str:
    """The topic a friend is known by on the phone (its user and device are its marker id)."""
    return f"owntracks/{marker_id}/{marker_id}"


def tracker_id(marker_id: str, name: str | None) -> str:
    """The two characters the app shows on a friend's pin: of its name, else of its id."""
    letters = [c for c in (name or marker_id) if c.isalnum()] or list(marker_id)
    return "".join(letters[:2]).upper()


def friend_messages(row: list, topic: str | None = None) -> list[dict[str, Any]]:
    """A friend's newest fix (a ``tracker.positions.live_hub`` row) as the app takes it: a
    ``location``, then a ``card`` with its name, both naming ``topic`` (by default
    ``friend_topic``, for an HTTP answer)."""
    marker_id, lat, lon, time_ms, speed, heading, battery = row[:7]
    name = row[9] if len(row) > 9 else None
    topic, tid = topic or friend_topic(marker_id), tracker_id(marker_id, name)
    location: dict[str, Any] = {"_type": "location", "topic": topic, "tid": tid, "lat": lat, "lon": lon,
                                "tst": time_ms // 1000}
    if speed is not None:
        location["vel"] = round(speed * 3.6)
    if heading is not None:
        location["cog"] = round(heading)
    if battery is not None:
        location["batt"] = round(battery)
    return [location, {"_type": "card", "topic": topic, "tid": tid, "name": name or marker_id}]
