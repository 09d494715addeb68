"""How an agent reads one ``gps.positions`` record: the verdict every agent agrees on.

The validate, latest and history agents each consume the topic and each call ``read``.
The verdict depends only on the record itself: "now", for the 24 h future limit, is the
record's Kafka timestamp (never later than the wall clock), so the three agents, and a
replay after a crash, always reach the same verdict.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from aiokafka.partitioner import murmur2

from tracker.position import Position, parse_position
from tracker.settings import settings


@dataclass(frozen=True, slots=True)
class Accepted:
    position: Position
    received_at: datetime
    #: False when the record is not keyed by its marker id, or sits in another partition
    #: than Kafka's default (murmur2) partitioner puts that key in (a producer with
    #: another partitioner): the validate agent re-sends it under its marker id, and the
    #: partition-bound agent (latest) skips this copy.
    well_keyed: bool


def received_at(message) -> datetime:
    """The record's Kafka timestamp, capped at the wall clock."""
    stamp = message.timestamp
    now = time.time()
    if not stamp or stamp > now:
        stamp = now
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


def read(message) -> Accepted:
    """Validate one consumed record; raises ``InvalidPosition`` with the reason."""
    at = received_at(message)
    position = parse_position(message.value if message.value is not None else b"", now=at)
    key = position.marker_id.encode()
    return Accepted(position, at, message.key == key and message.partition == partition_of(key))


def partition_of(key: bytes) -> int:
    """The partition Kafka's default partitioner (and Faust's ``table_route``) picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % settings.topic_partitions
