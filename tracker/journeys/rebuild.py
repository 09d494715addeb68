"""Trips, stops and spike flags recomputed from Postgres history with the live motion model.

``recompute`` runs ``tracker.journeys.motion`` over one marker's fixes in time order and replaces
what it decided. For a range it starts at the last stop that began before the range (the
model finds the same journeys from there as from the beginning: see ``tracker.journeys.motion``)
and reads on past the range's end until everything that began inside it is finished. It
replaces the trips and stops that begin between that restart and the range's end and end
by the last fix read (a trip the live stage finished from fixes history does not hold yet
stays as it is), and the spike flags of the fixes read. At the end of the history, a trip
still open is ended if its last fix is older than the gap, as the live stage's timer ends
it (by the time the tracker heard the fix, which for an import is later than its time).

Used by the journeys sink's timer for the days late fixes made stale, and by ``tracker
journeys rebuild``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

import psycopg

from tracker.journeys import store
from tracker.journeys.motion import TRACK_BREAK, MotionState, Rules, Spike, Stop, Trip, advance, end_idle_trip

if TYPE_CHECKING:
    from tracker.geofences.model import GeofenceIndex

#: Rows read from Postgres at a time.
CHUNK = 20_000
BEGINNING = datetime(1, 1, 1, tzinfo=timezone.utc)
END_OF_TIME = datetime(9999, 12, 31, tzinfo=timezone.utc)

_RESTART = "SELECT max(start_time) FROM stops WHERE marker_id = %s AND start_time < %s"
_FIXES = ("SELECT (extract(epoch FROM fix_time) * 1000000)::int8, lat, lon, speed, "
          f"coalesce(attributes->'{TRACK_BREAK}' = 'true', false) FROM positions "
          "WHERE marker_id = %s AND fix_time >= %s ORDER BY fix_time")
_DELETE = {
    table: f"DELETE FROM {table} WHERE marker_id = %s AND start_time >= %s AND start_time < %s AND end_time <= %s"
    for table in ("trips", "stops")
}
_UNFLAG = ("UPDATE positions SET spike = false WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s "
           "AND spike")
#: Every marker with history, one index probe each (a loose index scan of the primary key).
_MARKERS = """
WITH RECURSIVE m AS (
    (SELECT marker_id FROM positions ORDER BY marker_id LIMIT 1)
    UNION ALL
    SELECT (SELECT p.marker_id FROM positions p WHERE p.marker_id > m.marker_id ORDER BY p.marker_id LIMIT 1)
    FROM m WHERE m.marker_id IS NOT NULL
)
SELECT marker_id FROM m WHERE marker_id IS NOT NULL
"""


@dataclass
class Recomputed:
    fixes: int = 0
    trips: int = 0
    stops: int = 0
    spikes: int = 0

    def add(self, other: "Recomputed") -> None:
        self.fixes += other.fixes
        self.trips += other.trips
        self.stops += other.stops
        self.spikes += other.spikes


async def markers(conn: psycopg.AsyncConnection) -> list[str]:
    return [row[0] for row in await (await conn.execute(_MARKERS)).fetchall()]


async def recompute(conn: psycopg.AsyncConnection, marker_id: str, rules: Rules,
                    start: datetime | None = None, end: datetime | None = None,
                    geofences: GeofenceIndex | None = None,
                    progress: Callable[[int], None] | None = None) -> Recomputed:
    """Recompute ``marker_id``'s trips and stops that begin in [start, end) (the whole
    history when None) in one transaction; ``progress(n)`` after every chunk of n fixes."""
    end = END_OF_TIME if end is None else end
    end_us = store.micros_of(end)
    async with conn.transaction():
        restart = None
        if start is not None:
            restart = (await (await conn.execute(_RESTART, (marker_id, start))).fetchone())[0]
        restart = BEGINNING if restart is None else restart
        state, out, last_us, count = MotionState(), [], None, 0
        async with conn.cursor(name="journeys_rebuild", binary=True) as cursor:
            await cursor.execute(_FIXES, (marker_id, restart))
            finished = False
            while not finished:
                rows = await cursor.fetchmany(CHUNK)
                if not rows:
                    break
                for t, lat, lon, speed, track_break in rows:
                    if t >= end_us and state.open_since_us is not None and state.open_since_us >= end_us:
                        finished = True  # everything that began before the end is finished
                        break
                    advance(state, t, lat, lon, speed, rules, out, track_break)
                    last_us = t
                    count += 1
                if progress is not None:
                    progress(len(rows))
            if not finished and last_us is not None and time.time() - last_us / 1e6 > rules.gap_seconds:
                end_idle_trip(state, rules, out)  # as the live stage's timer does for a silent marker
        result = Recomputed(fixes=count)
        if last_us is None:
            return result
        trips = [item for item in out if isinstance(item, Trip) and item.start_us < end_us]
        stops = [item for item in out if isinstance(item, Stop) and item.start_us < end_us]
        spikes = [(marker_id, item.time_us) for item in out if isinstance(item, Spike)]
        last = store.time_of(last_us)
        for table in ("trips", "stops"):
            await conn.execute(_DELETE[table], (marker_id, restart, end, last))
        await store.write_trips(conn, [store.trip_row(marker_id, trip, _names(geofences, marker_id, trips))
                                       for trip in trips])
        await store.write_stops(conn, [store.stop_row(marker_id, stop) for stop in stops])
        await conn.execute(_UNFLAG, (marker_id, restart, last))
        await store.flag_spikes(conn, spikes)
        result.trips, result.stops, result.spikes = len(trips), len(stops), len(spikes)
        return result


def _names(geofences: GeofenceIndex | None, marker_id: str, trips: list[Trip]) -> store.Names:
    return geofence_names(geofences, marker_id, [(t.start_lat, t.start_lon) for t in trips]
                          + [(t.end_lat, t.end_lon) for t in trips])


def geofence_names(geofences: GeofenceIndex | None, marker_id: str,
                   points: list[tuple[float, float]]) -> store.Names:
    """The names of the geofences holding each point."""
    if geofences is None or not len(geofences) or not points:
        return {}
    found = geofences.containing_many([marker_id] * len(points), [p[0] for p in points], [p[1] for p in points])
    return {point: [g.name for g in holding] for point, holding in zip(points, found)}
