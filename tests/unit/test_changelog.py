"""A table partition written changelog first: the offset stored with it never passes a
record another writer put in the changelog (a worker that woke from a pause and found its
queued send appended after its successor's records), and every table is recovered forward
only: ``latest`` by fix time (``test_latest``), the stages' states by what they have taken of
a marker's fixes."""
import asyncio
import logging
from types import SimpleNamespace

import pytest

from tables.changelog import PartitionStore, Sent
from tables.events_state import encode as events_encode, events_state
from tables.journeys_state import JourneysStateWriter, journeys_state
from tables.journeys_state import decode as journeys_decode, encode as journeys_encode
from tables.latest import LatestWriter, decode, encode, latest
from tests.unit import tables
from tests.unit.test_latest import Changelog, fix
from tracker.events.model import MarkerState
from tracker.journeys.motion import MotionState


def writer_at(offset: int) -> LatestWriter:
    tables.clear(latest)
    writer = LatestWriter(Changelog().send_many)
    writer.store.write(3, [], offset)
    return writer


def value() -> bytes:
    return encode(fix("m", "2026-01-01T10:00:00Z"))


def test_a_send_that_follows_the_stored_offset_moves_it_to_its_last_record():
    writer = writer_at(10)
    writer.commit(3, [(b"m1", value())], Sent(11, 11))
    writer.commit(3, [(b"m2", value()), (b"m3", value())], Sent(12, 13))
    assert writer.store.offset(3) == 13


def test_a_fresh_partition_takes_the_offset_of_its_first_send():
    tables.clear(latest)
    writer = LatestWriter(Changelog().send_many)
    writer.commit(3, [(b"m1", value())], Sent(0, 0))
    assert writer.store.offset(3) == 0 and decode(writer.store.get(3, b"m1"))[0] == "m"


def test_records_of_another_writer_before_a_send_keep_the_offset_for_recovery_to_read_them(caplog):
    writer = writer_at(10)
    with caplog.at_level(logging.WARNING):
        writer.commit(3, [(b"m1", b"[1]")], Sent(25, 25))
        writer.commit(3, [(b"m1", b"[2]")], Sent(26, 26))
    assert writer.store.offset(3) == 10
    assert writer.store.get(3, b"m1") == b"[2]"  # the values are stored all the same
    told = [record.getMessage() for record in caplog.records if "another worker" in record.getMessage()]
    assert told == [f"{writer.changelog} partition 3: offsets 11 to 24 were written by another worker; "
                    "its stored offset stays at 10 until a recovery reads them"]


async def test_a_send_gives_the_first_and_the_last_offset_of_all_its_requests():
    async def send_many(topic, partition, records):
        sent = []
        for offset, count in ((40, 2), (42, 3)):
            future = asyncio.get_running_loop().create_future()
            future.set_result(SimpleNamespace(offset=offset))
            sent.append((future, count))
        return sent

    assert await LatestWriter(send_many).send(3, [(b"m", value())] * 5) == Sent(40, 44)


class Captured:
    """Stands in for the producer: keeps every record sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send_many(self, topic, partition, records):
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(self.sent)))
        self.sent.extend(records)
        return [(future, len(records))]


def recovered(*records: tuple[int, bytes, bytes | None], partition: int = 3):
    """Changelog events as Faust's recovery hands them to a table: (offset, key, value)."""
    return [SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset, key=key, value=value))
            for offset, key, value in records]


def state(last_s: int, odometer: float) -> bytes:
    """A motion state whose last accepted fix is at ``last_s`` seconds."""
    motion = MotionState()
    motion.last_us, motion.last_lat, motion.last_lon, motion.odometer = last_s * 1_000_000, 45.0, 14.0, odometer
    return journeys_encode(motion)


@pytest.fixture()
def states():
    tables.clear(journeys_state)
    journeys_state.regressed.clear()
    return journeys_state


def test_a_state_recovered_never_goes_back_to_one_that_took_fewer_fixes(states):
    """The interim owner's states come before the woken worker's older ones: recovery keeps
    the interim owner's, whatever the order (here the newer one is already stored)."""
    states.apply_changelog_batch(recovered((10, b"m1", state(60, 900.0)), (11, b"m2", state(60, 900.0))))
    states.apply_changelog_batch(recovered((12, b"m1", state(50, 700.0)),   # an older fix
                                           (13, b"m2", state(60, 850.0)),   # the same fix, a shorter odometer
                                           (14, b"m3", state(10, 5.0))))
    store = PartitionStore(states)
    assert [journeys_decode(store.get(3, key)).odometer for key in (b"m1", b"m2", b"m3")] == [900.0, 900.0, 5.0]
    assert states.regressed[3] == {b"m1", b"m2"} and store.offset(3) == 14


def test_a_tombstone_always_applies_and_a_newer_state_follows_it(states):
    states.apply_changelog_batch(recovered((1, b"m1", state(60, 900.0)), (2, b"m1", None), (3, b"m1", state(5, 1.0)),
                                           (4, b"m2", state(5, 1.0)), (5, b"m2", state(6, 2.0))))
    store = PartitionStore(states)
    assert [journeys_decode(store.get(3, key)).odometer for key in (b"m1", b"m2")] == [1.0, 2.0]
    assert not states.regressed[3]


async def test_the_next_send_carries_the_kept_value_of_a_regressed_key_once(states):
    states.apply_changelog_batch(recovered((10, b"m1", state(60, 900.0)), (11, b"m1", state(50, 700.0))))
    producer = Captured()
    writer = JourneysStateWriter(producer.send_many)
    writer.commit(3, [(b"m2", state(70, 1.0))], await writer.send(3, [(b"m2", state(70, 1.0))]))
    assert producer.sent == [(b"m2", state(70, 1.0)), (b"m1", state(60, 900.0))]
    assert not states.regressed[3]
    await writer.send(3, [(b"m2", state(71, 2.0))])
    assert [key for key, _ in producer.sent] == [b"m2", b"m1", b"m2"]


def test_an_events_state_ranks_by_its_newest_fix_then_its_newest_heartbeat():
    older, newer, heard = MarkerState(time_us=5), MarkerState(time_us=6), MarkerState(time_us=6, heard_us=9)
    ranks = [events_state.rank(events_encode(s)) for s in (MarkerState(), older, newer, heard)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
