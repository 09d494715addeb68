"""A consumer group that copies a topic into Postgres, each fetched slice in one call.

``PostgresSink.handle`` decodes a partition's slice (a record that does not decode is
logged and skipped), hands it to ``write`` and retries until Postgres takes it; only then
are its offsets committed. ``write`` must be idempotent: after a crash the uncommitted
tail is read again.
"""
from __future__ import annotations

import logging
from typing import Any

import psycopg
from aiokafka import TopicPartition

from tracker.stream.consumer import GroupConsumer
from tracker.storage.pool import UNAVAILABLE
from tracker.resources import database
from tracker.stream.retry import Stopped, retrying

log = logging.getLogger(__name__)



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
        if items:
            try:  # never drop a record: retry whatever failed
                await retrying(f"{self.name}: the write of {len(items)} records", lambda: self._write(items),
                               retry_on=Exception, expected=UNAVAILABLE, stopping=lambda: self.should_stop)
            except Stopped:
                return  # not committed: read again after the restart
        self.done(tp, epoch, records[0].offset, records[-1].offset + 1)
        await self.commit([tp])

    async def _write(self, items: list) -> None:
        async with database.connection() as conn:
            await self.write(conn, items)
