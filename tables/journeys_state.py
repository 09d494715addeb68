"""``journeys-state``: each marker's motion state (``tracker.journeys.motion.MotionState``), keyed by
marker id as raw bytes.

A value is the state's flat list of numbers as JSON. Co-partitioned with ``gps.positions``
and the batches topic, like ``latest``; written a partition slice at a time, changelog
first (``tables.changelog``).
"""
from __future__ import annotations

import orjson

from tables.changelog import ChangelogWriter, PartitionStore, SendMany, marker_table
from tracker.journeys.motion import MotionState

journeys_state = marker_table("journeys-state", help="The motion state (trips, stops, odometer) of every marker.")


def encode(state: MotionState) -> bytes:
    return orjson.dumps(state.values())


def decode(value: bytes | None) -> MotionState:
    return MotionState.from_values(orjson.loads(value) if value is not None else None)


class JourneysStateWriter(ChangelogWriter):
    def __init__(self, send_many: SendMany, store: PartitionStore | None = None, table=journeys_state) -> None:
        super().__init__(send_many, table, store)
