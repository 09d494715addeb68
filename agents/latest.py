"""latest: keep each marker's newest fix in the ``latest`` table; late fixes never move it back.

The one Faust agent on the batches topic, so Faust's partition assignment gives partition
p of the topic to the worker that owns partition p of the tables. Each event carries up to
a thousand fixes; the agent takes a few events at a time, decodes them once and, per
partition, writes each marker once: the newest fix of the slice, if it is newer than the
stored one (``tables.latest.LatestWriter``: changelog first, then RocksDB), with the
marker's odometer and motion from the journeys stage (``agents/journeys.py``), which runs
first on the same fixes. The events stage (``agents/events.py``) takes them at the same
time as the ``latest`` write. Heartbeats (reports without a position) go to
``agents/liveness.py`` after the fixes of the same step. Only one agent
reads the topic: with two, faust-streaming can stall a rebalance for good (a record one
agent has started and the other skips is never acknowledged, and the group waits for it).

Faust does not track the topic's offsets: once a batch is durable the agent reports how far
it got, and ``tracker.stream.commits.AgentCommits`` commits that, as the group member of the
generation the events were read in. Events of a generation that is over are left to the
partitions' new owner, and nothing is written once the generation has ended or while this
worker has not proven lately that it still owns the partitions (after being stopped, say):
another worker may hold newer values by then. Nothing may leave the loop with an
exception: Kafka errors are retried until they pass, and anything else stops the worker
(``tracker.app.fatal``), so the events are read again from the group's commit after a
restart. Offsets Faust's consumer skipped are read again first (``tracker.stream.continuity``);
a partition it stopped delivering, and a changelog partition its recovery waits for in
vain, are fetched again (``tracker.stream.partition_guard``).
"""
from __future__ import annotations

import asyncio
import logging

from agents import events as events_stage
from agents import journeys as journeys_stage
from agents import liveness
from tables import erase as tables_erase
from tables.latest import LatestWriter
from tracker.stream import batches
from tracker.app import app, fatal
from tracker.stream.continuity import Continuity
from tracker.stream.retry import retrying
from tracker.metrics import LATEST_UPDATES
from tracker.resources import agent_commits, batches_offsets, worker_producer
from tracker.settings import settings
from tracker.stream.topics import batches_topic

log = logging.getLogger(__name__)

#: Batch records taken at once (each up to a thousand fixes), and the longest wait for them.
#: When the stream runs ahead (a backlog after a restart), a marker's fixes of all of them
#: become one write: ten times fewer changelog records than one write per batch record.
MAX_EVENTS = 128
WITHIN_SECONDS = 0.02
#: Behind by this many batch records or more (a backlog: a restart, a burst beyond what the
#: worker takes), the agent pauses this long after each step, so that the next step takes
#: what arrived meanwhile: far fewer, larger steps, each marker written once per step (a
#: drain of a million fixes ran 15-20 % faster). A worker that keeps up never pauses.
CATCH_UP_RECORDS = 100
CATCH_UP_SECONDS = 0.08

continuity = Continuity(batches_offsets.committed, batches_offsets.read, "latest")


@app.agent(batches_topic, name="latest")
async def track_latest(stream):
    writer = None
    async for events in stream.take_events(MAX_EVENTS, within=WITHIN_SECONDS):
        agent_commits.working()
        try:
            if writer is None:
                writer = LatestWriter((await worker_producer.ready()).send_many)
            generation = app.consumer_generation_id
            # Read in an assignment that is over: the partition may be another worker's by
            # now, and its new owner reads them again from the group's commit.
            current = [event for event in events if event.message.generation_id == generation]
            if await apply_batch(writer, current, generation):
                touched = {event.message.partition for event in current}
                agent_commits.processed(generation, {p: continuity.next[p] for p in touched if p in continuity.next})
        except asyncio.CancelledError:  # stopped in the middle: the events would be acknowledged
            fatal("latest: stopped in the middle of a batch")
        except Exception as exc:  # noqa: BLE001 - acknowledging now would lose the events
            log.exception("latest: cannot apply a batch")
            fatal(f"latest: {exc!r}")
        finally:
            agent_commits.finished()
        if records_behind(app.consumer, continuity.next) >= CATCH_UP_RECORDS:
            await asyncio.sleep(CATCH_UP_SECONDS)


def records_behind(consumer, next_offsets: dict[int, int]) -> int:
    """How many records of the batches topic the agent has still to take, over the
    partitions it owns, as of the consumer's last fetch of each."""
    topic, behind = batches_topic.get_topic_name(), 0
    for tp in consumer.assignment():
        if tp.topic == topic and tp.partition in next_offsets:
            try:
                highwater = consumer.highwater(tp)
            except AssertionError:  # aiokafka's: no longer assigned (a rebalance under way)
                continue
            if highwater is not None:
                behind += max(0, highwater - next_offsets[tp.partition])
    return behind


async def apply_batch(writer: LatestWriter, events, generation: int) -> bool:
    """Apply the events (with the records skipped before them), step by step; False if the
    generation ended first: the rest is left to the partitions' new owner."""
    async for values in continuity.slices(generation, events):
        for fixes, erasures, heard in steps(values):
            if not await agent_commits.writable(generation):
                return False
            if fixes:
                await apply_fixes(writer, fixes, generation)
            if heard:
                await liveness.apply(writer, heard, generation, write)
            if erasures:
                await erase(writer, erasures)
    return True


async def apply_fixes(writer: LatestWriter, fixes: dict[int, list[list]], generation) -> None:
    """The journeys stage first (its odometer goes into ``latest``), then ``latest`` and
    the events stage at once."""
    if not settings.journeys_enabled:
        await _latest_and_events(writer, fixes, None, generation)
        return
    journeys = await journeys_stage.stage()
    async with journeys.lock:
        annotations, finished = journeys.compute(fixes, generation)
        await asyncio.gather(journeys.publish(finished), _latest_and_events(writer, fixes, annotations, generation))


async def _latest_and_events(writer: LatestWriter, fixes: dict[int, list[list]], annotations, generation) -> None:
    if settings.events_enabled:
        await asyncio.gather(update(writer, fixes, annotations, generation), events_stage.apply(fixes, generation))
    else:
        await update(writer, fixes, annotations, generation)


async def erase(writer: LatestWriter, erasures: dict[int, list[dict]]) -> int:
    """Remove markers from the tables (``tables.erase``), as records of the topic ask."""
    states = []
    if settings.events_enabled:
        events = await events_stage.stage()
        states.append((events.writer, events.cache))
    if not settings.journeys_enabled:
        return await tables_erase.erase(erasures, writer, states)
    journeys = await journeys_stage.stage()
    async with journeys.lock:
        return await tables_erase.erase(erasures, writer, states + [(journeys.writer, journeys.cache)])


#: Per partition: fixes, erase requests, heartbeats.
Step = tuple[dict[int, list[list]], dict[int, list[dict]], dict[int, list[list]]]


def steps(values: dict[int, list[bytes]]) -> list[Step]:
    """The fixes (and heartbeats) of a slice of the batches topic's records, per partition,
    in the order read; cut at every erase record, so that it is applied after the fixes
    before it and before those after it."""
    found: list[Step] = [({}, {}, {})]
    for partition, slices in values.items():
        step = 0
        for value in slices:
            fixes, erasures, heard = batches.decode_parts(value)
            if fixes:
                found[step][0].setdefault(partition, []).extend(fixes)
            if heard:
                found[step][2].setdefault(partition, []).extend(heard)
            if erasures:
                found[step][1].setdefault(partition, []).extend(erasures)
                step += 1
                if step == len(found):
                    found.append(({}, {}, {}))
    return found


async def update(writer: LatestWriter, fixes_by_partition: dict[int, list[list]],
                 annotations: journeys_stage.Annotations | None = None, generation: object = None) -> int:
    """Write each marker's newest fix of the batch to the table (with its odometer and
    motion when ``annotations`` has them); the number updated."""
    annotations = annotations or {}
    writer.begin(generation)
    return await write(writer, {partition: writer.changes(partition, fixes, annotations.get(partition))
                                for partition, fixes in fixes_by_partition.items()})


async def write(writer: LatestWriter, changes: dict[int, list[tuple[bytes, bytes]]]) -> int:
    """Write the changes of each partition, changelog first; the number of rows written."""
    changes = {partition: items for partition, items in changes.items() if items}
    offsets = await asyncio.gather(*(
        retrying(f"latest: the changelog send for partition {partition}", lambda p=partition, i=items: writer.send(p, i))
        for partition, items in changes.items()))
    for (partition, items), offset in zip(changes.items(), offsets):
        writer.commit(partition, items, offset)
    updated = sum(len(items) for items in changes.values())
    LATEST_UPDATES.inc(updated)
    return updated
