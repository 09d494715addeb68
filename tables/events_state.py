"""``events-state``: what the events agent knows of each marker, keyed by marker id as raw bytes.

A value is a ``tracker.events.model.MarkerState``, stored as ``tracker.events.stored``
packs it: the geofences holding the newest fix, whether it is speeding, the last battery
level, offline or not, the last fixes (to place late ones), and when the tracker last heard
from it. Co-partitioned with ``gps.positions`` and the batches topic, like ``latest``;
written a partition slice at a time, changelog first (``tables.changelog``), and recovered
forward only: a state ranks by the time of its newest fix, then of its newest heartbeat.
"""
from __future__ import annotations

from tables.changelog import ChangelogWriter, ForwardOnlyTable, PartitionStore, SendMany, marker_table
from tracker.events.stored import decode, encode

__all__ = ["EventsStateWriter", "decode", "encode", "events_state"]


class EventsStateTable(ForwardOnlyTable):
    def rank(self, value: bytes) -> tuple[int, int]:
        state = decode(value)
        return (-1 if state.time_us is None else state.time_us), (-1 if state.heard_us is None else state.heard_us)


events_state = marker_table("events-state", help="What the events agent knows of every marker.",
                            table_class=EventsStateTable)


class EventsStateWriter(ChangelogWriter):
    def __init__(self, send_many: SendMany, store: PartitionStore | None = None, table=events_state) -> None:
        super().__init__(send_many, table, store)
