"""The ``latest`` agent's batch step: forward-only, once per marker per batch, changelog first,
and records its consumer skipped read again (the table in memory, the changelog captured)."""
from types import SimpleNamespace

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from faust.types import TP

from tracker.stream import continuity as continuity_module
from tracker.stream import retry
from agents.latest import records_behind, steps, update
from tables import erase as tables_erase
from tables.changelog import PartitionStore
from tables.latest import LatestWriter, decode, encode, latest, position_of
from tracker.stream import batches
from tracker.stream.continuity import Continuity
from tracker.positions.liveness import with_liveness
from tracker.positions.model import read_fix
from tracker.settings import settings
from tests.unit import tables

NOW_US = 1_900_000_000 * 1_000_000


class Changelog:
    """Stands in for the producer: keeps what was sent, in order, and can fail on demand."""

    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[int, bytes, bytes]] = []
        self.failures = failures
        self.stored_when_sent: list[bool] = []

    async def send_many(self, topic, partition, records):
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker away")
        self.stored_when_sent.extend(tables.contents(latest).get(key) == value for key, value in records)
        base = len(self.sent)
        self.sent.extend((partition, key, value) for key, value in records)
        future = __import__("asyncio").get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=base))
        return [(future, len(records))]


def fix(marker_id: str, time, lat: float = 45.0) -> list:
    return read_fix(orjson.dumps({"marker_id": marker_id, "lat": lat, "lon": 14.0, "time": time}), NOW_US) + [NOW_US]


def events(*slices: list[list], partition: int = 3, first_offset: int = 0):
    return [SimpleNamespace(message=SimpleNamespace(partition=partition, offset=first_offset + i,
                                                    value=next(batches.encode(fixes))))
            for i, fixes in enumerate(slices)]


async def read_fixes(continuity: Continuity, events, generation) -> dict[int, list[list]]:
    """The fixes of a batch of Faust events, per partition (erase records left out)."""
    fixes: dict[int, list[list]] = {}
    async for values in continuity.slices(generation, events):
        for step_fixes, _, _ in steps(values):
            for partition, found in step_fixes.items():
                fixes.setdefault(partition, []).extend(found)
    return fixes


async def apply(writer: LatestWriter, continuity: Continuity, events, generation=1) -> int:
    """Write the events' fixes to the table; the number of markers updated."""
    return await update(writer, await read_fixes(continuity, events, generation), generation=generation)


class NoGaps(Continuity):
    def __init__(self) -> None:
        async def committed():
            return {}

        async def read(partition, start, end, limit):
            raise AssertionError("nothing was skipped")

        super().__init__(committed, read)


@pytest.fixture()
def changelog():
    tables.clear(latest)
    latest.regressed.clear()
    return Changelog()


async def run(changelog: Changelog, *slices, continuity=None, **where) -> int:
    return await apply(LatestWriter(changelog.send_many), continuity or NoGaps(), events(*slices, **where),
                       generation=1)


def stored(marker_id: str) -> dict:
    return position_of(decode(tables.contents(latest)[marker_id.encode()]))


async def test_a_batch_writes_each_marker_once_with_its_newest_fix(changelog):
    many = [fix("m1", f"2026-01-01T10:00:{s:02d}Z", lat=s) for s in (5, 9, 1, 7)]
    updated = await run(changelog, many, [fix("m1", "2026-01-01T10:00:08Z", lat=8), fix("m2", "2026-01-01T09:00:00Z")])
    assert updated == 2
    assert sorted(key for _, key, _ in changelog.sent) == [b"m1", b"m2"]
    assert stored("m1")["lat"] == 9 and stored("m1")["time"] == "2026-01-01T10:00:09Z"


async def test_late_fix_never_moves_a_marker_back(changelog):
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z", lat=2)])
    assert await run(changelog, [fix("m1", "2026-01-01T10:00:00Z", lat=1)]) == 0
    assert stored("m1")["lat"] == 2 and len(changelog.sent) == 1


async def test_equal_fix_times_keep_the_first(changelog):
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z", lat=2), fix("m1", "2026-01-01T10:00:05Z", lat=3)])
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z", lat=4)])
    assert stored("m1")["lat"] == 2


async def test_time_zones_compare_as_instants(changelog):
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z", lat=2)])
    # 11:00:01+01:00 is 10:00:01Z: earlier, although it sorts later as text.
    await run(changelog, [fix("m1", "2026-01-01T11:00:01+01:00", lat=3)])
    assert stored("m1")["lat"] == 2


async def test_the_changelog_is_written_before_the_table(changelog):
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z"), fix("m2", "2026-01-01T10:00:05Z")])
    assert changelog.stored_when_sent == [False, False]
    assert set(tables.contents(latest)) == {b"m1", b"m2"}


async def test_a_failed_changelog_send_is_retried_and_nothing_is_stored_before(changelog, monkeypatch):
    monkeypatch.setattr(retry, "DELAYS", (0.01,))
    changelog.failures = 2
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z", lat=7)])
    assert changelog.failures == 0 and len(changelog.sent) == 1
    assert stored("m1")["lat"] == 7


async def test_values_of_earlier_versions_are_read_and_compared(changelog):
    tables.put(latest, 3, b"m1", orjson.dumps({"marker_id": "m1", "lat": 5.0, "lon": 14.0,
                                               "time": "2026-01-01T10:00:05Z", "received_at": "2026-01-01T10:00:06Z"}))
    await run(changelog, [fix("m1", "2026-01-01T10:00:01Z", lat=1)])  # late: the marker was heard, not moved
    assert (stored("m1")["lat"], stored("m1")["time"]) == (5.0, "2026-01-01T10:00:05Z")
    assert stored("m1")["heard_at"] > stored("m1")["received_at"]
    await run(changelog, [fix("m1", "2026-01-01T10:00:09Z", lat=9)])
    assert stored("m1")["lat"] == 9


async def test_a_writer_that_kept_a_marker_in_memory_reads_the_store_after_a_rebalance(changelog):
    """Meanwhile another worker owned the partition and wrote a newer fix, which recovery
    brought into the store: the one the writer remembers must not hide it."""
    writer = LatestWriter(changelog.send_many)
    await apply(writer, NoGaps(), events([fix("m1", "2026-01-01T10:00:05Z", lat=5)]), generation=1)
    tables.put(latest, 3, b"m1", tables.contents(latest)[b"m1"].replace(b"1767261605000000", b"1767261609000000"))
    assert stored("m1")["time"] == "2026-01-01T10:00:09Z"
    await apply(writer, NoGaps(), events([fix("m1", "2026-01-01T10:00:07Z", lat=7)]), generation=2)
    assert stored("m1")["time"] == "2026-01-01T10:00:09Z" and len(changelog.sent) == 1


async def test_a_marker_the_writer_stored_is_compared_without_reading_the_store(changelog):
    writer = LatestWriter(changelog.send_many)
    await apply(writer, NoGaps(), events([fix("m1", "2026-01-01T10:00:05Z")]))
    reads, get = [], writer.store.get
    writer.store.get = lambda partition, key: reads.append(key) or get(partition, key)
    await apply(writer, NoGaps(), events([fix("m1", "2026-01-01T10:00:07Z"), fix("m2", "2026-01-01T10:00:07Z")]))
    assert reads == [b"m2"] and stored("m1")["time"] == "2026-01-01T10:00:07Z"


async def test_an_erased_marker_takes_any_fix_again(changelog):
    """The tombstone goes through the writer: it forgets the fix it remembered."""
    writer = LatestWriter(changelog.send_many)
    await apply(writer, NoGaps(), events([fix("m1", "2026-01-01T10:00:05Z", lat=5)]))
    await tables_erase.erase({3: [{"marker_id": "m1", "from_us": None, "to_us": None}]}, writer, [])
    assert b"m1" not in tables.contents(latest)
    await apply(writer, NoGaps(), events([fix("m1", "2026-01-01T10:00:01Z", lat=1)]))
    assert stored("m1")["lat"] == 1


async def test_offsets_the_consumer_skipped_are_read_again_and_applied_first(changelog):
    skipped = {7: next(batches.encode([fix("m1", "2026-01-01T10:00:07Z", lat=7), fix("m9", "2026-01-01T10:00:07Z")]))}
    reads = []

    async def committed():
        return {3: 5}

    async def read(partition, start, end, limit):
        reads.append((partition, start, end))
        return [skipped[offset] for offset in range(start, end) if offset in skipped], end

    continuity = Continuity(committed, read)
    # The group resumes at 5; the consumer delivers 5 and 6, then 8: offset 7 was skipped.
    await run(changelog, [fix("m1", "2026-01-01T10:00:05Z", lat=5)], [fix("m1", "2026-01-01T10:00:06Z", lat=6)],
              continuity=continuity, first_offset=5)
    await run(changelog, [fix("m2", "2026-01-01T10:00:08Z")], continuity=continuity, first_offset=8)
    assert reads == [(3, 7, 8)]
    assert stored("m1")["lat"] == 7 and b"m9" in tables.contents(latest)
    assert continuity.reread_records == 1


async def test_a_new_generation_starts_from_the_committed_offset(changelog):
    reads = []

    async def committed():
        return {3: 10}

    async def read(partition, start, end, limit):
        reads.append((start, end))
        return [], end

    continuity = Continuity(committed, read)
    writer = LatestWriter(changelog.send_many)
    await apply(writer, continuity, events([fix("m1", "2026-01-01T10:00:05Z")], first_offset=12), generation=1)
    await apply(writer, continuity, events([fix("m1", "2026-01-01T10:00:06Z")], first_offset=13), generation=1)
    await apply(writer, continuity, events([fix("m1", "2026-01-01T10:00:07Z")], first_offset=9), generation=2)
    assert reads == [(10, 12)]


async def test_a_long_gap_is_read_again_in_slices_in_order(changelog, monkeypatch):
    """Records skipped are never all in memory at once: they come in slices of at most
    SLICE_RECORDS records, each read only once the one before is handed over."""
    monkeypatch.setattr(continuity_module, "SLICE_RECORDS", 4)
    reads = []

    async def committed():
        return {3: 10}

    async def read(partition, start, end, limit):
        reads.append((start, min(end, start + limit)))
        found = [next(batches.encode([fix("m1", 1_900_000_000 + offset)])) for offset in range(start, end)][:limit]
        return found, start + len(found)

    continuity = Continuity(committed, read)
    slices = []
    async for values in continuity.slices(1, events([fix("m1", 1_900_000_100)], first_offset=21)):
        slices.append(sum(map(len, values.values())))
        assert continuity.next[3] == 10 + sum(slices) or continuity.next[3] == 22
    assert reads == [(10, 14), (14, 18), (18, 21)]
    assert slices == [4, 4, 4] and continuity.next[3] == 22 and continuity.reread_records == 11


async def test_a_record_delivered_twice_is_handled_once(changelog):
    continuity = NoGaps()
    first = await read_fixes(continuity, events([fix("m1", "2026-01-01T10:00:05Z")], first_offset=0), 1)
    again = await read_fixes(continuity, events([fix("m1", "2026-01-01T10:00:05Z")], first_offset=0), 1)
    assert len(first[3]) == 1 and again == {}


async def test_a_failed_read_of_skipped_records_is_retried_from_the_same_offset(changelog, monkeypatch):
    monkeypatch.setattr(retry, "DELAYS", (0.01,))
    reads = []

    async def committed():
        return {3: 10}

    async def read(partition, start, end, limit):
        reads.append(start)
        if len(reads) == 1:
            raise KafkaConnectionError("broker away")
        return [next(batches.encode([fix("m1", 1_900_000_000 + o)])) for o in range(start, end)], end

    continuity = Continuity(committed, read)
    fixes = await read_fixes(continuity, events([fix("m1", 1_900_000_100)], first_offset=12), 1)
    assert reads == [10, 10] and len(fixes[3]) == 3


def changelog_records(*records: tuple[int, bytes, bytes | None], partition: int = 3):
    """Faust's changelog events as recovery hands them to the table: (offset, key, value)."""
    return [SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset, key=key, value=value))
            for offset, key, value in records]


def value_of(marker_id: str, time, lat: float = 45.0) -> bytes:
    return encode(fix(marker_id, time, lat))


async def test_recovery_never_moves_a_marker_back_and_the_writer_sends_the_kept_fix_again(changelog):
    """A worker woke from a pause with an old value queued: the broker appended it after the
    newer values its successor wrote. Recovery keeps the newer one, and the partition's next
    write puts it at the end of the changelog again."""
    latest.apply_changelog_batch(changelog_records(
        (7, b"m1", value_of("m1", "2026-01-01T10:00:09Z", lat=9)),
        (8, b"m2", value_of("m2", "2026-01-01T10:00:01Z"))))
    latest.apply_changelog_batch(changelog_records(
        (9, b"m1", value_of("m1", "2026-01-01T10:00:02Z", lat=2)),  # the old one, appended late
        (10, b"m2", value_of("m2", "2026-01-01T10:00:03Z"))))
    assert stored("m1")["lat"] == 9 and stored("m2")["time"] == "2026-01-01T10:00:03Z"
    assert PartitionStore(latest).offset(3) == 10
    assert latest.regressed[3] == {b"m1"}

    await run(changelog, [fix("m3", "2026-01-01T10:00:10Z")])
    assert [(key, decode(value)[2]) for _, key, value in changelog.sent] == [(b"m3", 45.0), (b"m1", 9)]
    assert not latest.regressed.get(3)


async def test_recovery_applies_tombstones_news_of_a_marker_heard_and_a_newer_fix_after_an_older(changelog):
    heard = decode(value_of("m1", "2026-01-01T10:00:05Z"))
    heard = with_liveness(heard, heard[11] + 60_000_000)
    latest.apply_changelog_batch(changelog_records(
        (1, b"m1", value_of("m1", "2026-01-01T10:00:05Z")),
        (2, b"m1", encode(heard)),  # the same fix, heard from a minute later
        (3, b"m2", value_of("m2", "2026-01-01T10:00:05Z")),
        (4, b"m2", None),
        (5, b"m3", value_of("m3", "2026-01-01T10:00:05Z")),
        (6, b"m3", value_of("m3", "2026-01-01T10:00:06Z", lat=6))))
    assert stored("m1")["heard_at"] > stored("m1")["received_at"]
    assert b"m2" not in tables.contents(latest) and stored("m3")["lat"] == 6
    assert not latest.regressed.get(3)


class Fetched:
    """Stands in for Faust's consumer: its assignment and each partition's highwater."""

    def __init__(self, highwaters: dict) -> None:
        self.highwaters = highwaters

    def assignment(self):
        return set(self.highwaters)

    def highwater(self, tp):
        if self.highwaters[tp] == "revoked":
            raise AssertionError("Partition is not assigned")
        return self.highwaters[tp]


def test_records_behind_counts_what_the_agent_has_yet_to_take_of_the_batches_topic():
    batches, other = settings.batches_topic, settings.topic
    consumer = Fetched({TP(batches, 0): 500, TP(batches, 1): 90, TP(batches, 2): None, TP(batches, 3): "revoked",
                        TP(other, 0): 10_000})
    assert records_behind(consumer, {0: 300, 1: 95, 2: 0, 3: 0}) == 200  # 1 is ahead of the last fetch
    assert records_behind(consumer, {}) == 0  # nothing taken yet in this generation
