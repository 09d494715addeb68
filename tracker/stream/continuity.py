"""Guards a Faust agent against offsets its consumer never delivered.

faust-streaming can skip records of a partition after a rebalance and then commit past
them (its consumer treats a jump in offsets as a gap to fill). For the ``latest`` agent
that would lose fixes. ``Continuity`` knows, per partition, the next offset the agent must
see: at the first event of a consumer generation, the offset the group had committed;
after that, one past the last event. An event past that offset means records were
skipped: they are read again directly from the broker and handled before the event, so
nothing is acknowledged that was not processed. Once their batch is processed they are
acknowledged in Faust's consumer too (``Continuity.processed``): its commit of a partition
stops for good at the first offset it has not seen acknowledged.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust import Service

from tracker.settings import Settings
from tracker.stream.retry import retrying

log = logging.getLogger(__name__)

#: committed() -> partition -> the offset the group resumes from (its commit, or the log's start)
CommittedOffsets = Callable[[], Awaitable[dict[int, int]]]
#: read(partition, start, end) -> the values of the records at offsets [start, end)
ReadRange = Callable[[int, int, int], Awaitable[list[bytes]]]
#: acknowledge(generation, partition, offsets): count records read again as processed
Acknowledge = Callable[[object, int, range], None]

REREAD_TIMEOUT = 60.0


class Continuity:
    def __init__(self, committed: CommittedOffsets, read: ReadRange, name: str = "latest",
                 acknowledge: Acknowledge | None = None) -> None:
        self.name = name
        self.committed = committed
        self.read = read
        self.acknowledge = acknowledge
        #: (generation, partition, offsets) read again for the batch in hand
        self._reread: list[tuple[object, int, range]] = []
        self.generation: object = None
        self._next: dict[int, int] = {}
        self._start: dict[int, int] | None = None
        self.reread_records = 0

    async def missing(self, generation: object, partition: int, offset: int) -> list[bytes]:
        """Values of records before ``offset`` that were never delivered; then expects ``offset + 1``."""
        if generation != self.generation:
            self.generation = generation
            self._next.clear()
            self._start = None
        expected = self._next.get(partition)
        if expected is None:
            if self._start is None:
                self._start = await self.committed()
            expected = self._start.get(partition, 0)
        self._next[partition] = max(offset + 1, expected)
        if offset <= expected:
            return []
        log.warning("%s: partition %d skipped offsets %d to %d; reading them again",
                    self.name, partition, expected, offset - 1)
        values = await self.read(partition, expected, offset)
        self.reread_records += len(values)
        self._reread.append((generation, partition, range(expected, offset)))
        return values

    def processed(self) -> None:
        """The batch in hand is done: the records read again for it count as acknowledged
        (``acknowledge``), as Faust counts the events it delivered. Faust's commit of a
        partition stops at the first offset it has not seen acknowledged, and it never
        delivered these."""
        reread, self._reread = self._reread, []
        if self.acknowledge is not None:
            for generation, partition, offsets in reread:
                self.acknowledge(generation, partition, offsets)


    async def values_by_partition(self, generation: object, events) -> dict[int, list[bytes]]:
        """The values of a batch of Faust events, per partition, in offset order, with the
        records the consumer skipped before each of them read again and put first."""
        values: dict[int, list[bytes]] = defaultdict(list)
        for event in events:
            message = event.message
            values[message.partition].extend(await retrying(
                f"{self.name}: reading what partition {message.partition} skipped",
                lambda: self.missing(generation, message.partition, message.offset)))
            values[message.partition].append(message.value)
        return values


class BrokerOffsets(Service):
    """What ``Continuity`` asks of the broker, over clients kept open for the worker's life: a
    consumer group's committed offsets, and a range of records read again."""

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

    async def committed(self) -> dict[int, int]:
        partitions = [TopicPartition(self.topic, p) for p in range(self.config.topic_partitions)]
        answer = await self._admin.list_consumer_group_offsets(self.group_id, partitions=partitions)
        offsets = {tp: meta.offset for tp, meta in answer.items() if meta.offset >= 0}
        missing = [tp for tp in partitions if tp not in offsets]
        if missing:  # nothing committed yet: the group starts at the log's start
            offsets.update(await self._consumer.beginning_offsets(missing))
        return {tp.partition: offset for tp, offset in offsets.items()}

    async def end_offsets(self) -> dict[int, int]:
        """partition -> the offset the next record of the topic will get."""
        partitions = [TopicPartition(self.topic, p) for p in range(self.config.topic_partitions)]
        async with self._lock:
            ends = await self._consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def read(self, partition: int, start: int, end: int) -> list[bytes]:
        tp = TopicPartition(self.topic, partition)
        async with self._lock:
            consumer = self._consumer
            consumer.assign([tp])
            consumer.seek(tp, start)
            values: list[bytes] = []

            async def read_all() -> None:
                while await consumer.position(tp) < end:
                    fetched = await consumer.getmany(tp, timeout_ms=500)
                    values.extend(r.value for r in fetched.get(tp, ()) if r.offset < end)

            await asyncio.wait_for(read_all(), REREAD_TIMEOUT)
            return values


class AgentProgress:
    """How far the agent of the batches topic got, per partition, for the timers that judge
    silence (``offline``, an idle trip): a partition is caught up when the agent processed
    every record of it, by its own count or by the group's commit. Behind (a backlog after
    a restart), silence is not silence yet."""

    def __init__(self, offsets: "BrokerOffsets") -> None:
        self.offsets = offsets
        #: partition -> the next offset the agent has yet to process
        self.next_offset: dict[int, int] = {}
        #: time.monotonic() when the agent last finished a batch; None while it works on one
        self.processed_at: float | None = time.monotonic()

    def idle_seconds(self) -> float:
        """How long the agent has been waiting for records (0 while it works on a batch)."""
        return 0.0 if self.processed_at is None else time.monotonic() - self.processed_at

    def working(self) -> None:
        self.processed_at = None

    def processed(self, records) -> None:
        self.processed_at = time.monotonic()
        for record in records:
            message = record.message
            self.next_offset[message.partition] = max(self.next_offset.get(message.partition, 0),
                                                      message.offset + 1)

    async def caught_up(self, partitions: list[int]) -> list[int]:
        """Those of ``partitions`` whose every record the agent has processed."""
        committed, ends = await self.offsets.committed(), await self.offsets.end_offsets()
        for partition in set(self.next_offset) - set(partitions):
            del self.next_offset[partition]
        return [p for p in partitions
                if max(self.next_offset.get(p, 0), committed.get(p, 0)) >= ends.get(p, 0)]
