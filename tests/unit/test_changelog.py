"""A table partition written changelog first: the offset stored with it never passes a
record another writer put in the changelog (a worker that woke from a pause and found its
queued send appended after its successor's records)."""
import asyncio
import logging
from types import SimpleNamespace

from tables.changelog import Sent
from tables.latest import LatestWriter, decode, encode, latest
from tests.unit import tables
from tests.unit.test_latest import Changelog, fix


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
