"""journeys: each marker's trips, stops, spikes and odometer, fix by fix (``tracker.journeys.motion``).

A stage of the one Faust agent on the batches topic (``agents/latest.py``), like the events
stage and for the same reason. Per batch and partition it takes the fixes, in the order
read, into the motion state of their markers (table ``journeys-state``), then:

1. sends what the model finished (trips, stops, spikes) and the days late fixes made stale
   to ``gps.journeys`` (key: marker id, same partition) and waits for the acknowledgement;
2. sends the changed states to the table's changelog, then writes them to RocksDB.

The ``latest`` write of the same batch carries each marker's odometer and whether it is
moving (``annotations``). A worker killed between 1 and 2 replays the batch from the old
state and sends the same records again: the sink writes them idempotently.

A timer applies the gap rule on the wall clock: it ends the open trip of a marker whose
newest fix is older than ``TRACKER_TRIP_GAP_SECONDS`` once nothing more has come from it
for ``IDLE_GRACE_SECONDS`` (the last trip of a track, or of an import, is not left open).

A fix not newer than every fix the model took for its marker is late: history stores it
as usual; if it is older than the marker's open trip (or still period), a ``dirty`` record
asks for that day to be recomputed from history now; if it falls inside it, or before it
while the marker has no finished trip or stop yet (a phone's queued fixes arriving out of
order at its start), the day is marked once that period is finished. A replayed batch
looks late too: the recompute it causes gives the same result, since recomputed and live
trips agree for in-order fixes.
"""
from __future__ import annotations

import asyncio
import logging
import time

from tables.changelog import PartitionStore
from tables.journeys_state import JourneysStateWriter, decode, encode
from tracker.journeys import records
from tracker.journeys import motion
from tracker.app import app
from tracker.stream.retry import retrying
from tracker.journeys.records import RULES
from tracker.metrics import JOURNEYS_RECORDS
from tracker.journeys.motion import TRACK_BREAK, MotionState, Spike
from tracker.resources import agent_commits, worker_producer
from tracker.settings import settings

log = logging.getLogger(__name__)

#: Markers whose decoded state a worker keeps in memory (a few hundred bytes each).
CACHED_STATES = 100_000
RECEIVED = 11  # received_us in a fix of the batches topic
ATTRIBUTES = 10
#: How often the timer looks for trips whose marker went silent.
IDLE_CHECK_SECONDS = 5.0
#: A trip whose last fix is older than the gap ends once the tracker has not heard from its
#: marker for this long either (a device uploading what it recorded offline, or an import,
#: sends fixes that are old already: their trip ends when the sending stops).
IDLE_GRACE_SECONDS = 10.0

#: partition -> marker id -> (odometer m, moving): what ``latest`` stores with the newest fix
Annotations = dict[int, dict[str, tuple[float, bool]]]


class JourneysStage:
    """The states of the markers seen last (``cache``: each with its stored value; emptied
    when full and at every rebalance) and the writer of the table."""

    def __init__(self, writer: JourneysStateWriter) -> None:
        self.writer = writer
        self.store: PartitionStore = writer.store
        self.cache: dict[str, tuple[MotionState, bytes | None]] = {}
        self.generation: object = None
        self.lock = asyncio.Lock()  # the agent and the idle timer change the same states
        #: partition -> marker id -> (newest fix time, heard_us), for markers with an open trip
        #: (built on first use)
        self.open_trips: dict[int, dict[str, tuple[int, int]]] = {}

    def compute(self, fixes_by_partition: dict[int, list[list]], generation: object = None):
        """Run the model over a batch: the annotations for ``latest``, and per partition
        the records to send and the changed states (for ``publish``)."""
        if generation != self.generation:
            self.cache.clear()
            self.generation = generation
        if len(self.cache) > CACHED_STATES:
            self.cache.clear()
        annotations: Annotations = {}
        results = {}
        for partition, fixes in fixes_by_partition.items():
            found, states = self._apply(partition, fixes)
            annotations[partition] = marked = {}
            results[partition] = (found, self._changes(partition, states, marked))
        return annotations, results

    def end_idle_trips(self, partitions: list[int], now_us: int, generation: object = None):
        """End the open trips of the markers of ``partitions`` whose newest fix is older than
        the gap and that the tracker has not heard from for ``IDLE_GRACE_SECONDS``; the
        records and changed states to ``publish``."""
        if generation != self.generation:
            self.cache.clear()
            self.generation = generation
        for partition in set(self.open_trips) - set(partitions):
            del self.open_trips[partition]
        cutoff = now_us - int(RULES.gap_seconds * 1_000_000)
        heard_cutoff = now_us - int(IDLE_GRACE_SECONDS * 1_000_000)
        results = {}
        for partition in partitions:
            open_trips = self.open_trips.get(partition)
            if open_trips is None:
                open_trips = self.open_trips[partition] = self._scan(partition)
            states, found, out = {}, [], []
            for marker_id in [m for m, (seen, heard) in open_trips.items() if seen < cutoff and heard < heard_cutoff]:
                del open_trips[marker_id]
                entry = self.cache.get(marker_id)
                if entry is None:
                    value = self.store.get(partition, marker_id.encode())
                    entry = (decode(value), value)
                if motion.end_idle_trip(entry[0], RULES, out):
                    states[marker_id] = entry
                    # a day to recompute waits for the marker's newest fix, already in history
                    self._finished(marker_id, entry[0], entry[0].seen_us, out, found)
                    out.clear()
            if states:
                results[partition] = (found, self._changes(partition, states))
        return results

    def _scan(self, partition: int) -> dict[str, int]:
        found = {}
        for key, value in self.store.items(partition):
            state = decode(value)
            if state.trip_open and state.heard_us is not None:
                found[key.decode()] = (state.seen_us, state.heard_us)
        return found

    def _apply(self, partition: int, fixes: list[list]):
        cache, get, rules = self.cache, self.store.get, RULES
        advance, late = motion.advance, motion.late
        states: dict[str, tuple[MotionState, bytes | None]] = {}
        found: list[dict] = []
        out: list = []
        for fix in fixes:
            marker_id = fix[0]
            entry = states.get(marker_id)
            if entry is None:
                entry = cache.get(marker_id)
                if entry is None:
                    value = get(partition, marker_id.encode())
                    entry = (decode(value), value)
                states[marker_id] = entry
            state = entry[0]
            t = fix[1]
            state.heard_us = fix[RECEIVED]
            attributes = fix[ATTRIBUTES]
            if not advance(state, t, fix[2], fix[3], fix[4], rules, out,
                           attributes is not None and attributes.get(TRACK_BREAK) is True):
                if late(state, t):
                    found.append(records.dirty_record(marker_id, t, t))
                continue
            if out:
                self._finished(marker_id, state, t, out, found)
                out.clear()
        return found, states

    @staticmethod
    def _finished(marker_id: str, state: MotionState, t: int, out: list, found: list[dict]) -> None:
        """Records for what the model finished; ``t``: the fix history must hold before a
        day marked here is recomputed."""
        for item in out:
            found.append(records.record_of(marker_id, item))
        late_us = state.late_us
        if late_us is not None:
            closed = [item for item in out if not isinstance(item, Spike) and item.end_us >= late_us]
            if closed:  # the period a late fix fell into is finished: recompute its day now
                found.append(records.dirty_record(marker_id, min(late_us, *(item.start_us for item in closed)), t))
                state.late_us = None

    def _changes(self, partition: int, states: dict[str, tuple[MotionState, bytes | None]],
                 annotations: dict[str, tuple[float, bool]] | None = None) -> list[tuple[bytes, bytes]]:
        """The (key, value) of every state that differs from its stored value, in one pass
        that also caches the states, keeps ``open_trips`` and fills ``annotations``."""
        cache, changes, open_trips = self.cache, [], self.open_trips.get(partition)
        for marker_id, entry in states.items():
            state = entry[0]
            value = encode(state)
            if value != entry[1]:
                changes.append((marker_id.encode(), value))
            cache[marker_id] = (state, value)
            if annotations is not None:
                annotations[marker_id] = (state.odometer, not state.still)
            if open_trips is not None:
                if state.trip_open and state.heard_us is not None:
                    open_trips[marker_id] = (state.seen_us, state.heard_us)
                else:
                    open_trips.pop(marker_id, None)
        return changes

    async def publish(self, results: dict[int, tuple[list[dict], list]]) -> None:
        """Records first, then the states: a crash in between replays the same records."""
        await asyncio.gather(*(
            retrying(f"journeys: sending to {settings.journeys_topic} for partition {p}",
                     lambda p=p, f=found: self._send(p, f))
            for p, (found, _) in results.items() if found))
        changed = {p: changes for p, (_, changes) in results.items() if changes}
        offsets = await asyncio.gather(*(
            retrying(f"journeys: the changelog send for partition {p}", lambda p=p, c=c: self.writer.send(p, c))
            for p, c in changed.items()))
        for (partition, changes), offset in zip(changed.items(), offsets):
            self.writer.commit(partition, changes, offset)
        for found, _ in results.values():
            for record in found:
                JOURNEYS_RECORDS.labels(record["kind"]).inc()

    async def _send(self, partition: int, found: list[dict]) -> None:
        batch = [(r["marker_id"].encode(), records.encode(r)) for r in found]
        for future, _ in await self.writer.send_many(settings.journeys_topic, partition, batch):
            await future


_stage: JourneysStage | None = None


async def stage() -> JourneysStage:
    global _stage
    if _stage is None:
        _stage = JourneysStage(JourneysStateWriter((await worker_producer.ready()).send_many))
    return _stage


if settings.journeys_enabled:
    @app.timer(IDLE_CHECK_SECONDS)
    async def end_idle_trips() -> None:
        """The wall-clock side of the gap rule, on the worker's own partitions once the agent
        has caught up on them (a backlog after a restart must not look like silence)."""
        if _stage is None:
            return
        actives = [tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.batches_topic]
        try:
            partitions = await agent_commits.caught_up(actives)
            async with _stage.lock:
                await _stage.publish(_stage.end_idle_trips(partitions, time.time_ns() // 1000,
                                                           app.consumer_generation_id))
        except Exception:  # noqa: BLE001 - the next tick tries again
            _stage.cache.clear()  # it may hold states the store never got
            log.exception("journeys: ending idle trips failed")
