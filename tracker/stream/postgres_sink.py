"""A consumer group that copies a topic into Postgres, each fetched slice in one call.

``PostgresSink.handle`` decodes a partition's slice (a record that does not decode is
logged and skipped), hands it to ``write`` and retries until Postgres takes it; only then
are its offsets committed. ``write`` must be idempotent: after a crash the uncommitted
tail is read again.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from aiokafka import TopicPartition

from tracker.stream.consumer import GroupConsumer
from tracker.storage.db import UNAVAILABLE
from tracker.resources import database

log = logging.getLogger(__name__)

RETRY_SECONDS = (0.1, 0.25, 0.5, 1.0)


class PostgresSink(GroupConsumer):
    """Subclasses set ``name`` and implement ``decode`` and ``write``."""

    def decode(self, value: bytes) -> Any:
        """A record's value as ``write`` takes it; ValueError if it is not one."""
        raise NotImplementedError

    async def write(self, conn: psycopg.AsyncConnection, items: list) -> None:
        raise NotImplementedError

    async def on_start(self) -> None:
        await database.ready()
        await super().on_start()

    async def handle(self, tp: TopicPartition, records: list) -> None:
        epoch = self.epoch(tp)
        items = []
        for record in records:
            try:
                items.append(self.decode(record.value))
            except ValueError as exc:
                log.error("%s: %s[%d]@%d skipped: %s", self.name, tp.topic, tp.partition, record.offset, exc)
        attempt = 0
        while items:
            try:
                async with database.connection() as conn:
                    await self.write(conn, items)
                break
            except Exception as exc:  # noqa: BLE001 - never drop a record: retry whatever failed
                if self.should_stop:
                    return  # not committed: read again after the restart
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                level = logging.WARNING if isinstance(exc, UNAVAILABLE) else logging.ERROR
                log.log(level, "%s: write of %d records failed (%r); retrying in %.1f s",
                        self.name, len(items), exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
        self.done(tp, epoch, records[0].offset, records[-1].offset + 1)
        await self.commit([tp])
