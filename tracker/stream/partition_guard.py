"""Brings back a partition of the batches topic that Faust's consumer stopped delivering.

After a rebalance faust-streaming can throw away records it has already fetched (a fetch
that returns while the flow is stopped, or for a partition it does not count as active at
that moment) and leave its fetch position past them, or leave a partition out of those it
fetches. While records keep coming, the next one reveals the gap and ``tracker.stream.continuity``
reads it again. When the stream has gone quiet nothing does: the ``latest`` agent never
sees the records, ``latest`` keeps older fixes and the group never commits them.

Every ``CHECK_SECONDS`` the guard asks the broker how far each partition this worker owns
goes. A partition whose records the agent has not all processed, with the agent idle and
that partition unmoved for ``STALL_SECONDS``, is made active again and its fetch position
set back to the first record not processed. When the consumer's fetch position is already
past that record, the records were fetched and thrown away: ``DROPPED_SECONDS`` is enough.
Records read twice are harmless: every stage after the batches topic is idempotent.

The same can befall a table's changelog partition while Faust recovers the table from it
after a rebalance: the recovery then waits for records that never come, and the worker
never gets ready. ``RecoveryGuard`` fetches such a partition again from where the recovery
stands, once nothing has arrived for it in ``RECOVERY_STALL_SECONDS``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from faust.types import TP

from tracker.metrics import PARTITION_RESTARTS
from tracker.stream import faust_internals
from tracker.stream.ownership import owned_partitions

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
STALL_SECONDS = 5.0
DROPPED_SECONDS = 1.0
RECOVERY_STALL_SECONDS = 10.0


@dataclass
class Behind:
    """A partition seen behind: where the agent stood, and since when."""

    next_offset: int
    since: float


@dataclass
class PartitionGuard:
    #: () -> the partitions of the batches topic this worker owns, or None while rebalancing
    owned: Callable[[], list[int] | None]
    #: () -> partition -> the group's committed offset
    committed: Callable[[], Awaitable[dict[int, int]]]
    #: () -> partition -> the offset the next record will get
    ends: Callable[[], Awaitable[dict[int, int]]]
    #: (partition, offset) -> make it fetched again from offset; returns what it found, for the log
    restart: Callable[[int, int], Awaitable[str]]
    #: partition -> the offset Faust's consumer will fetch next
    position: Callable[[int], Awaitable[int | None]]
    #: partition -> the next offset the agent has yet to process (``AgentProgress.next_offset``)
    progress: dict[int, int]
    #: () -> seconds since the agent last processed anything
    idle_seconds: Callable[[], float]
    stall_seconds: float = STALL_SECONDS
    dropped_seconds: float = DROPPED_SECONDS
    clock: Callable[[], float] = time.monotonic
    behind: dict[int, Behind] = field(default_factory=dict)
    restarts: int = 0

    async def check(self) -> list[int]:
        """Restart the partitions stalled since the last checks; those restarted."""
        owned = self.owned()
        if owned is None:
            self.behind.clear()
            return []
        ends = await self.ends()
        committed = await self.committed()
        now, restarted = self.clock(), []
        for partition in list(self.behind):
            if partition not in owned:
                del self.behind[partition]
        for partition in owned:
            next_offset = max(self.progress.get(partition, 0), committed.get(partition, 0))
            if next_offset >= ends.get(partition, 0):
                self.behind.pop(partition, None)
                continue
            seen = self.behind.get(partition)
            if seen is None or seen.next_offset != next_offset:
                self.behind[partition] = Behind(next_offset, now)
                continue
            waited, idle = now - seen.since, self.idle_seconds()
            if waited < self.dropped_seconds or idle < self.dropped_seconds:
                continue
            if (waited < self.stall_seconds or idle < self.stall_seconds) \
                    and (await self.position(partition) or 0) <= next_offset:
                continue
            state = await self.restart(partition, next_offset)
            log.warning("latest: partition %d stalled at offset %d of %d for %.0f s (%s); fetching it again",
                        partition, next_offset, ends[partition], now - seen.since, state)
            PARTITION_RESTARTS.inc()
            self.restarts += 1
            self.behind[partition] = Behind(next_offset, now)
            restarted.append(partition)
        return restarted


@dataclass
class RecoveryGuard:
    #: () -> Faust's table recovery (``app.tables.recovery``)
    recovery: Callable[[], Any]
    #: (changelog partition, offset) -> make it fetched again from offset
    restart: Callable[[Any, int], Awaitable[None]]
    stall_seconds: float = RECOVERY_STALL_SECONDS
    clock: Callable[[], float] = time.monotonic
    restarted_at: dict = field(default_factory=dict)
    restarts: int = 0

    async def check(self) -> list:
        """Fetch again the changelog partitions the recovery has waited for in vain; those."""
        recovery, now = self.recovery(), self.clock()
        started = faust_internals.recovery_started_at(recovery)
        if not recovery.in_recovery or started is None:
            self.restarted_at.clear()
            return []
        received = faust_internals.recovery_received_at(recovery)
        restarted = []
        for tp, remaining in recovery.active_remaining().items():
            last = max(received.get(tp, started), self.restarted_at.get(tp, started))
            if remaining <= 0 or now - last < self.stall_seconds:
                continue
            offset = max(faust_internals.recovery_offsets(recovery)[tp], 0)
            await self.restart(tp, offset)
            log.warning("recovery: %s partition %d got nothing for %.0f s with %d records to go; "
                        "fetching it again from offset %d", tp.topic, tp.partition, now - last, remaining, offset)
            PARTITION_RESTARTS.inc()
            self.restarts += 1
            self.restarted_at[tp] = now
            restarted.append(tp)
        return restarted


def guards_for(app, topic: str, offsets, progress) -> tuple[PartitionGuard, RecoveryGuard]:
    """The guards of ``topic``'s partitions in ``app``'s consumer and of its tables' recovery;
    ``offsets`` is a ``BrokerOffsets`` of the topic, ``progress`` the agent's ``AgentProgress``."""
    async def fetch_again(partition: int, offset: int) -> str:
        consumer, tp = app.consumer, TP(topic, partition)
        found = faust_internals.partition_state(consumer, tp)
        consumer.resume_partitions([tp])
        await consumer.seek_wait({tp: offset})
        return found

    async def fetch_position(partition: int) -> int | None:
        return faust_internals.fetch_position(app.consumer, TP(topic, partition))

    async def read_changelog_again(tp: TP, offset: int) -> None:
        app.consumer.resume_partitions([tp])
        await app.consumer.seek_wait({tp: offset})

    partitions = PartitionGuard(lambda: owned_partitions(app, topic), offsets.committed, offsets.end_offsets,
                                fetch_again, fetch_position, progress.next_offset, progress.idle_seconds)
    return partitions, RecoveryGuard(lambda: app.tables.recovery, read_changelog_again)
