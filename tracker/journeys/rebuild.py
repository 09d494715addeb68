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

``recompute_days`` does the same for many markers' ranges at once, with a handful of
queries in all rather than about ten per range: used by the journeys sink's timer for the
days late fixes made stale. ``recompute`` is used by ``tracker journeys rebuild``, and for
a range with more fixes than ``recompute_days`` reads in one go.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import psycopg

from tracker.journeys import store
from tracker.journeys.motion import TRACK_BREAK, MotionState, Rules, Spike, Stop, Trip, advance, end_idle_trip

if TYPE_CHECKING:
    from tracker.geofences.model import GeofenceIndex

#: Rows read from Postgres at a time.
CHUNK = 20_000
#: Fixes ``recompute_days`` reads per range in its one query; a range that needs more is
#: recomputed on its own by ``recompute``, which reads in chunks.
RANGE_FIXES = 2_000
#: ``recompute_days`` lets the event loop run after about this many fixes.
YIELD_EVERY = 10_000
BEGINNING = datetime(1, 1, 1, tzinfo=timezone.utc)
END_OF_TIME = datetime(9999, 12, 31, tzinfo=timezone.utc)

_FIX_COLUMNS = ("(extract(epoch FROM fix_time) * 1000000)::int8, lat, lon, speed, "
                f"coalesce(attributes->'{TRACK_BREAK}' = 'true', false)")
_RESTART = "SELECT max(start_time) FROM stops WHERE marker_id = %s AND start_time < %s"
#: One marker's fixes from the restart on, in the rows ``_Replay.feed`` takes (a first column it skips).
_FIXES = f"SELECT 0, {_FIX_COLUMNS} FROM positions WHERE marker_id = %s AND fix_time >= %s ORDER BY fix_time"
#: Per range (in the order given): where to restart, the last stop that began before it.
_RESTARTS = ("SELECT (SELECT max(s.start_time) FROM stops s WHERE s.marker_id = r.marker_id AND s.start_time < r.start) "
             "FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS r(marker_id, start, i) ORDER BY r.i")
#: Per range: its fixes from the restart on, at most ``RANGE_FIXES`` + 1 (more: too many for one go).
_RANGE_FIXES = (f"SELECT r.i, f.* FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS r(marker_id, restart, i) "
                f"CROSS JOIN LATERAL (SELECT {_FIX_COLUMNS} FROM positions p WHERE p.marker_id = r.marker_id "
                f"AND p.fix_time >= r.restart ORDER BY p.fix_time LIMIT %s) AS f ORDER BY 1, 2")
_REPLACED = "unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) AS r(marker_id, restart, stop, last)"
_DELETE = {
    table: (f"DELETE FROM {table} t USING {_REPLACED} WHERE t.marker_id = r.marker_id AND t.start_time >= r.restart "
            "AND t.start_time < r.stop AND t.end_time <= r.last")
    for table in ("trips", "stops")
}
_UNFLAG = (f"UPDATE positions p SET spike = false FROM {_REPLACED} WHERE p.marker_id = r.marker_id "
           "AND p.fix_time >= r.restart AND p.fix_time <= r.last AND p.spike")
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


@dataclass
class _Replay:
    """The motion model run over one marker's fixes from ``restart``, until everything that
    began before ``end`` is finished."""
    marker_id: str
    restart: datetime
    end: datetime
    rules: Rules
    state: MotionState = field(default_factory=MotionState)
    out: list = field(default_factory=list)
    last_us: int | None = None
    count: int = 0
    finished: bool = False

    def feed(self, rows: Iterable[Sequence]) -> None:
        """Take fixes in time order: rows of (anything, time µs, lat, lon, speed, track break)."""
        end_us, state, rules, out = store.micros_of(self.end), self.state, self.rules, self.out
        for _, t, lat, lon, speed, track_break in rows:
            if t >= end_us and state.open_since_us is not None and state.open_since_us >= end_us:
                self.finished = True  # everything that began before the end is finished
                return
            advance(state, t, lat, lon, speed, rules, out, track_break)
            self.last_us = t
            self.count += 1

    def at_end_of_history(self) -> None:
        """No fix after the last one read: a trip open since longer than the gap ends, as the
        live stage's timer ends it for a silent marker."""
        if not self.finished and self.last_us is not None and time.time() - self.last_us / 1e6 > self.rules.gap_seconds:
            end_idle_trip(self.state, self.rules, self.out)

    def decided(self) -> tuple[list[Trip], list[Stop], list[tuple[str, int]]]:
        end_us = store.micros_of(self.end)
        trips = [item for item in self.out if isinstance(item, Trip) and item.start_us < end_us]
        stops = [item for item in self.out if isinstance(item, Stop) and item.start_us < end_us]
        spikes = [(self.marker_id, item.time_us) for item in self.out if isinstance(item, Spike)]
        return trips, stops, spikes


async def markers(conn: psycopg.AsyncConnection) -> list[str]:
    return [row[0] for row in await (await conn.execute(_MARKERS)).fetchall()]


async def recompute(conn: psycopg.AsyncConnection, marker_id: str, rules: Rules,
                    start: datetime | None = None, end: datetime | None = None,
                    geofences: GeofenceIndex | None = None,
                    progress: Callable[[int], None] | None = None) -> Recomputed:
    """Recompute ``marker_id``'s trips and stops that begin in [start, end) (the whole
    history when None) in one transaction; ``progress(n)`` after every chunk of n fixes."""
    end = END_OF_TIME if end is None else end
    async with conn.transaction():
        restart = None
        if start is not None:
            restart = (await (await conn.execute(_RESTART, (marker_id, start))).fetchone())[0]
        replay = _Replay(marker_id, BEGINNING if restart is None else restart, end, rules)
        async with conn.cursor(name="journeys_rebuild", binary=True) as cursor:
            await cursor.execute(_FIXES, (marker_id, replay.restart))
            while not replay.finished:
                rows = await cursor.fetchmany(CHUNK)
                if not rows:
                    break
                replay.feed(rows)
                if progress is not None:
                    progress(len(rows))
            replay.at_end_of_history()
        return await _replace(conn, [replay], geofences)


async def recompute_days(conn: psycopg.AsyncConnection, ranges: Iterable[tuple[str, datetime, datetime]],
                         rules: Rules, geofences: GeofenceIndex | None = None) -> Recomputed:
    """Recompute the trips and stops that begin in each (marker, start, end) range, as
    ``recompute`` does each, in the caller's transaction. A marker's ranges are taken as one,
    from the first start to the last end."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for marker_id, start, end in ranges:
        first, last = spans.get(marker_id, (start, end))
        spans[marker_id] = (min(first, start), max(last, end))
    if not spans:
        return Recomputed()
    ids = list(spans)
    found = await (await conn.execute(_RESTARTS, (ids, [spans[m][0] for m in ids]))).fetchall()
    replays = [_Replay(m, BEGINNING if restart is None else restart, spans[m][1], rules)
               for m, (restart,) in zip(ids, found)]
    cursor = await conn.execute(_RANGE_FIXES, (ids, [r.restart for r in replays], RANGE_FIXES + 1), binary=True)
    rows = await cursor.fetchall()
    result, done, since_yield = Recomputed(), [], 0
    read = {i: list(group) for i, group in groupby(rows, key=lambda row: row[0])}
    for i, replay in enumerate(replays, start=1):
        fixes = read.get(i, [])
        replay.feed(fixes)
        since_yield += len(fixes)
        if since_yield >= YIELD_EVERY:  # the agent shares this event loop
            since_yield = 0
            await asyncio.sleep(0)
        if not replay.finished and len(fixes) > RANGE_FIXES:  # more than one go holds
            result.add(await recompute(conn, replay.marker_id, rules, spans[replay.marker_id][0], replay.end,
                                       geofences))
            continue
        replay.at_end_of_history()
        done.append(replay)
    result.add(await _replace(conn, done, geofences))
    return result


async def _replace(conn: psycopg.AsyncConnection, replays: list[_Replay],
                   geofences: GeofenceIndex | None) -> Recomputed:
    """Replace what the replays decided: the trips and stops that begin between each restart
    and its end and end by its last fix read, and the spike flags of the fixes read."""
    replays = [replay for replay in replays if replay.last_us is not None]
    result = Recomputed(fixes=sum(replay.count for replay in replays))
    if not replays:
        return result
    trips, stops, spikes = [], [], []
    for replay in replays:
        marker_trips, marker_stops, marker_spikes = replay.decided()
        trips += [store.trip_row(replay.marker_id, trip, _names(geofences, replay.marker_id, marker_trips))
                  for trip in marker_trips]
        stops += [store.stop_row(replay.marker_id, stop) for stop in marker_stops]
        spikes += marker_spikes
    replaced = ([r.marker_id for r in replays], [r.restart for r in replays], [r.end for r in replays],
                [store.time_of(r.last_us) for r in replays])
    for table in ("trips", "stops"):
        await conn.execute(_DELETE[table], replaced)
    await store.write_trips(conn, trips)
    await store.write_stops(conn, stops)
    await conn.execute(_UNFLAG, replaced)
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
