"""A consumer group of the worker's own, for a stage that must not pay Faust's per-record cost.

``GroupConsumer`` reads one topic in fetched slices and hands each partition's slice to
``handle``. The subclass makes the slice's effects durable (now or later) and reports
it with ``done``; only offsets before which *everything* is durable are committed:

- offsets are handed over without gaps: if a fetch starts past the next expected offset,
  the partition is read again from that offset; only when the same hole comes back (the
  offsets hold no record: a transaction marker, or data removed by retention) is it
  accepted, with a log line;
- ``done`` calls are taken in order per partition and only for the partition's current
  assignment; ``rewind`` discards what is in flight and reads again from the last
  durable offset;
- offsets are committed every ``COMMIT_SECONDS``, when partitions are revoked and when
  the service stops.

At least once, then: after a crash the uncommitted tail is read again, and every sink
downstream is idempotent.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from faust import Service

from tracker.app import fatal
from tracker.stream.producer import MAX_REQUEST_BYTES
from tracker.settings import Settings

log = logging.getLogger(__name__)

COMMIT_SECONDS = 0.2
FETCH_TIMEOUT_MS = 100
#: A partition whose work failed is read again after this pause (a broker that refuses a
#: record is not asked again in a tight loop).
REWIND_PAUSE_SECONDS = 1.0


def group_consumer(config: Settings, group_id: str, **options) -> AIOKafkaConsumer:
    """A consumer of one of the worker's own groups: offsets committed by hand, from the
    earliest record when the group has none, and the same failure detection as Faust's."""
    return AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        group_instance_id=config.worker_id,
        max_partition_fetch_bytes=MAX_REQUEST_BYTES,
        fetch_max_bytes=4 * MAX_REQUEST_BYTES,
        **options,
    )


class GroupConsumer(Service):
    """Subclasses set ``name`` and implement ``handle``; see the module's docstring."""

    name = "consumer"

    def __init__(self, config: Settings, topic: str, group_id: str, *, max_records: int = 20_000,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.topic = topic
        self.group_id = group_id
        self.max_records = max_records
        self.consumer = None
        #: Per partition: the next offset to hand to ``handle``.
        self._next: dict[TopicPartition, int] = {}
        #: Per partition: every offset before this one is durable.
        self._durable: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        #: Per partition: bumped at every assignment and revocation, so that work started
        #: under an earlier assignment cannot report progress in a later one.
        self._epoch: dict[TopicPartition, int] = {}
        self._holes: dict[TopicPartition, tuple[int, int]] = {}
        self._last_commit = 0.0
        self._loop_task: asyncio.Task | None = None
        #: Set once the consumer has joined its group (and got its first assignment).
        self.joined = asyncio.Event()

    # --- for subclasses -------------------------------------------------------------
    async def handle(self, tp: TopicPartition, records: list) -> None:
        raise NotImplementedError

    async def on_assigned(self, partitions: set[TopicPartition]) -> None:
        """Partitions were assigned (before anything of theirs is handled)."""

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        """Partitions are being taken away: finish or drop their work in flight."""

    async def on_flush(self) -> None:
        """The service is stopping: finish the work in flight if it can be done quickly."""

    def epoch(self, tp: TopicPartition) -> int:
        return self._epoch.get(tp, 0)

    def done(self, tp: TopicPartition, epoch: int, start: int, next_offset: int) -> None:
        """The records of ``tp`` from ``start`` to before ``next_offset`` are durable. Progress
        is taken only when it continues what is durable already, and only in the epoch the
        records were handed over in."""
        durable = self._durable.get(tp)
        if self._epoch.get(tp) == epoch and durable is not None and start <= durable < next_offset:
            self._durable[tp] = next_offset

    def rewind(self, tp: TopicPartition, epoch: int) -> None:
        """Work of ``tp`` failed: forget what is in flight and, after a pause, read again from
        the last durable offset."""
        if self._epoch.get(tp) != epoch or tp not in self._durable or tp not in self.consumer.assignment():
            return
        offset = self._durable[tp]
        log.warning("%s: reading %s[%d] again from offset %d in %.0f s", self.name, tp.topic, tp.partition,
                    offset, REWIND_PAUSE_SECONDS)
        self._epoch[tp] = epoch + 1
        self._next[tp] = offset
        self._holes.pop(tp, None)
        self.consumer.seek(tp, offset)
        self.consumer.pause(tp)
        asyncio.get_running_loop().call_later(REWIND_PAUSE_SECONDS, self._resume_after_rewind, tp, epoch + 1)

    def _resume_after_rewind(self, tp: TopicPartition, epoch: int) -> None:
        if self._epoch.get(tp) == epoch and tp in self.consumer.assignment():
            self.consumer.resume(tp)

    @property
    def assigned(self) -> set[TopicPartition]:
        return set(self._epoch) if self.consumer is None else self.consumer.assignment()

    # --- lifecycle --------------------------------------------------------------------
    async def on_start(self) -> None:
        self.consumer = group_consumer(self.config, self.group_id, max_poll_interval_ms=600_000)
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        # Joining the group happens in the background, alongside the worker's other groups.
        self._loop_task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        if self._loop_task is not None:
            await asyncio.wait([self._loop_task], timeout=5)
            self._loop_task.cancel()
        try:
            await asyncio.wait_for(self.on_flush(), timeout=10)
        except asyncio.TimeoutError:
            log.warning("%s: stopping with work in flight; it will be read again", self.name)
        await self.commit(self.assigned)
        if self.consumer is not None:
            await self.consumer.stop()

    async def _run(self) -> None:
        consumer = self.consumer
        try:
            await consumer.start()
        except KafkaError as exc:
            fatal(f"{self.name}: cannot join consumer group {self.group_id}: {exc!r}")
        while not self.should_stop:
            try:
                fetched = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=self.max_records)
                await self._hand_over(fetched)
                if time.monotonic() - self._last_commit >= COMMIT_SECONDS:
                    await self.commit(self.assigned)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("%s: %r; retrying in 1 s", self.name, exc)
                await asyncio.sleep(1.0)
            except Exception as exc:  # noqa: BLE001 - a bug must not silently stop the stage
                log.exception("%s: failed", self.name)
                fatal(f"{self.name}: {exc!r}")

    async def _hand_over(self, fetched: dict) -> None:
        """``handle`` each partition's slice. If that fails, the partition is read again from
        the last durable offset, and every partition not handed over yet from where this
        fetch started it (the consumer's position is already past them)."""
        pending = dict(fetched)
        try:
            for tp, records in fetched.items():
                epoch = self.epoch(tp)
                records = await self._contiguous(tp, records)
                del pending[tp]
                if records:
                    try:
                        await self.handle(tp, records)
                    except KafkaError:
                        self.rewind(tp, epoch)
                        raise
        except KafkaError:
            assigned = self.consumer.assignment()
            for tp, records in pending.items():
                if tp in assigned:
                    self.consumer.seek(tp, min(self._next.get(tp, records[0].offset), records[0].offset))
            raise

    async def _contiguous(self, tp: TopicPartition, records: list) -> list:
        """``records`` without what was handed over already; [] (and a seek) if a fetch skipped offsets."""
        first = records[0].offset
        expected = self._next.get(tp)
        if expected is None:
            expected = self._next[tp] = await self._start_offset(tp, first)
            self._durable.setdefault(tp, expected)
        if first > expected:
            if self._holes.pop(tp, None) != (expected, first):
                # Read again from the expected offset; only if the very next fetch starts at
                # the same place again do those offsets hold no record.
                self._holes[tp] = (expected, first)
                log.warning("%s: a fetch of %s[%d] skipped offsets %d to %d; reading them again",
                            self.name, tp.topic, tp.partition, expected, first - 1)
                self.consumer.seek(tp, expected)
                return []
            log.info("%s: offsets %d to %d of %s[%d] hold no record", self.name, expected, first - 1,
                     tp.topic, tp.partition)
            if self._durable.get(tp) == expected:
                self._durable[tp] = first
        else:
            self._holes.pop(tp, None)
            if first < expected:
                records = [record for record in records if record.offset >= expected]
                if not records:
                    return []
        self._next[tp] = records[-1].offset + 1
        return records

    async def _start_offset(self, tp: TopicPartition, first: int) -> int:
        """Where this assignment must start: the group's commit. Without one, the consumer
        starts at the log's start, and the first record fetched is taken to be it (asking
        the broker would wait behind the fetch in flight, up to half a second a partition)."""
        committed = await self.consumer.committed(tp)
        if committed is None:
            return first
        self._committed[tp] = committed
        return committed

    async def commit(self, partitions: Iterable[TopicPartition]) -> None:
        self._last_commit = time.monotonic()
        assigned = self.consumer.assignment() if self.consumer is not None else set()
        offsets = {
            tp: self._durable[tp] for tp in partitions
            if tp in assigned and tp in self._durable and self._durable[tp] > self._committed.get(tp, -1)
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("%s: commit skipped during a rebalance (%r); the offsets are read again", self.name, exc)
            return
        except KafkaError as exc:
            log.warning("%s: commit failed (%r); retrying later", self.name, exc)
            return
        self._committed.update(offsets)

    async def _assigned(self, partitions: set[TopicPartition]) -> None:
        self.joined.set()
        for tp in partitions:
            self._epoch[tp] = self._epoch.get(tp, 0) + 1
            self._next.pop(tp, None)
            self._durable.pop(tp, None)
            self._committed.pop(tp, None)
            self._holes.pop(tp, None)
        await self.on_assigned(partitions)

    async def _revoked(self, partitions: set[TopicPartition]) -> None:
        await self.on_revoked(partitions)
        await self.commit(partitions)
        for tp in partitions:
            self._epoch[tp] = self._epoch.get(tp, 0) + 1


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: GroupConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked) -> None:
        await self.owner._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        await self.owner._assigned(set(assigned))
