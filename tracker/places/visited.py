"""The countries and cities a marker visited: each place where it stopped, or started or
ended a trip, named by the reverse geocoder (``TRACKER_NOMINATIM_URL``'s server when set,
else the offline one), counted per city and per country with the first and last visit.

Coordinates are rounded to ``GRID`` degrees (about a kilometre) first: a year of stops at
the same few places costs a few lookups.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Iterable

from tracker.places import nominatim, offline
from tracker.settings import settings

GRID = 0.01


async def name_places(coordinates: list[tuple[float, float]]) -> list[offline.Place]:
    if settings.nominatim_url:
        return await nominatim.places(settings.nominatim_url, coordinates)
    return await asyncio.to_thread(offline.places, coordinates)


async def visited(points: Iterable[tuple[float, float, datetime]]) -> dict:
    """``points``: (lat, lon, when). ``{"countries": [...], "cities": [...]}``, most visited first."""
    by_cell: dict[tuple[float, float], list[datetime]] = {}
    for lat, lon, when in points:
        by_cell.setdefault((round(lat / GRID) * GRID, round(lon / GRID) * GRID), []).append(when)
    cells = list(by_cell)
    named = await name_places(cells)
    countries: dict[str, dict] = {}
    cities: dict[tuple[str, str], dict] = {}
    for cell, place in zip(cells, named):
        if not place.country_code and not place.city:
            continue
        times = by_cell[cell]
        for table, key, row in (
                (countries, place.country_code, {"code": place.country_code, "name": place.country}),
                (cities, (place.country_code, place.city),
                 {"name": place.city, "state": place.state, "country_code": place.country_code,
                  "country": place.country})):
            entry = table.setdefault(key, {**row, "visits": 0, "first": min(times), "last": max(times)})
            entry["visits"] += len(times)
            entry["first"] = min(entry["first"], min(times))
            entry["last"] = max(entry["last"], max(times))

    def ordered(rows) -> list[dict]:
        return sorted(rows, key=lambda row: (-row["visits"], row["name"]))

    return {"countries": ordered(countries.values()), "cities": ordered(cities.values())}
