"""The verdict on records read from ``gps.positions``, a fetched slice of one partition at a time.

Each record is validated once, by ``tracker.positions.decoding.read_report``: the rules of
``tracker.positions.model.parse_report``, with the common case decoded and checked in one
step. "Now", for the future limit (``MAX_FUTURE``, 5 minutes: a later fix goes to the DLQ
with code ``future``), is the record's Kafka timestamp (never later than the wall clock),
so the verdict depends only on the record: a replay after a crash reaches the same one. A valid record is

- *placed* when its key is its marker id and it sits in the partition Kafka's default
  (murmur2) partitioner picks for that key, the partition that owns the marker in every
  co-partitioned topic and table: it becomes a fix (``FIX_FIELDS`` plus ``received_us``);
- *misplaced* otherwise (a producer keyed it differently, or uses another partitioner):
  it is re-sent under its marker id, keeping its Kafka timestamp, and judged again there.

A heartbeat (a report without a position) is judged by the same rules, and placed or
re-sent the same way; a placed one goes to ``heard`` rather than ``fixes``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from aiokafka.partitioner import murmur2

from tracker.positions.decoding import read_report
from tracker.positions.model import InvalidPosition

#: The partition-of-key cache is cleared when it grows past this many keys.
PARTITION_CACHE_SIZE = 1_000_000


@dataclass
class Verdict:
    #: Valid records in their marker's partition, as fixes with ``received_us`` appended.
    fixes: list[list] = field(default_factory=list)
    #: Valid heartbeats in their marker's partition (``HEARD_FIELDS`` plus ``received_us``).
    heard: list[list] = field(default_factory=list)
    #: (record, error) of every record that is not a valid position.
    rejected: list[tuple[Any, InvalidPosition]] = field(default_factory=list)
    #: (marker id key, value, Kafka timestamp in ms) of valid records to re-send.
    misplaced: list[tuple[bytes, bytes, int]] = field(default_factory=list)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (and Faust's ``table_route``) picks for ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Partitioner:
    """``partition_of`` for a topic of ``partitions`` partitions, each key hashed once (the
    cache is cleared when it grows past ``PARTITION_CACHE_SIZE`` keys)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        partition = self._cache.get(key)
        if partition is None:
            if len(self._cache) >= PARTITION_CACHE_SIZE:
                self._cache.clear()
            partition = self._cache[key] = partition_of(key, self.partitions)
        return partition


class Judge:
    """Judges records of a topic with ``partitions`` partitions."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        #: The partition Kafka's default partitioner (and Faust's ``table_route``) picks for a key.
        self.partition_of = Partitioner(partitions)

    def judge(self, partition: int, records: Sequence[Any], now_ms: int) -> Verdict:
        """``records`` (aiokafka ``ConsumerRecord``s of ``partition``), in offset order."""
        verdict = Verdict()
        fixes, heard, partition_of = verdict.fixes, verdict.heard, self.partition_of
        for record in records:
            stamp = record.timestamp
            if not stamp or stamp < 0 or stamp > now_ms:
                stamp = now_ms
            received_us = stamp * 1000
            try:
                is_heartbeat, item = read_report(record.value if record.value is not None else b"", received_us)
            except InvalidPosition as error:
                verdict.rejected.append((record, error))
                continue
            key = item[0].encode()
            if record.key == key and partition_of(key) == partition:
                item.append(received_us)
                (heard if is_heartbeat else fixes).append(item)
            else:
                verdict.misplaced.append((key, record.value, stamp))
        return verdict
