"""OwnTracks in HTTP and MQTT mode: ``{"_type": "location", "lat", "lon", "tst" (epoch s, a
number or its text), "acc", "alt", "vel" (km/h), "cog", "batt", "tid", ...}``.

Which message types become what (``convert``):

- ``location``: a position; without ``lat`` and ``lon`` a heartbeat (its battery, no position);
- ``transition`` (entering or leaving a region) with ``lat``, ``lon`` and ``tst``: a position
  as well, where and when it happened (``event``, enter or leave, kept as an attribute);
- every other type (``MESSAGE_TYPES``: ``waypoint``, ``waypoints``, ``lwt``, ``card``,
  ``cmd``, ``beacon``, ``status``, ``steps``, ``request``, ``configuration``,
  ``encrypted``...) carries no position: it is accepted and counted, never refused, and so
  is a type this list does not know. OwnTracks reports no alarm.

Of the other fields only those in ``ATTRIBUTES`` are kept: ``tid`` (the two-letter label
the app shows), ``t`` (what triggered the report), ``conn`` (Wi-Fi, mobile or offline),
``bs`` (battery status: unplugged, charging, full), ``vac`` (vertical accuracy, m), ``m``
(monitoring mode) and ``p`` (air pressure, kPa). Dropped, among the rest: ``SSID`` and
``BSSID`` (the Wi-Fi network the phone is on names a home or a workplace, and access point
addresses are in public location databases), ``inregions``/``inrids`` and a transition's
``desc`` (the names of the user's own regions), ``topic`` (MQTT user and device names),
``tag``, ``poi`` and ``image`` (free text and photos), and any field a later app version adds.
"""
from __future__ import annotations

from typing import Any

from tracker.positions.model import InvalidPosition
from tracker.ingest.protocols import allowed_attributes, heartbeat, known, missing, number, report_time

SOURCE = "owntracks"
#: The message types the apps send (owntracks.org/booklet/tech/json), each counted by name;
#: anything else is counted as ``other``.
MESSAGE_TYPES = ("location", "transition", "waypoint", "waypoints", "lwt", "card", "cmd", "status", "steps",
                 "beacon", "request", "configuration", "encrypted")
#: Fields kept as attributes.
ATTRIBUTES = ("tid", "t", "conn", "bs", "vac", "m", "p")
#: What a transition keeps besides.
TRANSITION_ATTRIBUTES = ("tid", "t", "event")


def message_type(body: Any) -> str:
    """The message's type as counted: one of ``MESSAGE_TYPES``, else ``other``."""
    kind = body.get("_type") if isinstance(body, dict) else None
    return kind if kind in MESSAGE_TYPES else "other"


def is_location(body: Any) -> bool:
    return isinstance(body, dict) and body.get("_type") == "location"


def convert(body: Any, marker_id: str) -> dict[str, Any] | None:
    """What a message becomes on the topic: a position, a heartbeat, or None (stored nowhere)."""
    kind = message_type(body)
    if kind == "location":
        return from_location(body, marker_id)
    if kind == "transition" and not any(missing(body.get(name)) for name in ("lat", "lon", "tst")):
        record = from_location(body, marker_id)
        record["attributes"] = allowed_attributes(body, TRANSITION_ATTRIBUTES) or None
        return record
    return None


def from_location(body: dict[str, Any], marker_id: str) -> dict[str, Any]:
    if missing(body.get("tst")):
        raise InvalidPosition("missing_field", "tst is required")
    time = report_time(body["tst"], None)
    battery = known(number(body.get("batt"), "batt"))
    attributes = allowed_attributes(body, ATTRIBUTES) or None
    if missing(body.get("lat")) or missing(body.get("lon")):
        return heartbeat(marker_id, time, battery, SOURCE, attributes)
    velocity = known(number(body.get("vel"), "vel"))
    return {
        "marker_id": marker_id,
        "lat": number(body.get("lat"), "lat"),
        "lon": number(body.get("lon"), "lon"),
        "time": time,
        "speed": None if velocity is None else velocity / 3.6,
        "heading": known(number(body.get("cog"), "cog")),
        "altitude": number(body.get("alt"), "alt"),
        "accuracy": known(number(body.get("acc"), "acc")),
        "battery": battery,
        "source": SOURCE,
        "attributes": attributes,
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
