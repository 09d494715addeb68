"""The ``trips``, ``stops`` and ``journeys_dirty`` tables (its DDL is ``SCHEMA`` here).

Trips and stops are unique on (marker, start time) and written with an upsert, so the same
record written twice (a replayed batch, a recompute) leaves one row. Spikes are flagged on
their ``positions`` row; a spike whose row is not in history yet (the history sink is
behind) marks its day dirty instead, and the recompute flags it. Reads for the API filter
by marker and time; a summary adds up the trips and stops of each day.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Iterable, Sequence

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tracker.journeys.records import day_of
from tracker.journeys.motion import Stop, Trip
from tracker.storage.months import ensure_partitions
from tracker.positions.model import micros_of, time_of

SCHEMA = """
CREATE TABLE IF NOT EXISTS trips (
    marker_id       text             NOT NULL,
    start_time      timestamptz      NOT NULL,
    end_time        timestamptz      NOT NULL,
    start_lat       double precision NOT NULL,
    start_lon       double precision NOT NULL,
    end_lat         double precision NOT NULL,
    end_lon         double precision NOT NULL,
    distance_m      double precision NOT NULL,
    duration_s      double precision NOT NULL,
    max_speed       double precision NOT NULL,
    average_speed   double precision NOT NULL,
    start_geofences text[]           NOT NULL DEFAULT '{}',
    end_geofences   text[]           NOT NULL DEFAULT '{}',
    recorded_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE IF NOT EXISTS stops (
    marker_id   text             NOT NULL,
    start_time  timestamptz      NOT NULL,
    end_time    timestamptz      NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    duration_s  double precision NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE IF NOT EXISTS journeys_dirty (
    marker_id  text        NOT NULL,
    day        date        NOT NULL,
    wait_for   timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, day)
);
ALTER TABLE positions ADD COLUMN IF NOT EXISTS spike boolean NOT NULL DEFAULT false;
COMMENT ON TABLE trips IS 'Movements between two stops (tracker/journeys/motion.py), written by the journeys sink or a recompute; one per marker and start';
COMMENT ON TABLE stops IS 'Periods of at least TRACKER_STOP_MIN_SECONDS without motion (tracker/journeys/motion.py); one per marker and start';
COMMENT ON TABLE journeys_dirty IS 'Days (UTC) of a marker whose trips and stops a late fix made stale: recomputed from positions once it holds wait_for';
COMMENT ON COLUMN positions.spike IS 'a jump the motion model left out (implied speed above TRACKER_MAX_SPEED from both neighbours)';
"""

_TRIP_COLUMNS = ("marker_id", "start_time", "end_time", "start_lat", "start_lon", "end_lat", "end_lon",
                 "distance_m", "duration_s", "max_speed", "average_speed", "start_geofences", "end_geofences")
_STOP_COLUMNS = ("marker_id", "start_time", "end_time", "lat", "lon", "duration_s")


def _upsert(table: str, columns: Sequence[str]) -> sql.Composed:
    updates = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns[2:]]
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (marker_id, start_time) DO UPDATE SET {}, "
                   "recorded_at = now()").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)), sql.SQL(", ").join(updates))


_UPSERT_TRIP = _upsert("trips", _TRIP_COLUMNS)
_UPSERT_STOP = _upsert("stops", _STOP_COLUMNS)
_FLAG_SPIKES = (
    "UPDATE positions AS p SET spike = true FROM unnest(%s::text[], %s::int8[]) AS s(marker_id, time_us) "
    "WHERE p.marker_id = s.marker_id AND p.fix_time = timestamptz 'epoch' + s.time_us * interval '1 microsecond' "
    "RETURNING p.marker_id, p.fix_time")
_MARK_DIRTY = (
    "INSERT INTO journeys_dirty (marker_id, day, wait_for) VALUES (%s, %s, %s) "
    "ON CONFLICT (marker_id, day) DO UPDATE SET wait_for = GREATEST(journeys_dirty.wait_for, EXCLUDED.wait_for), "
    "marked_at = now()")

Names = dict[tuple[float, float], list[str]]


def trip_row(marker_id: str, trip: Trip, names: Names | None = None) -> tuple:
    names = names or {}
    return (marker_id, time_of(trip.start_us), time_of(trip.end_us), trip.start_lat, trip.start_lon,
            trip.end_lat, trip.end_lon, trip.distance_m, trip.duration_s, trip.max_speed, trip.average_speed,
            names.get((trip.start_lat, trip.start_lon), []), names.get((trip.end_lat, trip.end_lon), []))


def stop_row(marker_id: str, stop: Stop) -> tuple:
    return (marker_id, time_of(stop.start_us), time_of(stop.end_us), stop.lat, stop.lon, stop.duration_s)


async def write_trips(conn: psycopg.AsyncConnection, rows: Sequence[tuple]) -> None:
    if rows:
        await ensure_partitions(conn, "trips", (row[1] for row in rows))
        async with conn.cursor() as cursor:
            await cursor.executemany(_UPSERT_TRIP, rows)


async def write_stops(conn: psycopg.AsyncConnection, rows: Sequence[tuple]) -> None:
    if rows:
        await ensure_partitions(conn, "stops", (row[1] for row in rows))
        async with conn.cursor() as cursor:
            await cursor.executemany(_UPSERT_STOP, rows)


async def flag_spikes(conn: psycopg.AsyncConnection, spikes: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Flag the (marker, time µs) rows of ``positions`` as spikes; those not found."""
    if not spikes:
        return []
    cursor = await conn.execute(_FLAG_SPIKES, ([m for m, _ in spikes], [t for _, t in spikes]))
    found = {(m, micros_of(t)) for m, t in await cursor.fetchall()}
    return [spike for spike in spikes if spike not in found]


async def mark_dirty(conn: psycopg.AsyncConnection, marks: Iterable[tuple[str, date, int]]) -> None:
    """Ask for (marker, UTC day) to be recomputed once history holds the fix at ``wait_for_us``."""
    rows = [(marker_id, day, time_of(wait_for)) for marker_id, day, wait_for in marks]
    if rows:
        async with conn.cursor() as cursor:
            await cursor.executemany(_MARK_DIRTY, rows)


def spike_marks(missing: Iterable[tuple[str, int]]) -> list[tuple[str, date, int]]:
    """Days to recompute for spikes whose history row was not there yet."""
    return [(marker_id, day_of(time_us), time_us) for marker_id, time_us in missing]


# -- reads -----------------------------------------------------------------------------

def trip_id(marker_id: str, start: datetime) -> str:
    """A trip's id in URLs: its marker and start (µs since the epoch), ``car-1@1732780800000000``."""
    return f"{marker_id}@{micros_of(start)}"


def parse_trip_id(value: str) -> tuple[str, datetime] | None:
    marker_id, _, micros = value.rpartition("@")
    if not marker_id or not micros.isdigit() or len(micros) > 19:
        return None
    return marker_id, time_of(int(micros))


_TRIPS = sql.SQL(
    "SELECT marker_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon, distance_m, duration_s, "
    "max_speed, average_speed, start_geofences, end_geofences FROM trips "
    "WHERE marker_id = %s AND start_time >= %s AND start_time < %s ORDER BY start_time LIMIT %s")
_STOPS = sql.SQL(
    "SELECT marker_id, start_time, end_time, lat, lon, duration_s FROM stops "
    "WHERE marker_id = %s AND start_time >= %s AND start_time < %s ORDER BY start_time LIMIT %s")
_TRIP = sql.SQL(
    "SELECT marker_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon, distance_m, duration_s, "
    "max_speed, average_speed, start_geofences, end_geofences FROM trips WHERE marker_id = %s AND start_time = %s")


async def read_trips(conn: psycopg.AsyncConnection, marker_id: str, start: datetime, end: datetime,
                     limit: int) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_TRIPS, (marker_id, start, end, limit))
        return [_with_id(row) for row in await cursor.fetchall()]


async def read_trip(conn: psycopg.AsyncConnection, marker_id: str, start: datetime) -> dict | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_TRIP, (marker_id, start))
        row = await cursor.fetchone()
    return None if row is None else _with_id(row)


async def read_stops(conn: psycopg.AsyncConnection, marker_id: str, start: datetime, end: datetime,
                     limit: int) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_STOPS, (marker_id, start, end, limit))
        return list(await cursor.fetchall())


def _with_id(row: dict) -> dict:
    return {"id": trip_id(row["marker_id"], row["start_time"]), **row}


#: ``by`` of a summary: the unit ``date_trunc`` groups by.
SUMMARY_UNITS = ("day", "week", "month")

_SUMMARY = sql.SQL("""
WITH t AS (
    SELECT date_trunc({unit}, start_time AT TIME ZONE %(tz)s)::date AS period, count(*) AS trips,
           sum(distance_m) AS distance_m, sum(duration_s) AS driving_s, max(max_speed) AS max_speed
    FROM trips WHERE marker_id = %(marker)s AND start_time >= %(start)s AND start_time < %(end)s GROUP BY 1
), s AS (
    SELECT date_trunc({unit}, start_time AT TIME ZONE %(tz)s)::date AS period, count(*) AS stops,
           sum(duration_s) AS stopped_s
    FROM stops WHERE marker_id = %(marker)s AND start_time >= %(start)s AND start_time < %(end)s GROUP BY 1
)
SELECT period, coalesce(t.trips, 0) AS trips, coalesce(t.distance_m, 0) AS distance_m,
       coalesce(t.driving_s, 0) AS driving_s, coalesce(s.stopped_s, 0) AS stopped_s,
       coalesce(s.stops, 0) AS stops, t.max_speed
FROM t FULL JOIN s USING (period) ORDER BY period
""")


async def read_summary(conn: psycopg.AsyncConnection, marker_id: str, start: datetime, end: datetime,
                       tz: str, by: str) -> list[dict]:
    """Per ``by`` period (in time zone ``tz``): trips, distance, driving and stopped time, top
    and average speed. A trip or stop counts in the period it starts in."""
    assert by in SUMMARY_UNITS
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_SUMMARY.format(unit=sql.Literal(by)),
                             {"tz": tz, "marker": marker_id, "start": start, "end": end})
        rows = await cursor.fetchall()
    for row in rows:
        row["average_speed"] = row["distance_m"] / row["driving_s"] if row["driving_s"] else None
    return rows


_TRIP_POINTS = (
    "SELECT fix_time AS time, lat, lon, speed, heading, altitude, accuracy, battery, source FROM positions "
    "WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s AND NOT spike ORDER BY fix_time LIMIT %s")


async def read_trip_points(conn: psycopg.AsyncConnection, marker_id: str, start: datetime, end: datetime,
                           limit: int) -> list[dict]:
    """A trip's fixes, spikes left out, as track points (``tracker.positions.store.TRACK_FIELDS``)."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_TRIP_POINTS, (marker_id, start, end, limit))
        return list(await cursor.fetchall())
