"""latest: keep each marker's newest fix in the ``latest`` table; late fixes never move it back.

A Faust agent on the batches topic, so Faust's partition assignment gives partition p of
the topic to the worker that owns partition p of the table (and ``table_route`` finds
it). Each event carries up to a thousand fixes; the agent takes a few events at a time and,
per partition, writes each marker once: the newest fix of the slice, if it is newer than
the stored one (``tables.latest.LatestWriter``: changelog first, then RocksDB).

Nothing may leave the loop with an exception, because ``take_events`` acknowledges its
events when it is left: Kafka errors are retried until they pass, and anything else
stops the worker without acknowledging (``tracker.app.fatal``), so the events are read
again after a restart. Offsets Faust's consumer skipped are read again first
(``tracker.continuity``).
"""
from __future__ import annotations

import asyncio
import logging

from tables.latest import LatestWriter
from tracker import batches
from tracker.app import app, fatal
from tracker.continuity import Continuity, retrying
from tracker.metrics import LATEST_UPDATES
from tracker.resources import batches_offsets, worker_producer
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
            await apply(writer, continuity, events)
        except asyncio.CancelledError:  # stopped in the middle: the events would be acknowledged
            fatal("latest: stopped in the middle of a batch")
        except Exception as exc:  # noqa: BLE001 - acknowledging now would lose the events
            log.exception("latest: cannot apply a batch")
            fatal(f"latest: {exc!r}")


async def apply(writer: LatestWriter, continuity: Continuity, events, generation=None) -> int:
    """Write the events' fixes to the table; the number of markers updated."""
    generation = app.consumer_generation_id if generation is None else generation
    values = await continuity.values_by_partition(generation, events)
    changes = {
        partition: writer.changes(partition, (fix for value in slices for fix in batches.decode(value)))
        for partition, slices in values.items()
    }
    changes = {partition: items for partition, items in changes.items() if items}
    offsets = await asyncio.gather(*(
        retrying(f"latest: the changelog send for partition {partition}", lambda p=partition, i=items: writer.send(p, i))
        for partition, items in changes.items()))
    for (partition, items), offset in zip(changes.items(), offsets):
        writer.commit(partition, items, offset)
    updated = sum(len(items) for items in changes.values())
    LATEST_UPDATES.inc(updated)
    return updated
