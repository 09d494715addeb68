"""Simulated markers that move plausibly: they accelerate, turn, cruise and stop."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

EARTH_RADIUS_M = 6_371_000.0
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
