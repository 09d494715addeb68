"""liveness: the heartbeats of a batch (reports without a position), applied by the ``latest``
agent after the fixes of the same step.

Two stages take them, at the same time, as they take fixes: the events stage
(``agents/events.py``: keeps the marker online or brings it back, its battery, its alarms)
and the ``latest`` table (``tables.latest.LatestWriter.heard_changes``: when the marker was
last heard and its newest battery, for a marker that has a row). Both move only forward,
so a replayed batch writes nothing new; neither touches a position, the journeys or the
history.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from agents import events as events_stage
from tables.latest import LatestWriter
from tracker.settings import settings

#: The agent's way of writing ``latest`` (``agents.latest.write``: changelog first, then RocksDB).
WriteLatest = Callable[[LatestWriter, dict[int, list[tuple[bytes, bytes]]]], Awaitable[int]]


async def apply(writer: LatestWriter, heard: dict[int, list[list]], generation, write: WriteLatest) -> None:
    """The heartbeats of one step, per partition, in the order read."""
    changes = write(writer, {partition: writer.heard_changes(partition, reports) for partition, reports in heard.items()})
    if settings.events_enabled:
        await asyncio.gather(changes, events_stage.apply_heard(heard, generation))
    else:
        await changes
