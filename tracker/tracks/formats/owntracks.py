"""OwnTracks Recorder ``.rec`` files: lines ``<ISO time> <tag> <JSON>``, the parts apart by a
TAB (as the Recorder writes them) or by spaces (as older versions and hand-edited files do).

The objects of ``"_type": "location"`` are read: ``lat``, ``lon``, ``tst`` (epoch seconds),
``vel`` (km/h), ``cog``, ``alt``, ``acc``, ``batt``; other lines (``lwt``, ``transition``,
``waypoint``, ...) carry no position and are passed over. Kept as attributes, as the live
OwnTracks intake keeps them: ``tid``, ``t`` (what triggered the fix), ``conn``, ``bs``
(battery status), ``vac``, ``m`` (monitoring mode), ``p`` (pressure).
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

import orjson

from tracker.ingest.protocols import allowed_attributes
from tracker.ingest.protocols.owntracks import ATTRIBUTES
from tracker.tracks.files import BadPoint, Point, Reading, known, number, parse_point_time, place


def read_rec(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "OwnTracks Recorder"
    for index, raw in enumerate(stream, 1):
        line = raw.decode("utf-8").strip()
        if not line:
            continue
        where = f"line {index}"
        brace = line.find("{")
        if brace < 0 or len(line[:brace].split()) != 2:
            reading.skip("line not <time> <tag> <JSON>", where)
            continue
        try:
            body = orjson.loads(line[brace:])
        except orjson.JSONDecodeError:
            reading.skip("JSON not valid", where)
            continue
        if not isinstance(body, dict) or body.get("_type") != "location":
            continue
        try:
            point = _location(body)
        except BadPoint as exc:
            reading.skip(exc, where)
            continue
        yield point


def _location(body: dict) -> Point:
    point = place(body.get("lat"), body.get("lon"))
    if body.get("tst") not in (None, ""):
        point.time = parse_point_time(body["tst"])
    velocity = known(number(body.get("vel"), "vel"))
    point.speed = None if velocity is None else velocity / 3.6
    point.heading = known(number(body.get("cog"), "cog"))
    point.altitude = number(body.get("alt"), "alt")
    point.accuracy = known(number(body.get("acc"), "acc"))
    point.battery = known(number(body.get("batt"), "batt"))
    point.attributes = allowed_attributes(body, ATTRIBUTES) or None
    return point
