"""latest: keep each marker's newest fix in the ``latest`` table; late fixes never move it back.

The one Faust agent on the batches topic, so Faust's partition assignment gives partition
p of the topic to the worker that owns partition p of the tables. Each event carries up to
a thousand fixes; the agent takes a few events at a time, decodes them once and, per
partition, writes each marker once: the newest fix of the slice, if it is newer than the
stored one (``tables.latest.LatestWriter``: changelog first, then RocksDB). The same
fixes go to the events stage (``agents/events.py``) at the same time. Only one agent
reads the topic: with two, faust-streaming can stall a rebalance for good (a record one
agent has started and the other skips is never acknowledged, and the group waits for it).

Nothing may leave the loop with an exception, because ``take_events`` acknowledges its
events when it is left: Kafka errors are retried until they pass, and anything else
stops the worker without acknowledging (``tracker.app.fatal``), so the events are read
again after a restart. Offsets Faust's consumer skipped are read again first
(``tracker.continuity``).
"""
from __future__ import annotations

import asyncio
import logging

from agents import events as events_stage
from tables.latest import LatestWriter
from tracker import batches
from tracker.app import app, fatal
from tracker.continuity import Continuity, retrying
from tracker.metrics import LATEST_UPDATES
from tracker.resources import batches_offsets, worker_producer
from tracker.settings import settings
from tracker.topics import batches_topic

log = logging.getLogger(__name__)

#: Batch records taken at once (each up to a thousand fixes), and the longest wait for them.
#: When the stream runs ahead (a backlog after a restart), a marker's fixes of all of them
#: become one write: ten times fewer changelog records than one write per batch record.
MAX_EVENTS = 128
WITHIN_SECONDS = 0.02

continuity = Continuity(batches_offsets.committed, batches_offsets.read, "latest")


@app.agent(batches_topic, name="latest")
async def track_latest(stream):
    writer = None
    async for events in stream.take_events(MAX_EVENTS, within=WITHIN_SECONDS):
        try:
            if writer is None:
                writer = LatestWriter((await worker_producer.ready()).send_many)
            generation = app.consumer_generation_id
            fixes = await read_fixes(continuity, events, generation)
            if settings.events_enabled:
                await asyncio.gather(update(writer, fixes), events_stage.apply(events, fixes, generation))
            else:
                await update(writer, fixes)
        except asyncio.CancelledError:  # stopped in the middle: the events would be acknowledged
            fatal("latest: stopped in the middle of a batch")
        except Exception as exc:  # noqa: BLE001 - acknowledging now would lose the events
            log.exception("latest: cannot apply a batch")
            fatal(f"latest: {exc!r}")


async def read_fixes(continuity: Continuity, events, generation) -> dict[int, list[list]]:
    """The fixes of a batch of Faust events, per partition, in the order read, with those
    of records the consumer skipped put first."""
    values = await continuity.values_by_partition(generation, events)
    return {partition: [fix for value in slices for fix in batches.decode(value)]
            for partition, slices in values.items()}


async def apply(writer: LatestWriter, continuity: Continuity, events, generation=None) -> int:
    """Write the events' fixes to the table; the number of markers updated."""
    generation = app.consumer_generation_id if generation is None else generation
    return await update(writer, await read_fixes(continuity, events, generation))


async def update(writer: LatestWriter, fixes_by_partition: dict[int, list[list]]) -> int:
    """Write each marker's newest fix of the batch to the table; the number updated."""
    changes = {partition: writer.changes(partition, fixes) for partition, fixes in fixes_by_partition.items()}
    changes = {partition: items for partition, items in changes.items() if items}
    offsets = await asyncio.gather(*(
        retrying(f"latest: the changelog send for partition {partition}", lambda p=partition, i=items: writer.send(p, i))
        for partition, items in changes.items()))
    for (partition, items), offset in zip(changes.items(), offsets):
        writer.commit(partition, items, offset)
    updated = sum(len(items) for items in changes.values())
    LATEST_UPDATES.inc(updated)
    return updated
