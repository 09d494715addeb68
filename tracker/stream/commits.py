"""The ``latest`` agent's own offsets: what it processed, committed by itself, and the lease
that lets a worker answer reads for the partitions it owns.

The batches topic is declared with Faust's acknowledgements off, so Faust never commits it.
The agent reports each batch once it is durable (the changelog acknowledged, RocksDB
written): per partition, the offset after the last record it processed (``processed``).
The agent sees every record of a partition in order from the group's commit on (records
Faust skipped are read again first: ``tracker.stream.continuity``), so that offset is the
contiguous end of what is done. ``AgentCommits`` commits it:

- every ``COMMIT_SECONDS``, and when partitions are revoked, once the batch in flight is
  done (Faust does not wait for events of a topic it does not acknowledge);
- through Faust's own group member, as the member of the generation the records were
  read in (``faust_internals.commit``): after a rebalance the commit fails instead of
  winning, and the records are read again by their new owner;
- nothing of an earlier generation is kept: at a new assignment the agent starts again
  from the group's commit.

The same commits prove that this worker still owns its partitions: a commit the broker
accepted at time t shows that the member was in the group, in that generation, at t. A
worker answers reads for its partitions only while the last accepted commit was sent less
than ``LEASE_SECONDS`` ago and the process has not stood still since (``proven``): a worker
that was stopped (``SIGSTOP``) or cut off from the broker past its session timeout stops
answering before another worker can have taken its partitions over, and answers again once
a commit has been accepted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from faust import Service
from faust.types import TP

from tracker.stream import faust_internals

log = logging.getLogger(__name__)

COMMIT_SECONDS = 0.5
#: How long an accepted commit proves ownership: well within the group's session timeout
#: (10 s), after which the broker may give the partitions to another member.
LEASE_SECONDS = 6.0
#: A gap this long between two ticks of the event loop means the process stood still
#: (stopped, or starved): ownership is proven again by the next accepted commit.
STALL_SECONDS = 2.0
TICK_SECONDS = 0.25
COMMIT_TIMEOUT = 5.0
#: How long a revocation waits for the batch in flight (well within the rebalance timeout).
REVOKE_WAIT_SECONDS = 5.0


class AgentCommits(Service):
    """See the module's docstring. ``app`` is the Faust app, ``topic`` the batches topic,
    ``committed()`` the group's committed offsets by partition (``BrokerOffsets.committed``)."""

    def __init__(self, app, topic: str, committed: Callable, ends: Callable,
                 clock: Callable[[], float] = time.monotonic, **kwargs) -> None:
        super().__init__(**kwargs)
        self.app, self.topic = app, topic
        self.committed_offsets, self.end_offsets = committed, ends
        self.clock = clock
        #: The generation ``next_offset`` belongs to.
        self.generation: int | None = None
        #: partition -> the offset after the last record the agent processed in ``generation``
        self.next_offset: dict[int, int] = {}
        #: partition -> what the group has committed of it (from the broker or from here)
        self.committed: dict[int, int] = {}
        #: clock() when the agent last finished a batch; None while it works on one
        self.processed_at: float | None = clock()
        #: clock() when the last commit the broker accepted was sent
        self.proven_at: float | None = None
        self.stalled_at = float("-inf")
        self._ticked_at = clock()
        self._lock = asyncio.Lock()
        #: set while the agent is not in the middle of a batch
        self._idle = asyncio.Event()
        self._idle.set()

    # --- what the agent reports ---------------------------------------------------------
    def working(self) -> None:
        self.processed_at = None
        self._idle.clear()

    def finished(self) -> None:
        """The batch is over, done or given up (``processed`` reports what was done)."""
        if self.processed_at is None:
            self.processed_at = self.clock()
        self._idle.set()

    def processed(self, generation: int, offsets: dict[int, int]) -> None:
        """The batch is durable: per partition, the offset after the last record processed
        (ignored when it was read in a generation that is over)."""
        self.processed_at = self.clock()
        if generation != self.app.consumer_generation_id:
            return
        self._in_generation(generation)
        for partition, offset in offsets.items():
            if offset > self.next_offset.get(partition, -1):
                self.next_offset[partition] = offset

    def idle_seconds(self) -> float:
        """How long the agent has been waiting for records (0 while it works on a batch)."""
        return 0.0 if self.processed_at is None else self.clock() - self.processed_at

    # --- ownership ----------------------------------------------------------------------
    def proven(self) -> bool:
        """Whether this worker has proven lately that it is the member it believes to be."""
        now = self.clock()
        if now - self._ticked_at > STALL_SECONDS:  # the loop stood still until this moment
            self.stalled_at = now
        return (self.proven_at is not None and self.proven_at >= self.stalled_at
                and now - self.proven_at < LEASE_SECONDS)

    async def writable(self, generation: int) -> bool:
        """Whether the agent may still write what it read in ``generation``: once this worker
        has proven it is that member (waiting for the proof after a stall); False as soon as
        the generation is over, for then another worker may own the partitions and write
        newer values that these would follow in the changelogs."""
        while self.app.consumer_generation_id == generation:
            if self.proven():
                return True
            await asyncio.sleep(TICK_SECONDS)
        return False

    def owned(self) -> list[int]:
        """The partitions of the topic assigned to this worker in the current generation."""
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic)

    # --- committing ---------------------------------------------------------------------
    def _in_generation(self, generation: int) -> None:
        """Start again from the group's commit at a new generation."""
        if generation != self.generation:
            self.generation, self.next_offset, self.committed = generation, {}, {}

    async def commit(self, partitions: list[int] | None = None) -> bool:
        """Commit what the agent processed of ``partitions`` (of all it owns when None, which
        also renews the lease when the broker accepts) in the current generation. False if
        nothing was sent or the broker refused. ``partitions`` are given while they are
        being revoked, in the rebalance; otherwise nothing is sent while one is under way."""
        async with self._lock:
            generation = self.app.consumer_generation_id
            if generation is None or generation < 0 or (partitions is None and self.app.rebalancing):
                return False
            owned = self.owned() if partitions is None else partitions
            if not owned:
                return False
            self._in_generation(generation)
            if any(p not in self.committed for p in owned):
                self.committed.update(await self.committed_offsets())
            offsets = {p: max(self.next_offset.get(p, 0), self.committed.get(p, 0)) for p in owned}
            sent_at = self.clock()
            if not await faust_internals.commit(self.app.consumer, {TP(self.topic, p): o for p, o in offsets.items()},
                                                generation, COMMIT_TIMEOUT):
                return False
            self.committed.update(offsets)
            if partitions is None:
                self.proven_at = sent_at
            return True

    async def on_revoked(self, revoked) -> None:
        """Partitions are being taken away: once the batch in flight is done (at most
        ``REVOKE_WAIT_SECONDS``), commit what was processed of them, then forget them; reads
        wait for the next proof."""
        mine = sorted(tp.partition for tp in revoked if tp.topic == self.topic)
        try:
            await asyncio.wait_for(self._idle.wait(), REVOKE_WAIT_SECONDS)
        except asyncio.TimeoutError:
            log.warning("latest: a batch was still in flight %.0f s into the rebalance; committing what is done",
                        REVOKE_WAIT_SECONDS)
        if mine:
            try:
                await self.commit(mine)
            except Exception:  # noqa: BLE001 - the new owner reads again from the last commit
                log.exception("latest: cannot commit the revoked partitions %s", mine)
        self.proven_at = None
        for partition in mine:
            self.next_offset.pop(partition, None)
            self.committed.pop(partition, None)

    async def caught_up(self, partitions: list[int]) -> list[int]:
        """Those of ``partitions`` whose every record the agent has processed, by its own
        count or by the group's commit. Behind (a backlog after a restart), silence is not
        silence yet."""
        committed, ends = await self.committed_offsets(), await self.end_offsets()
        return [p for p in partitions
                if max(self.next_offset.get(p, 0), committed.get(p, 0)) >= ends.get(p, 0)]

    async def on_start(self) -> None:
        self._ticked_at = self.clock()

    @Service.task
    async def _tick(self) -> None:
        while not self.should_stop:
            now = self.clock()
            if now - self._ticked_at > STALL_SECONDS:
                self.stalled_at = now
                log.warning("latest: the worker stood still for %.1f s; it answers for its partitions again once "
                            "the broker accepts a commit", now - self._ticked_at)
            self._ticked_at = now
            await asyncio.sleep(TICK_SECONDS)

    @Service.task
    async def _commit_regularly(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(COMMIT_SECONDS)
            if self.app.in_recovery or self.app.should_stop:
                continue
            try:
                await self.commit()
            except Exception:  # noqa: BLE001 - tried again at the next tick
                if self.should_stop or self.app.should_stop:
                    return  # the consumer stops first; the last commit was at the revocation
                log.exception("latest: cannot commit")
