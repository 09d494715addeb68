"""Removing markers from the tables, as an erase record of the batches topic asks
(``tracker history erase``; ``tracker.stream.batches``).

``latest`` loses the marker when its stored fix falls in the forgotten range; the motion
and events states are removed only when the whole history is (a state built from the
fixes that remain would have to be rebuilt, which ``tracker journeys rebuild`` does for
trips and stops). Each table's tombstones go to its changelog first, then to RocksDB, and
the stages drop the marker from their caches.
"""
from __future__ import annotations

import asyncio

from tables.changelog import ChangelogWriter
from tables.latest import TIME, decode
from tracker.stream.batches import erases_fix
from tracker.stream.retry import retrying


def _whole(request: dict) -> bool:
    return request["from_us"] is None and request["to_us"] is None


def latest_tombstones(writer: ChangelogWriter, partition: int, erasures: list[dict]) -> list[tuple[bytes, None]]:
    found = []
    for request in erasures:
        key = request["marker_id"].encode()
        stored = writer.store.get(partition, key)
        if stored is not None and erases_fix(request, decode(stored)[TIME]):
            found.append((key, None))
    return found


def state_tombstones(writer: ChangelogWriter, partition: int, erasures: list[dict]) -> list[tuple[bytes, None]]:
    return [(key, None) for key in {f["marker_id"].encode() for f in erasures if _whole(f)}
            if writer.store.get(partition, key) is not None]


async def erase(erasures_by_partition: dict[int, list[dict]], latest: ChangelogWriter,
                 states: list[tuple[ChangelogWriter, dict]]) -> int:
    """Apply erase records; ``states``: the stages' state writers, each with its cache of
    decoded states by marker id. The number of keys removed."""
    work = []
    for partition, erasures in erasures_by_partition.items():
        work.append((latest, partition, latest_tombstones(latest, partition, erasures)))
        for writer, cache in states:
            for request in erasures:
                if _whole(request):
                    cache.pop(request["marker_id"], None)
            work.append((writer, partition, state_tombstones(writer, partition, erasures)))
    work = [(writer, partition, items) for writer, partition, items in work if items]
    offsets = await asyncio.gather(*(
        retrying(f"erase: the changelog send for partition {partition}", lambda w=writer, p=partition, i=items: w.send(p, i))
        for writer, partition, items in work))
    for (writer, partition, items), offset in zip(work, offsets):
        writer.commit(partition, items, offset)
    return sum(len(items) for _, _, items in work)
