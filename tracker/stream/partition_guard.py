"""Brings back a partition that Faust's consumer stopped delivering.

The patches of ``tracker.stream.faust_internals`` close the places where faust-streaming
was seen to throw records away after a rebalance; records skipped in the middle of a
partition are read again by ``tracker.stream.continuity`` when the next one arrives. What
is left for this guard: a partition whose last records were dropped, or that Faust left out
of its fetches, while nothing comes after them. The ``latest`` agent then never sees them,
``latest`` keeps older fixes and the group never commits them.

Each partition is judged on its own, every ``CHECK_SECONDS``, by ``PartitionGuard``: the
agent has not processed it to its end, has not moved on it for a while, and Faust has
delivered nothing of it past what the agent processed (its read offset is behind the
agent's next offset, so nothing of it waits in the agent's queue). If aiokafka's fetch
position is past the agent's next offset, the records were fetched and dropped:
``DROPPED_SECONDS`` is enough; otherwise the partition is not being fetched:
``STALL_SECONDS``. It is then fetched again from the agent's next offset and made active.
Records read twice are harmless: every stage after the batches topic is idempotent.

The same can befall a table's changelog partition while Faust recovers the table from it:
the recovery then waits for records that never come, and the worker never gets ready.
``RecoveryGuard`` fetches such a partition again from where the recovery stands, once
nothing has arrived for it in ``RECOVERY_STALL_SECONDS``.

Both run in one worker service (``PartitionGuards``), from the start of the worker, so also
during its first recovery; each looks at ownership, recovery and the generation again right
before it acts, and does nothing when they changed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from faust import Service
from faust.types import TP

from tracker.metrics import PARTITION_RESTARTS
from tracker.stream import faust_internals

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
    #: () -> (generation, partitions of the topic owned) now, or None while they may move
    owned: Callable[[], tuple[int, list[int]] | None]
    #: () -> partition -> the offset the next record of the topic will get
    ends: Callable[[], Awaitable[dict[int, int]]]
    #: partition -> the next offset the agent has yet to process in this generation
    next_offset: Callable[[int], int | None]
    #: partition -> the offset of the last record Faust's consumer delivered (None: none)
    delivered: Callable[[int], int | None]
    #: partition -> the offset aiokafka fetches next (None: unknown)
    position: Callable[[int], int | None]
    #: (partition, offset, generation) -> fetch it again from offset if nothing changed
    #: meanwhile: what Faust had made of it, for the log, or None if it did not act
    restart: Callable[[int, int, int], Awaitable[str | None]]
    stall_seconds: float = STALL_SECONDS
    dropped_seconds: float = DROPPED_SECONDS
    clock: Callable[[], float] = time.monotonic
    behind: dict[int, Behind] = field(default_factory=dict)
    restarts: int = 0

    async def check(self) -> list[int]:
        """Restart the partitions stalled since the last checks; those restarted."""
        state = self.owned()
        if state is None:
            self.behind.clear()
            return []
        generation, owned = state
        ends = await self.ends()
        now, restarted = self.clock(), []
        for partition in list(self.behind):
            if partition not in owned:
                del self.behind[partition]
        for partition in owned:
            next_offset = self.next_offset(partition)
            if next_offset is None or next_offset >= ends.get(partition, 0):
                self.behind.pop(partition, None)
                continue
            seen = self.behind.get(partition)
            if seen is None or seen.next_offset != next_offset:
                self.behind[partition] = Behind(next_offset, now)
                continue
            delivered = self.delivered(partition)
            if delivered is not None and delivered >= next_offset:
                continue  # handed to the agent, waiting in its queue
            position = self.position(partition)
            dropped = position is not None and position > next_offset
            waited = now - seen.since
            if waited < (self.dropped_seconds if dropped else self.stall_seconds):
                continue
            found = await self.restart(partition, next_offset, generation)
            if found is None:
                continue
            log.warning("latest: partition %d stalled at offset %d of %d for %.0f s (%s); fetching it again",
                        partition, next_offset, ends[partition], waited, found)
            PARTITION_RESTARTS.inc()
            self.restarts += 1
            self.behind[partition] = Behind(next_offset, now)
            restarted.append(partition)
        return restarted


@dataclass
class RecoveryGuard:
    #: () -> Faust's table recovery (``app.tables.recovery``)
    recovery: Callable[[], Any]
    #: (changelog partition, offset, started) -> fetch it again from offset if the same
    #: recovery (started at ``started``) still waits for it; whether it did
    restart: Callable[[Any, int, float], Awaitable[bool]]
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
            if not await self.restart(tp, offset, started):
                continue
            log.warning("recovery: %s partition %d got nothing for %.0f s with %d records to go; "
                        "fetching it again from offset %d", tp.topic, tp.partition, now - last, remaining, offset)
            PARTITION_RESTARTS.inc()
            self.restarts += 1
            self.restarted_at[tp] = now
            restarted.append(tp)
        return restarted


class PartitionGuards(Service):
    """Both guards for ``app``'s consumer, the ``latest`` agent's ``topic`` and its
    ``commits`` (``tracker.stream.commits.AgentCommits``), every ``CHECK_SECONDS``."""

    def __init__(self, app, topic: str, offsets, commits, **kwargs) -> None:
        super().__init__(**kwargs)
        self.app, self.topic, self.commits = app, topic, commits
        self.partitions = PartitionGuard(self._owned, offsets.end_offsets, self._next_offset, self._delivered,
                                         self._position, self._restart)
        self.recovery = RecoveryGuard(lambda: app.tables.recovery, self._restart_changelog)

    def _settled(self, generation: int) -> bool:
        app = self.app
        return (not app.rebalancing and not app.in_recovery and app.consumer.flow_active
                and app.consumer_generation_id == generation)

    def _owned(self) -> tuple[int, list[int]] | None:
        generation = self.app.consumer_generation_id
        return (generation, self.commits.owned()) if self._settled(generation) else None

    def _next_offset(self, partition: int) -> int | None:
        if self.commits.generation != self.app.consumer_generation_id:
            return None
        found = [offsets[partition] for offsets in (self.commits.next_offset, self.commits.committed)
                 if partition in offsets]
        return max(found) if found else None

    def _delivered(self, partition: int) -> int | None:
        return faust_internals.read_offset(self.app.consumer, TP(self.topic, partition))

    def _position(self, partition: int) -> int | None:
        return faust_internals.fetch_position(self.app.consumer, TP(self.topic, partition))

    async def _restart(self, partition: int, offset: int, generation: int) -> str | None:
        consumer, tp = self.app.consumer, TP(self.topic, partition)
        found = faust_internals.partition_state(consumer, tp)
        await consumer.seek_wait({tp: offset})
        if not self._settled(generation) or tp not in consumer.assignment():
            return None
        consumer.resume_partitions([tp])
        return found

    async def _restart_changelog(self, tp: TP, offset: int, started: float) -> bool:
        consumer, recovery = self.app.consumer, self.app.tables.recovery
        await consumer.seek_wait({tp: offset})
        if not (recovery.in_recovery and faust_internals.recovery_started_at(recovery) == started
                and recovery.active_remaining().get(tp, 0) > 0):
            return False
        consumer.resume_partitions([tp])
        return True

    @Service.task
    async def _check(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                if self.app.in_recovery:
                    await self.recovery.check()
                else:
                    await self.partitions.check()
            except Exception:  # noqa: BLE001 - a check that failed is tried again at the next tick
                log.exception("latest: cannot check the partitions' progress")
