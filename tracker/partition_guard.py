"""Brings back a partition of the batches topic that Faust's consumer stopped delivering.

After a rebalance faust-streaming can throw away records it has already fetched (a fetch
that returns while the flow is stopped, or for a partition it does not count as active at
that moment) and leave its fetch position past them, or leave a partition out of those it
fetches. While records keep coming, the next one reveals the gap and ``tracker.continuity``
reads it again. When the stream has gone quiet nothing does: the ``latest`` agent never
sees the records, ``latest`` keeps older fixes and the group never commits them.

Every ``CHECK_SECONDS`` the guard asks the broker how far each partition this worker owns
goes. A partition whose records the agent has not all processed, with the agent idle and
that partition unmoved for ``STALL_SECONDS``, is made active again and its fetch position
set back to the first record not processed. When the consumer's fetch position is already
past that record, the records were fetched and thrown away: ``DROPPED_SECONDS`` is enough.
Records read twice are harmless: every stage after the batches topic is idempotent.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from tracker.metrics import PARTITION_RESTARTS

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
STALL_SECONDS = 5.0
DROPPED_SECONDS = 1.0


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
