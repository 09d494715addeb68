"""``FixLog``: a marker's last fixes, as the events model keeps them to place late fixes.

For each fix, oldest first: its time (µs), the geofences holding it, and its coordinates in
units of 1e-7 degree (a fix sent with up to 7 decimals comes back exactly). The log is kept
column by column in arrays of machine integers: a marker's whole log is stored again at
every step, and five contiguous arrays copy out in a few ``tobytes`` calls, where a list of
lists was some eighty small objects scattered over the heap for the encoder to walk.
"""
from __future__ import annotations

from array import array
from typing import Iterable

#: Coordinates in the log are integers of this many per degree.
E7 = 10_000_000


class FixLog:
    """``times`` (int64, sorted), ``lats`` and ``lons`` (int32, 1e-7 degree), ``counts``
    (uint16: how many geofences held each fix) and ``ids`` (int64: those geofences' ids,
    fix after fix)."""

    __slots__ = ("times", "lats", "lons", "counts", "ids")

    def __init__(self, times: array | None = None, lats: array | None = None, lons: array | None = None,
                 counts: array | None = None, ids: array | None = None) -> None:
        self.times = array("q") if times is None else times
        self.lats = array("i") if lats is None else lats
        self.lons = array("i") if lons is None else lons
        self.counts = array("H") if counts is None else counts
        self.ids = array("q") if ids is None else ids

    @classmethod
    def of_rows(cls, rows: Iterable[list]) -> "FixLog":
        """A log from rows ``[time_us, [geofence ids], lat_e7, lon_e7]`` (the JSON form; the
        earliest versions stored the coordinates in degrees, as floats)."""
        log = cls()
        for t, ids, lat, lon in rows:
            log.times.append(t)
            log.lats.append(lat if isinstance(lat, int) else round(lat * E7))
            log.lons.append(lon if isinstance(lon, int) else round(lon * E7))
            log.counts.append(len(ids))
            log.ids.extend(ids)
        return log

    def rows(self) -> list[list]:
        """The log as rows ``[time_us, [geofence ids], lat_e7, lon_e7]``, oldest first."""
        return [[t, self.geofences(i), lat, lon]
                for i, (t, lat, lon) in enumerate(zip(self.times, self.lats, self.lons))]

    def __len__(self) -> int:
        return len(self.times)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FixLog):
            return NotImplemented
        return (self.times == other.times and self.lats == other.lats and self.lons == other.lons
                and self.counts == other.counts and self.ids == other.ids)

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"FixLog({self.rows()!r})"

    def geofences(self, i: int) -> list[int]:
        """The ids of the geofences that held fix ``i``."""
        count = self.counts[i]
        if not count:
            return []
        start = sum(self.counts[:i])
        return self.ids[start:start + count].tolist()

    def append(self, t: int, ids: list[int], lat_e7: int, lon_e7: int, keep: int) -> None:
        """Add the newest fix; keep the newest ``keep``."""
        self.times.append(t)
        self.lats.append(lat_e7)
        self.lons.append(lon_e7)
        self.counts.append(len(ids))
        if ids:
            self.ids.extend(ids)
        if len(self.times) > keep:
            self._drop_oldest()

    def insert(self, at: int, t: int, ids: list[int], lat_e7: int, lon_e7: int, keep: int) -> None:
        """Add a fix before fix ``at``; keep the newest ``keep``."""
        if ids:
            start = sum(self.counts[:at])
            self.ids[start:start] = array("q", ids)
        self.times.insert(at, t)
        self.lats.insert(at, lat_e7)
        self.lons.insert(at, lon_e7)
        self.counts.insert(at, len(ids))
        while len(self.times) > keep:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        count = self.counts[0]
        del self.times[0], self.lats[0], self.lons[0], self.counts[0]
        if count:
            del self.ids[:count]
