"""One plausible recorded track, written as each app that ``tracker import`` reads writes it.

``track`` is a vehicle at 0 to 30 m/s, turning gently, stopping now and then, one fix a
second, with elevations; each writer of ``WRITERS`` puts it in a file in its format, as a
stream, and returns how many points the import should send. ``write_records_json`` writes a
Google Takeout ``Records.json`` of a given size in bytes.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import orjson


class Fix(NamedTuple):
    time: datetime
    lat: float
    lon: float
    ele: float
    speed: float
    heading: float


def track(points: int, start: datetime, seed: int = 1) -> list[Fix]:
    """``points`` fixes, one a second from ``start``."""
    return list(_moving(points, start, seed))


def _moving(points: int, start: datetime, seed: int) -> Iterator[Fix]:
    rng = random.Random(seed)
    lat, lon, ele, heading, speed = 45.80, 15.97, 120.0, rng.uniform(0, 360), 0.0
    stop_left = 0
    for i in range(points):
        yield Fix(start + timedelta(seconds=i), round(lat, 7), round(lon, 7), round(ele, 1), round(speed, 2),
                  round(heading, 1))
        if stop_left:  # standing at a light
            stop_left -= 1
            speed = 0.0
        elif rng.random() < 0.002:
            stop_left = rng.randrange(10, 60)
        else:
            speed = min(30.0, max(0.0, speed + rng.uniform(-1.0, 1.2)))
            heading = (heading + rng.gauss(0, 4)) % 360
        lat += speed * math.cos(math.radians(heading)) / 111_195.0
        lon += speed * math.sin(math.radians(heading)) / (111_195.0 * math.cos(math.radians(lat)))
        ele = min(2_000.0, max(0.0, ele + rng.uniform(-0.3, 0.3)))
    return


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def write_gpx(path: Path, fixes: list[Fix]) -> int:
    with open(path, "w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="bench" '
                  'xmlns="http://www.topografix.com/GPX/1/1">\n<trk><name>bench</name><trkseg>\n')
        for f in fixes:
            out.write(f'<trkpt lat="{f.lat:.7f}" lon="{f.lon:.7f}"><ele>{f.ele:.1f}</ele>'
                      f'<time>{_iso(f.time)}</time></trkpt>\n')
        out.write("</trkseg></trk>\n</gpx>\n")
    return len(fixes)


def write_kml(path: Path, fixes: list[Fix]) -> int:
    with open(path, "w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2" '
                  'xmlns:gx="http://www.google.com/kml/ext/2.2"><Document><Folder><Placemark><gx:Track>\n')
        out.writelines(f"<when>{_iso(f.time)}</when>\n" for f in fixes)
        out.writelines(f"<gx:coord>{f.lon} {f.lat} {f.ele}</gx:coord>\n" for f in fixes)
        out.write("</gx:Track></Placemark></Folder></Document></kml>\n")
    return len(fixes)


def write_tcx(path: Path, fixes: list[Fix]) -> int:
    with open(path, "w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<TrainingCenterDatabase '
                  'xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"><Activities>'
                  f'<Activity Sport="Biking"><Id>{_iso(fixes[0].time)}</Id><Lap><Track>\n')
        for i, f in enumerate(fixes):
            out.write(f"<Trackpoint><Time>{_iso(f.time)}</Time><Position><LatitudeDegrees>{f.lat}</LatitudeDegrees>"
                      f"<LongitudeDegrees>{f.lon}</LongitudeDegrees></Position><AltitudeMeters>{f.ele}</AltitudeMeters>"
                      f"<HeartRateBpm><Value>{110 + i % 40}</Value></HeartRateBpm></Trackpoint>\n")
        out.write("</Track></Lap></Activity></Activities></TrainingCenterDatabase>\n")
    return len(fixes)


def write_geojson(path: Path, fixes: list[Fix]) -> int:
    feature = {"type": "Feature", "properties": {"coordTimes": [_iso(f.time) for f in fixes]},
               "geometry": {"type": "LineString", "coordinates": [[f.lon, f.lat, f.ele] for f in fixes]}}
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [feature]}))
    return len(fixes)


def write_csv(path: Path, fixes: list[Fix]) -> int:
    with open(path, "w") as out:
        out.write("time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider,battery\n")
        out.writelines(f"{f.time:%Y-%m-%dT%H:%M:%S}.000Z,{f.lat},{f.lon},{f.ele},5.0,{f.heading},{f.speed},9,gps,80\n"
                       for f in fixes)
    return len(fixes)


def write_overland(path: Path, fixes: list[Fix]) -> int:
    """Batches of 200 locations, one a line, as a receiver saves the app's requests."""
    with open(path, "wb") as out:
        for start in range(0, len(fixes), 200):
            batch = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                      "properties": {"timestamp": _iso(f.time), "altitude": f.ele, "speed": f.speed,
                                     "horizontal_accuracy": 5, "vertical_accuracy": 3, "motion": ["driving"],
                                     "battery_state": "unplugged", "battery_level": 0.8, "wifi": ""}}
                     for f in fixes[start:start + 200]]
            out.write(orjson.dumps({"locations": batch}) + b"\n")
    return len(fixes)


def _record(f: Fix, i: int) -> bytes:
    record = {"latitudeE7": round(f.lat * 1e7), "longitudeE7": round(f.lon * 1e7), "accuracy": 5 + i % 20,
              "velocity": round(f.speed), "heading": round(f.heading), "altitude": round(f.ele),
              "verticalAccuracy": 3, "source": "GPS", "deviceTag": 1234567890, "platformType": "ANDROID"}
    if i % 5 == 0:
        record["activity"] = [{"timestamp": _iso(f.time), "activity": [{"type": "IN_VEHICLE", "confidence": 80},
                                                                        {"type": "STILL", "confidence": 20}]}]
    record["timestamp"] = f"{f.time:%Y-%m-%dT%H:%M:%S}.{i % 1000:03d}Z"
    return orjson.dumps(record, option=orjson.OPT_INDENT_2)


def write_records(path: Path, fixes: list[Fix]) -> int:
    with open(path, "wb") as out:
        out.write(b'{\n  "locations": [')
        out.write(b", ".join(_record(f, i) for i, f in enumerate(fixes)))
        out.write(b"]\n}\n")
    return len(fixes)


def write_records_json(path: Path, size: int, start: datetime) -> int:
    """A Records.json of at least ``size`` bytes, one fix a second from ``start``, written as
    it goes; returns its records."""
    count = written = 0
    with open(path, "wb") as out:
        written += out.write(b'{\n  "locations": [')
        chunk = 10_000
        while written < size:
            fixes = track(chunk, start + timedelta(seconds=count), seed=count)
            data = b", ".join(_record(f, count + i) for i, f in enumerate(fixes))
            written += out.write((b", " if count else b"") + data)
            count += chunk
        out.write(b"]\n}\n")
    return count


def write_timeline(path: Path, fixes: list[Fix]) -> int:
    """The phone's Timeline export: a timelinePath segment per 120 fixes."""
    segments = []
    for start in range(0, len(fixes), 120):
        part = fixes[start:start + 120]
        segments.append({"startTime": part[0].time.isoformat(), "endTime": part[-1].time.isoformat(),
                         "timelinePath": [{"point": f"{f.lat}°, {f.lon}°", "time": f.time.isoformat()}
                                          for f in part]})
    path.write_bytes(orjson.dumps({"semanticSegments": segments, "rawSignals": [], "userLocationProfile": {}}))
    return len(fixes)


def write_rec(path: Path, fixes: list[Fix]) -> int:
    with open(path, "wb") as out:
        for f in fixes:
            body = {"_type": "location", "tst": int(f.time.timestamp()), "lat": f.lat, "lon": f.lon,
                    "vel": round(f.speed * 3.6), "cog": round(f.heading), "alt": round(f.ele), "acc": 5,
                    "batt": 80, "tid": "bn"}
            out.write(f"{_iso(f.time)}\t*                 \t".encode() + orjson.dumps(body) + b"\n")
    return len(fixes)


#: name: (suffix, writer)
WRITERS: dict[str, tuple[str, Callable[[Path, list[Fix]], int]]] = {
    "GPX": (".gpx", write_gpx),
    "KML gx:Track": (".kml", write_kml),
    "TCX": (".tcx", write_tcx),
    "GeoJSON LineString": (".geojson", write_geojson),
    "CSV": (".csv", write_csv),
    "Overland batches": (".json", write_overland),
    "Google Takeout Records.json": (".json", write_records),
    "Google Timeline export": (".json", write_timeline),
    "OwnTracks .rec": (".rec", write_rec),
}
