"""Writing a whole slice of a table partition at once, changelog first.

Faust writes a table one key at a time, into the partition of the event being processed.
The stream agents (``agents/latest.py``, ``agents/events.py``) instead change many keys of
one partition per batch: ``ChangelogWriter.send`` sends the new values to the table's
changelog topic and waits for the broker's acknowledgement; only then does ``commit``
write them to the local store, in one RocksDB write batch together with the changelog
offset Faust resumes recovery from. A worker killed in between has nothing locally that
the changelog lacks.

The stored offset never passes a record the store has not seen. Only the partition's owner
writes its changelog, but a worker that was stopped (SIGSTOP, a long pause) can wake with a
send still queued in its producer: the broker appends it after the records the partitions'
interim owner wrote meanwhile. Its acknowledged offset then lies beyond records this store
never read, so ``commit`` keeps the offset where it was when a send's first record does not
follow it: the next recovery reads the other writer's records.

Those records come before the woken worker's late one, so every table is recovered forward
only (``ForwardOnlyTable``): a changelog record whose value ranks below the value already
recovered for its key is left out (``latest`` ranks by fix time, a stage's state by what it
has taken of the marker's fixes). The key is then *regressed*: the changelog's newest record
for it (the one compaction keeps) is the older value, so the owner's next send to the
partition carries the kept value again.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, Iterator, NamedTuple

import faust
from rocksdict import WriteBatch

from tracker.app import app
from tracker.settings import settings
from tracker.stream import faust_internals
from tracker.stream.topics import CHANGELOG_CONFIG, TABLES, changelog_topic

log = logging.getLogger(__name__)


def marker_table(name: str, help: str, table_class: type["ForwardOnlyTable"]):
    """A table keyed by marker id, keys and values raw bytes (nothing for Faust to
    deserialize), co-partitioned with the topics, its changelog compacted and recovered
    forward only by ``table_class.rank``."""
    assert name in TABLES, f"declare the table {name!r} in tracker.stream.topics.TABLES"
    table = app.tables.add(table_class(
        app,
        name=name,
        beacon=app.tables.beacon,
        schema=faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"),
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        extra_topic_configs=CHANGELOG_CONFIG,
        help=help,
    ))
    assert table.changelog_topic.get_topic_name() == changelog_topic(name)
    return table


SendMany = Callable[[str, int, list[tuple[bytes, bytes]]], Awaitable[list]]


class PartitionStore:
    """Reads and writes one partition of the table's local RocksDB store directly, bypassing
    Faust's per-key path (which writes into the partition of the current event, one key at a
    time)."""

    def __init__(self, table) -> None:
        self.table = table

    def _db(self, partition: int):
        return faust_internals.partition_db(self.table.data, partition)

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self._db(partition).get(key)

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of one partition."""
        offset_key = faust_internals.offset_key(self.table.data)
        for key, value in self._db(partition).items():
            if key != offset_key:
                yield key, value

    def offset(self, partition: int) -> int | None:
        """The changelog offset stored with the partition: the last record it holds."""
        stored = self._db(partition).get(faust_internals.offset_key(self.table.data))
        return None if stored is None else int(stored)

    def write(self, partition: int, items: list[tuple[bytes, bytes | None]], changelog_offset: int) -> None:
        """Store ``items`` (a value of None deletes its key) with the changelog offset, the
        offset Faust's recovery resumes from, in one atomic write."""
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            if value is None:  # a tombstone
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(faust_internals.offset_key(self.table.data), str(changelog_offset).encode())
        self._db(partition).write(batch)


class ForwardOnlyTable(faust.Table):
    """A table whose changelog is recovered forward only: per key, a record replaces the
    value recovered so far only if its value does not rank below it (``rank``); a
    tombstone always applies. ``regressed`` holds, per partition, the keys whose changelog
    ends with a value older than the one kept."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.regressed: dict[int, set[bytes]] = {}

    def rank(self, value: bytes) -> Any:
        """What orders two values of one key: a later one never ranks lower."""
        raise NotImplementedError

    def apply_changelog_batch(self, batch: Iterable) -> None:
        store, rank = PartitionStore(self), self.rank
        found: dict[int, dict[bytes, bytes | None]] = {}  # partition -> key -> the value kept
        offsets: dict[int, int] = {}  # partition -> the last offset read
        for event in batch:
            message = event.message
            partition, key, value = message.partition, message.key, message.value
            values = found.setdefault(partition, {})
            offsets[partition] = max(offsets.get(partition, -1), message.offset)
            regressed = self.regressed.setdefault(partition, set())
            if value is not None:
                current = values[key] if key in values else store.get(partition, key)
                if current is not None and rank(value) < rank(current):
                    regressed.add(key)
                    continue
            regressed.discard(key)
            values[key] = value
        for partition, values in found.items():
            store.write(partition, list(values.items()), offsets[partition])


class Sent(NamedTuple):
    """The changelog offsets of the first and the last record of one send."""
    first: int
    last: int


class ChangelogWriter:
    """Sends changes of one table partition to its changelog, then stores them locally."""

    def __init__(self, send_many: SendMany, table, store: PartitionStore | None = None) -> None:
        self.send_many = send_many
        self.table = table
        self.store = store or PartitionStore(table)
        self.changelog = table.changelog_topic.get_topic_name()
        self._behind: dict[int, int] = {}  # partition -> the stored offset it stays at, once told

    async def send(self, partition: int, changes: list[tuple[bytes, bytes]]) -> Sent:
        """Send ``changes`` to the changelog, with the kept value of every key the recovery
        found regressed; their offsets, once acknowledged."""
        repairs = self._repairs(partition, changes)
        first, last = None, -1
        for future, count in await self.send_many(self.changelog, partition, changes + repairs):
            metadata = await future
            first = metadata.offset if first is None else min(first, metadata.offset)
            last = max(last, metadata.offset + count - 1)
        if repairs:
            self.table.regressed[partition].difference_update(key for key, _ in repairs)
        return Sent(last if first is None else first, last)

    def _repairs(self, partition: int, changes: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes]]:
        regressed = self.table.regressed.get(partition)
        if not regressed:
            return []
        changed = {key for key, _ in changes}
        repairs = []
        for key in list(regressed):
            value = None if key in changed else self.store.get(partition, key)
            if value is None:
                regressed.discard(key)  # written now, or gone
            else:
                repairs.append((key, value))
        return repairs

    def commit(self, partition: int, changes: list[tuple[bytes, bytes]], sent: Sent) -> None:
        """Store ``changes`` with the offset of their last record, or, when another writer's
        records came between the stored offset and them, with the stored offset unchanged."""
        stored = self.store.offset(partition)
        offset = sent.last
        if stored is not None and stored >= 0 and sent.first != stored + 1:
            if self._behind.get(partition) != stored:
                self._behind[partition] = stored
                log.warning("%s partition %d: offsets %d to %d were written by another worker; "
                            "its stored offset stays at %d until a recovery reads them", self.changelog, partition,
                            stored + 1, sent.first - 1, stored)
            offset = stored
        self.store.write(partition, changes, offset)
