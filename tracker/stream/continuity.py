"""Guards a Faust agent against offsets its consumer never delivered.

faust-streaming can skip records of a partition after a rebalance (the patches of
``tracker.stream.faust_internals`` close the sites known; this guard holds for any other).
``Continuity`` knows, per partition, the next offset the agent must see: at the first event
of a consumer generation, the offset the group had committed (the agent's own commits:
``tracker.stream.commits``); after that, one past the last record handled. An event past
that offset means records were skipped: they are read again directly from the broker and
handled before the event, in slices of at most ``SLICE_RECORDS`` records, so a long gap
never sits in memory at once. An event before it was handled already (delivered twice)
and is left out.
"""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError
from faust import Service

from tracker.settings import Settings
from tracker.stream.retry import retrying

log = logging.getLogger(__name__)

#: committed() -> partition -> the offset the group resumes from (its commit, or the log's start)
CommittedOffsets = Callable[[], Awaitable[dict[int, int]]]
#: read(partition, start, end, limit) -> (the values of the records at offsets [start, end),
#: at most ``limit`` of them, the offset after the last one read)
ReadRange = Callable[[int, int, int, int], Awaitable[tuple[list[bytes], int]]]

#: Most records handed over at once: the events of a batch together, a long gap in slices.
SLICE_RECORDS = 256
#: A read of one slice that takes longer fails (and is retried): the broker is not answering.
READ_TIMEOUT = 30.0


class Continuity:
    def __init__(self, committed: CommittedOffsets, read: ReadRange, name: str = "latest") -> None:
        self.name = name
        self.committed = committed
        self.read = read
        self.generation: object = None
        #: partition -> the next offset the agent must see, in ``generation``
        self.next: dict[int, int] = {}
        self._start: dict[int, int] | None = None
        self.reread_records = 0

    async def _expected(self, generation: object, partition: int) -> int:
        if generation != self.generation:
            self.generation, self._start = generation, None
            self.next.clear()
        expected = self.next.get(partition)
        if expected is None:
            if self._start is None:
                self._start = await retrying(f"{self.name}: reading the group's committed offsets", self.committed)
            expected = self.next[partition] = self._start.get(partition, 0)
        return expected

    async def slices(self, generation: object, events) -> AsyncIterator[dict[int, list[bytes]]]:
        """The values of a batch of Faust events, per partition and in offset order, with
        the records the consumer skipped before each event read again and put first, and
        the events already handled left out; in slices of at most ``SLICE_RECORDS``
        records, in order. ``next`` moves as each slice is handed over."""
        values: dict[int, list[bytes]] = {}
        count = 0
        for event in events:
            message = event.message
            partition, offset = message.partition, message.offset
            expected = await self._expected(generation, partition)
            if offset < expected:
                continue  # delivered twice: handled already
            if offset > expected:
                log.warning("%s: partition %d skipped offsets %d to %d; reading them again",
                            self.name, partition, expected, offset - 1)
            while expected < offset:
                start = expected
                read, expected = await retrying(
                    f"{self.name}: reading what partition {partition} skipped",
                    lambda: self.read(partition, start, offset, SLICE_RECORDS))
                self.reread_records += len(read)
                values.setdefault(partition, []).extend(read)
                count += len(read)
                self.next[partition] = expected
                if count >= SLICE_RECORDS:
                    yield values
                    values, count = {}, 0
            values.setdefault(partition, []).append(message.value)
            count += 1
            self.next[partition] = offset + 1
            if count >= SLICE_RECORDS:
                yield values
                values, count = {}, 0
        if values:
            yield values


class BrokerOffsets(Service):
    """What ``Continuity`` and the guards ask of the broker, over clients kept open for the
    worker's life: a consumer group's committed offsets, the end offsets, and a range of
    records read again."""

    def __init__(self, config: Settings, group_id: str, topic: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config, self.group_id, self.topic = config, group_id, topic
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def on_start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.config.bootstrap_servers)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap_servers, group_id=None,
                                          enable_auto_commit=False, auto_offset_reset="earliest",
                                          max_partition_fetch_bytes=8 * 1024 * 1024)
        await self._admin.start()
        await self._consumer.start()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    def _partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in range(self.config.topic_partitions)]

    async def committed(self) -> dict[int, int]:
        partitions = self._partitions()
        answer = await self._admin.list_consumer_group_offsets(self.group_id, partitions=partitions)
        offsets = {tp: meta.offset for tp, meta in answer.items() if meta.offset >= 0}
        missing = [tp for tp in partitions if tp not in offsets]
        if missing:  # nothing committed yet: the group starts at the log's start
            async with self._lock:
                offsets.update(await self._consumer.beginning_offsets(missing))
        return {tp.partition: offset for tp, offset in offsets.items()}

    async def end_offsets(self) -> dict[int, int]:
        """partition -> the offset the next record of the topic will get."""
        async with self._lock:
            ends = await self._consumer.end_offsets(self._partitions())
        return {tp.partition: offset for tp, offset in ends.items()}

    async def read(self, partition: int, start: int, end: int, limit: int) -> tuple[list[bytes], int]:
        """The values of at most ``limit`` records at offsets [start, end), and the offset
        after the last one read (``end`` once the range is read). ``KafkaTimeoutError`` (to
        be retried) when the broker does not deliver them in ``READ_TIMEOUT`` seconds."""
        tp = TopicPartition(self.topic, partition)
        async with self._lock:
            consumer = self._consumer
            consumer.assign([tp])
            consumer.seek(tp, start)
            values: list[bytes] = []
            position = start

            async def read_some() -> None:
                nonlocal position
                while position < end and len(values) < limit:
                    fetched = await consumer.getmany(tp, timeout_ms=500, max_records=limit - len(values))
                    for record in fetched.get(tp, ()):
                        if record.offset >= end:
                            position = end
                            break
                        values.append(record.value)
                        position = record.offset + 1
                    else:
                        position = max(position, await consumer.position(tp))

            try:
                await asyncio.wait_for(read_some(), READ_TIMEOUT)
            except asyncio.TimeoutError:
                raise KafkaTimeoutError(f"offsets {start} to {end - 1} of {tp.topic}[{partition}] "
                                        f"not read in {READ_TIMEOUT:.0f} s") from None
            return values, min(position, end)
