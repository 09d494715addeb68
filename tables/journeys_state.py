"""``journeys-state``: each marker's motion state (``tracker.journeys.motion.MotionState``), keyed by
marker id as raw bytes.

A value is the state's flat list of numbers as JSON. Co-partitioned with ``gps.positions``
and the batches topic, like ``latest``; written a partition slice at a time, changelog
first (``tables.changelog``), and recovered forward only: a state ranks by the time of the
last fix it accepted, then by its odometer.
"""
from __future__ import annotations

import orjson

from tables.changelog import ChangelogWriter, ForwardOnlyTable, PartitionStore, SendMany, marker_table
from tracker.journeys.motion import MotionState


class JourneysStateTable(ForwardOnlyTable):
    def rank(self, value: bytes) -> tuple[int, float]:
        state = decode(value)
        return (-1 if state.last_us is None else state.last_us), state.odometer


journeys_state = marker_table("journeys-state", help="The motion state (trips, stops, odometer) of every marker.",
                              table_class=JourneysStateTable)


def encode(state: MotionState) -> bytes:
    return orjson.dumps(state.values())


def decode(value: bytes | None) -> MotionState:
    return MotionState.from_values(orjson.loads(value) if value is not None else None)


class JourneysStateWriter(ChangelogWriter):
    def __init__(self, send_many: SendMany, store: PartitionStore | None = None, table=journeys_state) -> None:
        super().__init__(send_many, table, store)
