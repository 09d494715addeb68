"""The intake's verdict on a fetched slice of gps.positions: fixes, rejections, re-sends."""
import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from tracker.stream import batches
from tracker.stream.dead_letters import dead_letter
from tracker.positions.intake import Judge
from tracker.positions.model import FIX_FIELDS

NOW_MS = 1_900_000_000_000
AT = datetime(2030, 3, 17, tzinfo=timezone.utc)
JUDGE = Judge(8)


def record(key: bytes | None, value, offset: int = 0, timestamp: int = NOW_MS - 5_000, partition: int | None = None):
    if value is not None and not isinstance(value, bytes):
        value = orjson.dumps(value)
    return SimpleNamespace(key=key, value=value, offset=offset, timestamp=timestamp,
                           partition=JUDGE.partition_of(key or b"") if partition is None else partition,
                           topic="gps.positions")


def good(marker_id: str = "truck-7", **extra) -> dict:
    return {"marker_id": marker_id, "lat": 45.5, "lon": 14.25, "time": (NOW_MS - 60_000) / 1000, **extra}


def test_placed_records_become_fixes_with_their_kafka_time():
    verdict = JUDGE.judge(JUDGE.partition_of(b"truck-7"), [record(b"truck-7", good(speed=3.5))], NOW_MS)
    (fix,) = verdict.fixes
    assert len(fix) == len(FIX_FIELDS) + 1
    assert fix[:4] == ["truck-7", (NOW_MS - 60_000) * 1000, 45.5, 14.25]
    assert fix[FIX_FIELDS.index("speed")] == 3.5
    assert fix[-1] == (NOW_MS - 5_000) * 1000
    assert not verdict.rejected and not verdict.misplaced


def test_a_kafka_time_ahead_of_the_clock_counts_as_now():
    partition = JUDGE.partition_of(b"truck-7")
    (fix,) = JUDGE.judge(partition, [record(b"truck-7", good(), timestamp=NOW_MS + 10 ** 9)], NOW_MS).fixes
    assert fix[-1] == NOW_MS * 1000


def test_a_fix_more_than_five_minutes_ahead_of_its_kafka_time_goes_to_the_dlq_as_future():
    partition = JUDGE.partition_of(b"truck-7")
    stamp = NOW_MS - 3600_000  # received an hour ago: the reference, not the clock
    records = [
        record(b"truck-7", good(time=(stamp + 4 * 60_000) / 1000), offset=0, timestamp=stamp),
        record(b"truck-7", good(time=(stamp + 6 * 60_000) / 1000), offset=1, timestamp=stamp),
        record(b"truck-7", good(time=(NOW_MS + 23 * 3600_000) / 1000), offset=2),  # would freeze the marker a day
    ]
    verdict = JUDGE.judge(partition, records, NOW_MS)
    assert [fix[1] for fix in verdict.fixes] == [(stamp + 4 * 60_000) * 1000]
    assert [(r.offset, e.code) for r, e in verdict.rejected] == [(1, "future"), (2, "future")]
    letter = dead_letter(records[1].value, verdict.rejected[0][1], AT, "gps.positions", partition, 1)
    assert letter["code"] == "future" and letter["reason"].startswith("future: ")


def test_a_kafka_time_ahead_of_the_clock_does_not_widen_the_allowance():
    partition = JUDGE.partition_of(b"truck-7")
    ahead = record(b"truck-7", good(time=(NOW_MS + 3600_000) / 1000), timestamp=NOW_MS + 86_400_000)
    verdict = JUDGE.judge(partition, [ahead], NOW_MS)
    assert [e.code for _, e in verdict.rejected] == ["future"] and not verdict.fixes


def test_bad_records_are_rejected_with_their_reason_and_offset():
    partition = JUDGE.partition_of(b"x")
    verdict = JUDGE.judge(partition, [record(b"x", b"{not json", offset=4), record(b"x", good(lat=91), offset=5),
                                      record(b"x", None, offset=6)], NOW_MS)
    assert [(r.offset, e.code) for r, e in verdict.rejected] == [(4, "not_json"), (5, "out_of_range"), (6, "not_json")]


def test_records_under_another_key_or_partition_are_resent_under_their_marker_id():
    own = JUDGE.partition_of(b"truck-7")
    other_key = record(b"junk", good(), partition=own, timestamp=NOW_MS - 7)
    other_partition = record(b"truck-7", good(), partition=(own + 1) % 8, timestamp=NOW_MS - 8)
    verdict = JUDGE.judge(own, [other_key], NOW_MS)
    assert verdict.misplaced == [(b"truck-7", other_key.value, NOW_MS - 7)] and not verdict.fixes
    verdict = JUDGE.judge((own + 1) % 8, [other_partition], NOW_MS)
    assert verdict.misplaced == [(b"truck-7", other_partition.value, NOW_MS - 8)]


def test_partitions_are_the_ones_kafkas_default_partitioner_picks():
    from aiokafka.partitioner import DefaultPartitioner

    for key in (b"truck-7", b"a", b"sim-00042", "é".encode()):
        assert JUDGE.partition_of(key) == DefaultPartitioner()(key, list(range(8)), list(range(8)))


def test_batch_records_split_by_count_and_size_and_keep_the_order():
    fixes = [[f"m{i}", i, 1.0, 2.0, None, None, None, None, None, None, None, i] for i in range(2_500)]
    values = list(batches.encode(fixes))
    assert len(values) == 3
    assert [fix for value in values for fix in batches.decode(value)] == fixes
    big = [[f"m{i}", i, 1.0, 2.0, None, None, None, None, None, None, {"note": "x" * 250}, i] for i in range(8_000)]
    values = list(batches.encode(big))
    assert all(len(value) <= batches.MAX_BYTES for value in values)
    assert [fix for value in values for fix in batches.decode(value)] == big


class Broker:
    """A producer whose sends stay pending until the test acknowledges or fails them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, asyncio.Future]] = []

    async def send(self, topic, **kwargs):
        future = asyncio.get_running_loop().create_future()
        self.sent.append((topic, future))
        return future


def dlq_count() -> float:
    return REGISTRY.get_sample_value("tracker_dlq_records_total") or 0.0


async def test_the_dlq_counter_counts_only_dead_letters_the_broker_acknowledged(monkeypatch):
    from agents import intake as agent

    broker = Broker()
    monkeypatch.setattr(agent, "worker_producer", SimpleNamespace(producer=broker))
    consumer = agent.Intake()
    tp = TopicPartition(agent.settings.topic, 0)
    before = dlq_count()
    await consumer.handle(tp, [record(b"x", b"{not json", offset=7, partition=0),
                               record(b"x", b"[]", offset=8, partition=0)])
    (topic, acknowledged), (_, failed) = broker.sent
    assert topic == agent.settings.dlq_topic
    assert dlq_count() == before  # sent, not yet written
    acknowledged.set_result(None)
    failed.set_exception(KafkaTimeoutError())
    await asyncio.sleep(0)
    assert dlq_count() == before + 1
    consumer._settle()  # the failed slice is given up, to be read again
