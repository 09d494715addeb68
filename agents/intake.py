"""intake: read ``gps.positions`` once, validate every record once, and frame the valid ones
into records of the batches topic, partition for partition.

It runs in every worker as a consumer group of its own (``<app id>-intake``), reading
fetched slices rather than single records, so Faust's per-record machinery (tens of
microseconds before any of our code runs) is paid once per batch of up to a thousand
fixes instead of once per position. For each slice of partition p:

- valid records in their marker's partition become one or more batch records on
  partition p of the batches topic, in offset order (heartbeats in records of their own,
  after the slice's fixes);
- bad records go to ``gps.positions.dlq`` with the reason;
- valid records under another key or in another partition are re-sent under their
  marker id (with their Kafka timestamp).

The slice's offsets are committed only once all of those sends are acknowledged; if one
fails, the partition is read again from the last acknowledged slice (at least once: the
``latest`` table and the history ignore what they already have).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime, timezone
from typing import NamedTuple

import orjson
from aiokafka import TopicPartition

from tracker.stream import batches
from tracker.app import fatal, worker_service
from tracker.stream.consumer import GroupConsumer
from tracker.stream.dead_letters import dead_letter
from tracker.positions.intake import Judge
from tracker.stream.admin import ensure_topics
from tracker.metrics import DLQ_RECORDS, HEARTBEATS_ACCEPTED, POSITIONS_ACCEPTED, POSITIONS_REJECTED, POSITIONS_RESENT
from tracker.resources import worker_producer
from tracker.settings import settings
from tracker.stream.topics import DECLARED

log = logging.getLogger(__name__)

#: Records read but not yet acknowledged downstream, at most; reading waits beyond it.
MAX_IN_FLIGHT = 100_000


class _InFlight(NamedTuple):
    """A slice of one partition whose sends are not all acknowledged yet."""
    epoch: int
    start: int
    next_offset: int
    records: int
    sent: asyncio.Future


class Intake(GroupConsumer):
    name = "intake"

    def __init__(self, **kwargs) -> None:
        super().__init__(settings, settings.topic, f"{settings.app_id}-intake", **kwargs)
        self.judge = Judge(settings.topic_partitions)
        #: Per partition, the slices whose sends are in flight, in offset order.
        self._pending: dict[TopicPartition, deque] = {}
        self._in_flight = 0

    async def on_start(self) -> None:
        for topic, count in (await ensure_topics(settings, DECLARED)).items():
            if count != settings.topic_partitions:
                fatal(f"{topic} has {count} partitions but TRACKER_TOPIC_PARTITIONS is "
                      f"{settings.topic_partitions}: markers would land in the wrong partitions")
        await worker_producer.ready()
        await super().on_start()
        self.add_future(self._settle_periodically())

    async def handle(self, tp: TopicPartition, records: list) -> None:
        epoch = self.epoch(tp)  # before any await: a rewind meanwhile must leave this slice behind
        verdict = self.judge.judge(tp.partition, records, int(time.time() * 1000))
        producer = worker_producer.producer
        sends = [await producer.send(settings.batches_topic, value=value, partition=tp.partition)
                 for value in batches.encode(verdict.fixes, verdict.heard)]
        if verdict.rejected:
            rejected_at = datetime.now(timezone.utc)
            for record, error in verdict.rejected:
                letter = dead_letter(record.value, error, rejected_at, record.topic, record.partition, record.offset)
                sent = await producer.send(settings.dlq_topic, key=record.key, value=orjson.dumps(letter))
                sent.add_done_callback(count_dead_letter)
                sends.append(sent)
                POSITIONS_REJECTED.labels(error.code).inc()
        for key, value, stamp in verdict.misplaced:
            # To the partition the judge expects, whatever the producer's metadata says, so a
            # re-sent record is never judged misplaced again.
            sends.append(await producer.send(settings.topic, key=key, value=value, timestamp_ms=stamp,
                                              partition=self.judge.partition_of(key)))
        POSITIONS_ACCEPTED.inc(len(verdict.fixes) + len(verdict.misplaced))
        if verdict.heard:
            HEARTBEATS_ACCEPTED.inc(len(verdict.heard))
        if verdict.misplaced:
            POSITIONS_RESENT.inc(len(verdict.misplaced))
        self._pending.setdefault(tp, deque()).append(
            _InFlight(epoch, records[0].offset, records[-1].offset + 1, len(records), asyncio.gather(*sends)))
        self._in_flight += len(records)
        self._settle()
        while self._in_flight > MAX_IN_FLIGHT and any(self._pending.values()):
            await self._wait_oldest()

    def _settle(self) -> None:
        """Take every acknowledged slice, in order per partition."""
        for tp, pending in self._pending.items():
            while pending and pending[0].sent.done():
                slice_ = pending.popleft()
                self._in_flight -= slice_.records
                sent = slice_.sent
                if not sent.cancelled() and sent.exception() is None:
                    self.done(tp, slice_.epoch, slice_.start, slice_.next_offset)
                    continue
                log.warning("intake: a send for %s[%d] failed: %r", tp.topic, tp.partition,
                            "cancelled" if sent.cancelled() else sent.exception())
                for later in pending:
                    self._in_flight -= later.records
                    later.sent.add_done_callback(_ignore)
                pending.clear()
                self.rewind(tp, slice_.epoch)

    async def _wait_oldest(self) -> None:
        heads = [pending[0].sent for pending in self._pending.values() if pending]
        if heads:
            await asyncio.wait(heads, return_when=asyncio.FIRST_COMPLETED)
        self._settle()

    async def _settle_periodically(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(0.05)
            self._settle()

    async def _finish(self, partitions) -> None:
        waiting = [slice_.sent for tp in partitions for slice_ in self._pending.get(tp, ())]
        if waiting:
            await asyncio.wait(waiting, timeout=30)
        self._settle()

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        await self._finish(partitions)
        for tp in partitions:
            for slice_ in self._pending.pop(tp, ()):
                self._in_flight -= slice_.records
                slice_.sent.add_done_callback(_ignore)

    async def on_flush(self) -> None:
        await self._finish(list(self._pending))


def count_dead_letter(sent: asyncio.Future) -> None:
    """Count a dead letter once the broker has acknowledged it: one whose send failed is
    not in the DLQ (its slice is read and judged again), and counting it would make the
    counter disagree with the topic."""
    if not sent.cancelled() and sent.exception() is None:
        DLQ_RECORDS.inc()


def _ignore(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it


intake = worker_service(Intake())
