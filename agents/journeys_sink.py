"""journeys sink: ``gps.journeys`` into Postgres, and the recompute of the days late fixes made stale.

A consumer group of its own (``<app id>-journeys``, ``tracker.stream.postgres_sink``): each slice
is written in one transaction, retried until Postgres takes it, then committed. Trips and
stops are upserted on (marker, start) with the names of the geofences at their ends;
spikes are flagged on their history row (one not there yet marks its day instead); days
to recompute go to ``journeys_dirty``.

A timer on every worker takes the dirty days whose awaited fix history now holds (or
that waited ``MAX_WAIT``), up to ``RECOMPUTE_BATCH`` at a time with ``SKIP LOCKED`` so that
workers share them, recomputes them together (``tracker.journeys.rebuild.recompute_days``: a
few queries for the lot) and deletes their marks, in one transaction.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta, timezone

import psycopg

from tracker.journeys import store
from tracker.journeys import records
from tracker.app import app, worker_service
from tracker.storage.pool import DATABASE_ERRORS
from tracker.journeys.rebuild import geofence_names, recompute_days
from tracker.journeys.records import RULES
from tracker.metrics import JOURNEYS_ROWS
from tracker.stream.postgres_sink import PostgresSink
from tracker.resources import database, geofences
from tracker.settings import settings

log = logging.getLogger(__name__)

RECOMPUTE_SECONDS = 2.0
#: How long the sink waits for the worker's first load of the geofences.
FIRST_LOAD_WAIT_SECONDS = 10.0
#: A dirty day whose awaited fix never shows up in history is recomputed after this.
MAX_WAIT = timedelta(minutes=10)
#: Days recomputed together, in one transaction (a timer's tick takes as many such batches as
#: are ready).
RECOMPUTE_BATCH = 100


class JourneysSink(PostgresSink):
    name = "journeys-sink"

    def __init__(self, **kwargs) -> None:
        super().__init__(settings, settings.journeys_topic, f"{settings.app_id}-journeys", max_records=5_000,
                         **kwargs)

    def decode(self, value: bytes) -> dict:
        return records.decode(value)

    async def write(self, conn: psycopg.AsyncConnection, items: list) -> None:
        if not geofences.loaded.is_set():  # a trip's geofences are named from the first load on
            try:
                await asyncio.wait_for(geofences.loaded.wait(), FIRST_LOAD_WAIT_SECONDS)
            except asyncio.TimeoutError:
                log.warning("journeys: the geofences are not loaded yet; trips are written without them")
        await write_records(conn, items)


async def write_records(conn: psycopg.AsyncConnection, items: list[dict]) -> None:
    """Write a slice of ``gps.journeys`` records in one transaction."""
    trips, stops, spikes, marks = [], [], [], []
    index = geofences.index
    for record in items:
        kind, marker_id = record["kind"], record["marker_id"]
        if kind == "trip":
            trip = records.trip_of(record)
            names = geofence_names(index, marker_id, [(trip.start_lat, trip.start_lon), (trip.end_lat, trip.end_lon)])
            trips.append(store.trip_row(marker_id, trip, names))
        elif kind == "stop":
            stops.append(store.stop_row(marker_id, records.stop_of(record)))
        elif kind == "spike":
            spikes.append((marker_id, record["time_us"]))
        else:
            marks.append((marker_id, datetime.fromisoformat(record["day"]).date(), record["wait_for_us"]))
    async with conn.transaction():
        await store.write_trips(conn, _last_per_key(trips))
        await store.write_stops(conn, _last_per_key(stops))
        missing = await store.flag_spikes(conn, spikes)
        await store.mark_dirty(conn, sorted(set(marks + store.spike_marks(missing))))
    JOURNEYS_ROWS.labels("trip").inc(len(trips))
    JOURNEYS_ROWS.labels("stop").inc(len(stops))
    JOURNEYS_ROWS.labels("spike").inc(len(spikes) - len(missing))


def _last_per_key(rows: list[tuple]) -> list[tuple]:
    """One row per (marker, start): an upsert may not touch a row twice in one statement batch."""
    return list({(row[0], row[1]): row for row in rows}.values())


_CLAIM = """
SELECT marker_id, day FROM journeys_dirty d
WHERE d.marked_at < now() - %s
   OR EXISTS (SELECT 1 FROM positions p WHERE p.marker_id = d.marker_id AND p.fix_time = d.wait_for)
ORDER BY marked_at LIMIT %s FOR UPDATE SKIP LOCKED
"""
_UNMARK = ("DELETE FROM journeys_dirty d USING unnest(%s::text[], %s::date[]) AS u(marker_id, day) "
           "WHERE d.marker_id = u.marker_id AND d.day = u.day")


async def recompute_dirty(conn: psycopg.AsyncConnection, limit: int = RECOMPUTE_BATCH) -> int:
    """Recompute up to ``limit`` dirty days that are ready; the number recomputed."""
    async with conn.transaction():
        claimed = await (await conn.execute(_CLAIM, (MAX_WAIT, limit))).fetchall()
        days = [(marker_id, datetime.combine(day, time(), timezone.utc)) for marker_id, day in claimed]
        await recompute_days(conn, [(marker_id, start, start + timedelta(days=1)) for marker_id, start in days],
                             RULES, geofences.index)
        await conn.execute(_UNMARK, ([marker_id for marker_id, _ in claimed], [day for _, day in claimed]))
    JOURNEYS_ROWS.labels("recomputed_day").inc(len(claimed))
    return len(claimed)


journeys_sink = JourneysSink()
if settings.journeys_enabled:
    worker_service(journeys_sink)

    @app.timer(RECOMPUTE_SECONDS)
    async def recompute_stale_days() -> None:
        try:
            async with database.connection() as conn:
                while await recompute_dirty(conn) == RECOMPUTE_BATCH:
                    pass
        except DATABASE_ERRORS as exc:
            log.warning("journeys: cannot recompute stale days now (%r)", exc)
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("journeys: the recompute of stale days failed")
