"""Simulated markers that move plausibly: they accelerate, turn, cruise and stop."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

from tracker.positions.geo import EARTH_RADIUS_M

MAX_SPEED_MS = 130 / 3.6


@dataclass
class SimulatedMarker:
    marker_id: str
    lat: float
    lon: float
    heading: float
    speed: float
    last_time: datetime | None = None
    battery: float = 100.0

    def step(self, seconds: float, rng: random.Random) -> None:
        if self.speed == 0.0 and rng.random() < 0.2:
            self.speed = rng.uniform(1.0, 5.0)  # pulls away
        elif rng.random() < 0.01:
            self.speed = 0.0  # stops
        else:
            self.speed = min(MAX_SPEED_MS, max(0.0, self.speed + rng.gauss(0.0, 1.5)))
        self.heading = (self.heading + rng.gauss(0.0, 15.0)) % 360.0
        distance = self.speed * seconds
        self.lat += math.degrees(distance * math.cos(math.radians(self.heading)) / EARTH_RADIUS_M)
        self.lat = max(-89.9, min(89.9, self.lat))
        scale = EARTH_RADIUS_M * max(0.01, math.cos(math.radians(self.lat)))
        self.lon += math.degrees(distance * math.sin(math.radians(self.heading)) / scale)
        self.lon = (self.lon + 180.0) % 360.0 - 180.0
        self.battery = max(0.0, self.battery - seconds * 0.001)

    def fix(self, now: datetime) -> dict:
        """The next position of this marker, its time strictly after the previous one."""
        if self.last_time is not None and now <= self.last_time:
            now = self.last_time + timedelta(milliseconds=1)
        self.last_time = now
        return self.snapshot(now)

    def snapshot(self, now: datetime) -> dict:
        """This marker's position, stamped ``now``."""
        return {
            "marker_id": self.marker_id,
            "lat": round(self.lat, 7),
            "lon": round(self.lon, 7),
            "time": now.isoformat().replace("+00:00", "Z"),
            "speed": round(self.speed, 2),
            "heading": round(self.heading, 1),
            "battery": round(self.battery, 1),
            "source": "simulator",
        }


def spawn(count: int, center: tuple[float, float], radius_km: float, rng: random.Random,
          prefix: str = "sim-") -> list[SimulatedMarker]:
    markers = []
    for index in range(count):
        distance = radius_km * 1000.0 * math.sqrt(rng.random())
        bearing = rng.uniform(0.0, 2 * math.pi)
        lat = center[0] + math.degrees(distance * math.cos(bearing) / EARTH_RADIUS_M)
        lon = center[1] + math.degrees(
            distance * math.sin(bearing) / (EARTH_RADIUS_M * math.cos(math.radians(center[0])))
        )
        markers.append(
            SimulatedMarker(f"{prefix}{index:05d}", lat, lon, rng.uniform(0, 360), rng.uniform(0, 20))
        )
    return markers


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Injection:
    duplicates: float = 0.0  # share of records that repeat an earlier record byte for byte
    out_of_order: float = 0.0  # share of records that are late fixes, older than the marker's last
    counts: dict[str, int] | None = None

    def __post_init__(self) -> None:
        self.counts = {"fresh": 0, "duplicate": 0, "late": 0}


def records(markers: list[SimulatedMarker], rate: float, total: int, start: datetime,
            rng: random.Random, injection: Injection):
    """``total`` (seconds after start, key, value) records, round-robin over the markers.

    Fix times follow the schedule (``start`` + send offset), so each marker's times rise,
    except for the injected duplicates and late fixes.
    """
    step = len(markers) / rate  # seconds between two fixes of one marker
    previous: dict[str, bytes] = {}
    for index in range(total):
        due = index / rate
        marker = markers[index % len(markers)]
        key = marker.marker_id.encode()
        roll = rng.random()
        if marker.marker_id in previous and roll < injection.duplicates:
            injection.counts["duplicate"] += 1
            yield due, key, previous[marker.marker_id]
            continue
        if marker.last_time is not None and roll < injection.duplicates + injection.out_of_order:
            late = marker.snapshot(marker.last_time - timedelta(seconds=rng.uniform(1, 30)))
            injection.counts["late"] += 1
            yield due, key, orjson.dumps(late)
            continue
        marker.step(step, rng)
        value = orjson.dumps(marker.fix(start + timedelta(seconds=due)))
        previous[marker.marker_id] = value
        injection.counts["fresh"] += 1
        yield due, key, value


