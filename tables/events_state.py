"""``events-state``: what the events agent knows of each marker, keyed by marker id as raw bytes.

A value is ``tracker.events.model.MarkerState`` as compact JSON: the geofences holding the newest
fix, whether it is speeding, the last battery level, offline or not, the last fixes (to
place late ones), and when the tracker last heard from it. Co-partitioned with
``gps.positions`` and the batches topic, like ``latest``; written a partition slice at a
time, changelog first (``tables.changelog``).
"""
from __future__ import annotations

import orjson

from tables.changelog import ChangelogWriter, PartitionStore, SendMany, marker_table
from tracker.events.model import MarkerState

events_state = marker_table("events-state", help="What the events agent knows of every marker.")


def encode(state: MarkerState) -> bytes:
    return orjson.dumps(state.to_json())


def decode(value: bytes | None) -> MarkerState:
    return MarkerState.from_json(orjson.loads(value) if value is not None else None)


class EventsStateWriter(ChangelogWriter):
    def __init__(self, send_many: SendMany, store: PartitionStore | None = None, table=events_state) -> None:
        super().__init__(send_many, table, store)
