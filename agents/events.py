"""events: what happened to each marker (geofences, speed, battery, online, alarms), in fix-time order.

The events stage of the batches topic. It runs in the same Faust agent as ``latest``
(``agents/latest.py`` calls ``apply`` with each batch it takes, decoded once for both):
faust-streaming stalls a rebalance for good when two agents read one topic (a record one
agent has started is skipped by the other, so it is never acknowledged and the group
waits for it). Faust gives the agent partition p of the topic together with partition p
of this stage's table, ``events-state`` (``tables/events_state.py``). Per batch and
partition it applies the fixes, in the order they were read, to the state of their
markers (``tracker.events.model.Detector``), then:

1. sends the events to ``gps.events`` (key: marker id, same partition) and waits for the
   broker's acknowledgement;
2. sends the changed states to the table's changelog, then writes them to RocksDB
   (``tables.changelog``).

A worker killed between 1 and 2 replays the batch from the old state: the same fixes in
the same order give the same events with the same ids, which the events sink and the
notifier write once. A worker killed before 1 has sent nothing.

Heartbeats (reports without a position) take the same two steps (``apply_heard``): they
keep a marker online, bring it back, and carry its battery and alarms.

``offline`` is raised on wall-clock time by a timer over the worker's own partitions: a
marker not heard from for ``TRACKER_OFFLINE_AFTER`` seconds (by the time the tracker
received its last fix or heartbeat), unless the agent is still behind on that partition (a backlog
after a restart must not look like silence).
"""
from __future__ import annotations

import asyncio
import logging
import time

from tables.changelog import PartitionStore
from tables.events_state import EventsStateWriter, decode, encode
from tracker.events import model
from tracker.app import app
from tracker.stream.retry import retrying
from tracker.events.model import Detector, Limits, MarkerState
from tracker.metrics import EVENTS_RAISED
from tracker.resources import agent_commits, geofences, worker_producer
from tracker.settings import settings

log = logging.getLogger(__name__)

FIRST_LOAD_WAIT_SECONDS = 10.0
#: How often the offline check runs: a tenth of the offline delay, between 0.2 and 10 s.
OFFLINE_CHECK_SECONDS = max(0.2, min(10.0, settings.offline_after / 10))

LIMITS = Limits(settings.speed_limit, settings.overspeed_reset_seconds, settings.low_battery)


#: Markers whose decoded state a worker keeps in memory (about 2 KB each), so that a
#: state is read from RocksDB and decoded once rather than at every batch.
CACHED_STATES = 50_000


class EventsStage:
    """The agent's state between batches: the writer, the detector for the current
    geofences, the states of the markers it saw last (``cache``: each state with its stored
    value, emptied when full and at every rebalance, since another worker may have changed
    a partition meanwhile), and per partition when each marker was last heard from (for
    the timer)."""

    def __init__(self, writer: EventsStateWriter) -> None:
        self.writer = writer
        self.store: PartitionStore = writer.store
        self.lock = asyncio.Lock()  # the agent and the timer change the same states
        self._detector: Detector | None = None
        #: partition -> marker id -> seen_us, for markers not offline (built on first use)
        self.seen: dict[int, dict[str, int]] = {}
        self.waited_for_geofences = False
        self.cache: dict[str, tuple[MarkerState, bytes]] = {}
        self.generation: object = None

    def _loader(self, partition: int, generation: object, stored: dict[str, bytes | None]):
        """``load(marker_id)`` for ``Detector.apply_fixes``: the state, from the cache or the
        store; the stored value goes to ``stored``."""
        if generation != self.generation:
            self.cache.clear()
            self.generation = generation
        cache, get = self.cache, self.store.get

        def load(marker_id: str) -> MarkerState:
            entry = cache.get(marker_id)
            if entry is not None:
                stored[marker_id] = entry[1]
                return entry[0]
            stored[marker_id] = value = get(partition, marker_id.encode())
            return decode(value)

        return load

    def _changes(self, partition: int, states: dict[str, MarkerState], stored: dict[str, bytes | None]) -> list:
        """(key, value) of the states that changed; every state goes to the cache with the
        value it will have in the store, and its newest fix's time to ``seen``."""
        cache, changes, seen = self.cache, [], self.seen.get(partition)
        if len(cache) + len(states) > CACHED_STATES:
            cache.clear()
        for marker_id, state in states.items():
            value = encode(state)
            if value != stored[marker_id]:
                changes.append((marker_id.encode(), value))
            cache[marker_id] = (state, value)
            if seen is not None and state.seen_us is not None and not state.offline:
                seen[marker_id] = state.seen_us
        return changes

    @property
    def detector(self) -> Detector:
        index = geofences.index
        if self._detector is None or self._detector.geofences is not index:
            self._detector = Detector(index, LIMITS, judge_geofences=geofences.loaded.is_set())
        return self._detector

    async def apply(self, fixes_by_partition: dict[int, list[list]], generation: object = None,
                    heard: bool = False) -> int:
        """Apply fixes of the batches topic (or heartbeats, with ``heard``), per partition, in
        the order read; the number of events raised. An exception leaves the cache ahead of
        the store: the caller must stop the worker."""
        detector = self.detector
        apply_reports = detector.apply_heard if heard else detector.apply_fixes
        async with self.lock:
            results = {}
            for partition, fixes in fixes_by_partition.items():
                stored: dict[str, bytes | None] = {}
                found, states = apply_reports(fixes, self._loader(partition, generation, stored))
                results[partition] = (found, self._changes(partition, states, stored))
            await self._publish(results)
        return _count(found for found, _ in results.values())

    async def _publish(self, results: dict[int, tuple[list[dict], list]]) -> None:
        """Events first, then the states: a crash in between replays the same events."""
        await asyncio.gather(*(
            retrying(f"events: sending to {settings.events_topic} for partition {p}",
                     lambda p=p, f=found: self._send_events(p, f))
            for p, (found, _) in results.items() if found))
        changed = {p: changes for p, (_, changes) in results.items() if changes}
        offsets = await asyncio.gather(*(
            retrying(f"events: the changelog send for partition {p}", lambda p=p, c=c: self.writer.send(p, c))
            for p, c in changed.items()))
        for (partition, changes), offset in zip(changed.items(), offsets):
            self.writer.commit(partition, changes, offset)

    async def _send_events(self, partition: int, found: list[dict]) -> None:
        records = [(event["marker_id"].encode(), model.encode(event)) for event in found]
        for future, _ in await self.writer.send_many(settings.events_topic, partition, records):
            await future

    async def check_offline(self, partitions: list[int], now_us: int | None = None,
                            generation: object = None) -> int:
        """Raise ``offline`` for the markers of ``partitions`` not heard from for too long."""
        try:
            return await self._check_offline(partitions, now_us, generation)
        except BaseException:
            self.cache.clear()  # it may hold states the store never got
            raise

    async def _check_offline(self, partitions: list[int], now_us: int | None, generation: object) -> int:
        now_us = time.time_ns() // 1000 if now_us is None else now_us
        cutoff = now_us - int(settings.offline_after * 1_000_000)
        for partition in set(self.seen) - set(partitions):
            del self.seen[partition]
        detector = self.detector
        async with self.lock:
            results = {}
            for partition in partitions:
                seen = self.seen.get(partition)
                if seen is None:
                    seen = self.seen[partition] = self._scan(partition)
                found, states, stored = [], {}, {}
                load = self._loader(partition, generation, stored)
                for marker_id in [m for m, seen_us in seen.items() if seen_us < cutoff]:
                    del seen[marker_id]
                    state = load(marker_id)
                    event = detector.offline(marker_id, state)
                    if event is not None:
                        found.append(event)
                        states[marker_id] = state
                if found:
                    results[partition] = (found, self._changes(partition, states, stored))
            if results:
                await self._publish(results)
        return _count(found for found, _ in results.values())

    def _scan(self, partition: int) -> dict[str, int]:
        seen = {}
        for key, value in self.store.items(partition):
            state = decode(value)
            if state.seen_us is not None and not state.offline:
                seen[key.decode()] = state.seen_us
        return seen


def _count(slices) -> int:
    raised = 0
    for found in slices:
        for event in found:
            EVENTS_RAISED.labels(event["type"]).inc()
            raised += 1
    return raised


async def _geofences_loaded() -> None:
    """Wait a little for the first load of the geofences: judged without them, every marker
    would leave the geofences it is in. If Postgres stays away (and there is no snapshot),
    go on without judging crossings rather than hold up ``latest``, which reads the same
    stream through the same consumer."""
    if geofences.loaded.is_set() or _stage is None or _stage.waited_for_geofences:
        return
    try:
        await asyncio.wait_for(geofences.loaded.wait(), FIRST_LOAD_WAIT_SECONDS)
    except asyncio.TimeoutError:
        log.warning("events: the geofences cannot be loaded yet; crossings are not judged until they are")
    _stage.waited_for_geofences = True


_stage: EventsStage | None = None


async def stage() -> EventsStage:
    global _stage
    if _stage is None:
        _stage = EventsStage(EventsStateWriter((await worker_producer.ready()).send_many))
    return _stage


async def apply(fixes_by_partition: dict[int, list[list]], generation: object) -> int:
    """The events of a batch of fixes the ``latest`` agent took (per partition); the number raised."""
    current = await stage()
    await _geofences_loaded()
    return await current.apply(fixes_by_partition, generation)


async def apply_heard(heard_by_partition: dict[int, list[list]], generation: object) -> int:
    """The events of a batch of heartbeats the ``latest`` agent took (per partition)."""
    current = await stage()
    return await current.apply(heard_by_partition, generation, heard=True)


if settings.events_enabled:  # TRACKER_EVENTS=off: no events stage, no offline timer
    @app.timer(OFFLINE_CHECK_SECONDS)
    async def raise_offline() -> None:
        if _stage is None:
            return
        actives = [tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.batches_topic]
        try:
            await _stage.check_offline(await agent_commits.caught_up(actives), generation=app.consumer_generation_id)
        except Exception:  # noqa: BLE001 - the next tick tries again
            log.exception("events: the offline check failed")
