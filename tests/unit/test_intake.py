"""The intake's verdict on a fetched slice of gps.positions: fixes, rejections, re-sends."""
from types import SimpleNamespace

import orjson

from tracker import batches
from tracker.intake import Judge
from tracker.position import FIX_FIELDS

NOW_MS = 1_900_000_000_000
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


def test_the_future_limit_is_measured_from_the_kafka_time():
    partition = JUDGE.partition_of(b"truck-7")
    ahead = good(time=(NOW_MS + 23 * 3600_000) / 1000)
    early = record(b"truck-7", ahead, timestamp=NOW_MS - 2 * 3600_000)
    verdict = JUDGE.judge(partition, [early, record(b"truck-7", ahead, offset=1)], NOW_MS)
    assert [error.code for _, error in verdict.rejected] == ["future_time"]
    assert len(verdict.fixes) == 1


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
