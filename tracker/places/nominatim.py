"""Countries and cities of coordinates from a Nominatim server the user runs
(``TRACKER_NOMINATIM_URL``): ``GET /reverse?format=jsonv2&zoom=10`` for each, a few at a
time, answers kept for a day in memory. Nothing is asked when the setting is empty.
"""
from __future__ import annotations

import asyncio
import time

import aiohttp

from tracker.places.offline import Place

ZOOM = 10  # a city
AT_ONCE = 4
KEEP_SECONDS = 86_400.0
MAX_KEPT = 100_000
TIMEOUT = aiohttp.ClientTimeout(total=10)
CITY_KEYS = ("city", "town", "village", "municipality", "hamlet", "county")

_kept: dict[tuple[float, float], tuple[float, Place]] = {}


def place_of(answer: dict) -> Place:
    address = answer.get("address") or {}
    city = next((address[key] for key in CITY_KEYS if address.get(key)), answer.get("name") or "")
    return Place(str(address.get("country_code", "")).upper(), address.get("country", ""), city,
                 address.get("state", ""))


async def places(url: str, coordinates: list[tuple[float, float]]) -> list[Place]:
    """The place of each (lat, lon), in order; a coordinate the server cannot place gets an
    empty ``Place``. Raises ``aiohttp.ClientError`` when the server cannot be reached."""
    gate = asyncio.Semaphore(AT_ONCE)
    now = time.monotonic()

    async def one(session: aiohttp.ClientSession, lat: float, lon: float) -> Place:
        kept = _kept.get((lat, lon))
        if kept is not None and now - kept[0] < KEEP_SECONDS:
            return kept[1]
        async with gate:
            async with session.get(f"{url}/reverse", params={"format": "jsonv2", "lat": f"{lat:.5f}",
                                                              "lon": f"{lon:.5f}", "zoom": str(ZOOM),
                                                              "addressdetails": "1"}) as response:
                response.raise_for_status()
                answer = await response.json(content_type=None)
        found = place_of(answer) if isinstance(answer, dict) and "error" not in answer else Place("", "", "")
        if len(_kept) >= MAX_KEPT:
            _kept.clear()
        _kept[(lat, lon)] = (now, found)
        return found

    async with aiohttp.ClientSession(timeout=TIMEOUT, headers={"User-Agent": "gps-tracker"}) as session:
        return list(await asyncio.gather(*(one(session, lat, lon) for lat, lon in coordinates)))
