"""events sink: copy ``gps.events`` into the Postgres table ``events``, each event once.

A consumer group of its own (``<app id>-events``), so the stream never waits for Postgres.
Each fetched slice is inserted in one transaction (``tracker.event_store.write_events``,
``ON CONFLICT DO NOTHING`` on the event id) and retried until Postgres takes it; only then
are its offsets committed. A replay after a crash, or the same event raised twice by a
batch replayed in the events agent, adds nothing.
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition

from tracker import events as model
from tracker.app import worker_service
from tracker.consumer import GroupConsumer
from tracker.db import UNAVAILABLE
from tracker.event_store import write_events
from tracker.metrics import EVENTS_ROWS
from tracker.resources import database
from tracker.settings import settings

log = logging.getLogger(__name__)

RETRY_SECONDS = (0.1, 0.25, 0.5, 1.0)


class EventsSink(GroupConsumer):
    name = "events-sink"

    def __init__(self, **kwargs) -> None:
        super().__init__(settings, settings.events_topic, f"{settings.app_id}-events", max_records=5_000, **kwargs)

    async def on_start(self) -> None:
        await database.ready()
        await super().on_start()

    async def handle(self, tp: TopicPartition, records: list) -> None:
        epoch = self.epoch(tp)
        events = []
        for record in records:
            try:
                events.append(model.decode(record.value))
            except ValueError:
                log.error("events-sink: %s[%d]@%d is not an event; skipped", tp.topic, tp.partition, record.offset)
        attempt = 0
        while events:
            try:
                async with database.connection() as conn:
                    EVENTS_ROWS.inc(await write_events(conn, events))
                break
            except Exception as exc:  # noqa: BLE001 - never drop an event: retry whatever failed
                if self.should_stop:
                    return  # not committed: read again after the restart
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                level = logging.WARNING if isinstance(exc, UNAVAILABLE) else logging.ERROR
                log.log(level, "events-sink: write of %d events failed (%r); retrying in %.1f s",
                        len(events), exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
        self.done(tp, epoch, records[0].offset, records[-1].offset + 1)
        await self.commit([tp])


events_sink = EventsSink()
if settings.events_enabled:
    worker_service(events_sink)
