"""events sink: copy ``gps.events`` into the Postgres table ``events``, each event once.

A consumer group of its own (``<app id>-events``), so the stream never waits for Postgres.
Each fetched slice is inserted in one transaction (``tracker.events.store.write_events``,
``ON CONFLICT DO NOTHING`` on the event id) and retried until Postgres takes it; only then
are its offsets committed (``tracker.stream.postgres_sink``). A replay after a crash, or the same
event raised twice by a batch replayed in the events agent, adds nothing.
"""
from __future__ import annotations

import psycopg

from tracker.events import model
from tracker.app import worker_service
from tracker.events.store import write_events
from tracker.metrics import EVENTS_ROWS
from tracker.stream.postgres_sink import PostgresSink
from tracker.settings import settings


class EventsSink(PostgresSink):
    name = "events-sink"

    def __init__(self, **kwargs) -> None:
        super().__init__(settings, settings.events_topic, f"{settings.app_id}-events", max_records=5_000, **kwargs)

    def decode(self, value: bytes) -> dict:
        return model.decode(value)

    async def write(self, conn: psycopg.AsyncConnection, items: list) -> None:
        EVENTS_ROWS.inc(await write_events(conn, items))


events_sink = EventsSink()
if settings.events_enabled:
    worker_service(events_sink)
