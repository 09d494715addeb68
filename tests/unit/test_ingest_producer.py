"""The ingestion's produce path: records of concurrent callers share producer batches, one
partition's batches leave one after the other, and a caller learns of its batch's fate."""
import asyncio

import pytest

from tracker.ingest.producer import Coalescer
from tracker.positions.intake import partition_of


class Builder:
    def __init__(self, capacity: int) -> None:
        self.records, self.capacity, self.closed = [], capacity, False

    def append(self, key, value, timestamp):
        if self.closed or len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def close(self):
        self.closed = True


class Producer:
    """aiokafka's batch API: a batch leaves once the one before it on its partition has."""

    def __init__(self, capacity: int = 100, fail: bool = False) -> None:
        self.capacity, self.fail = capacity, fail
        self.sent: list[tuple[str, int, list]] = []
        self.acks: list[asyncio.Future] = []

    def create_batch(self):
        return Builder(self.capacity)

    async def send_batch(self, batch, topic, partition):
        if self.fail:
            raise ConnectionError("broker away")
        await asyncio.sleep(0)
        self.sent.append((topic, partition, batch.records))
        ack = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


async def turns(n: int = 20) -> None:
    """Let the loop run ``n`` turns: the coalescer's drain and the producer's sends happen
    within a few, however slow the machine (a timed sleep is not enough on a busy one)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_batch_per_partition_and_wait_for_its_ack():
    producer = Producer()
    coalescer = Coalescer(producer, 8)
    key = b"van-1"
    callers = [asyncio.ensure_future(coalescer.send("t", [(key, b"%d" % i)], timeout=5)) for i in range(10)]
    await turns()
    assert producer.sent == [("t", partition_of(key, 8), [(key, b"%d" % i) for i in range(10)])]
    assert not any(caller.done() for caller in callers)  # not before the broker's acknowledgement
    producer.acks[0].set_result(None)
    await asyncio.gather(*callers)


async def test_a_full_batch_is_sent_as_it_is_and_the_rest_starts_the_next():
    producer = Producer(capacity=3)
    coalescer = Coalescer(producer, 1)
    futures = coalescer.submit("t", [(b"k", b"%d" % i) for i in range(7)])
    await turns()
    assert [len(records) for _, _, records in producer.sent] == [3, 3, 1] and len(futures) == 3


async def test_a_failed_batch_fails_its_callers_and_a_late_ack_times_out():
    coalescer = Coalescer(Producer(fail=True), 8)
    with pytest.raises(ConnectionError):
        await coalescer.send("t", [(b"k", b"v")], timeout=5)
    slow = Producer()
    with pytest.raises(asyncio.TimeoutError):
        await Coalescer(slow, 8).send("t", [(b"k", b"v")], timeout=0.05)
    assert not slow.acks[0].cancelled()  # shared with other callers: never cancelled


async def test_records_without_a_key_go_to_the_partitions_in_turn():
    producer = Producer()
    coalescer = Coalescer(producer, 3)
    coalescer.submit("dlq", [(None, b"a"), (None, b"b"), (None, b"c")])
    await turns()
    assert sorted(partition for _, partition, _ in producer.sent) == [0, 1, 2]
