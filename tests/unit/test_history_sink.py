"""The history sink's writer waits for more fixes at a low load: a slow stream goes to
Postgres in a few transactions a second, not one per record read, and a whole batch goes at once."""
import asyncio
import dataclasses
from types import SimpleNamespace

import orjson
from aiokafka import TopicPartition

import agents.history as history_agent
from agents.history import HistorySink, NewestWritten, _Read
from tracker.positions.model import read_fix
from tracker.stream import batches

TP = TopicPartition(history_agent.settings.batches_topic, 0)
NOW_US = 1_900_000_000 * 1_000_000


def record(offset: int, count: int = 1):
    fixes = [read_fix(orjson.dumps({"marker_id": f"m{offset}-{i}", "lat": 45.0, "lon": 14.0, "time": 1_800_000_000}),
                      NOW_US) + [NOW_US] for i in range(count)]
    return SimpleNamespace(value=next(batches.encode(fixes)), offset=offset)


async def test_a_write_waits_for_the_fixes_that_follow_the_first(monkeypatch):
    monkeypatch.setattr(history_agent, "LINGER_SECONDS", 1.0)
    sink = HistorySink()
    await sink.handle(TP, [record(0)])
    waiting = asyncio.ensure_future(sink._linger())
    await asyncio.sleep(0.1)
    await sink.handle(TP, [record(1)])
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await asyncio.wait_for(waiting, 2.0)
    entries, rows = sink._take(history_agent.settings.history_batch_size)
    assert [e.offset for e in entries] == [0, 1] and len(rows) == 2


async def test_a_whole_batch_is_written_without_waiting(monkeypatch):
    monkeypatch.setattr(history_agent, "LINGER_SECONDS", 60.0)
    monkeypatch.setattr(history_agent, "settings", dataclasses.replace(history_agent.settings, history_batch_size=5))
    sink = HistorySink()
    await sink.handle(TP, [record(0, 2)])
    waiting = asyncio.ensure_future(sink._linger())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await sink.handle(TP, [record(1, 3)])
    await asyncio.wait_for(waiting, 1.0)  # five fixes: a batch
    await asyncio.wait_for(sink._linger(), 1.0)  # and still one while it is buffered


async def test_records_read_within_the_linger_go_in_one_write(monkeypatch):
    monkeypatch.setattr(history_agent, "LINGER_SECONDS", 1.0)
    sink = HistorySink()
    writes = []

    async def write(conn, rows, split, erasures):
        writes.append(len(rows))
        return "connection"

    async def commit(_):
        pass

    monkeypatch.setattr(sink, "_write", write)
    monkeypatch.setattr(sink, "commit", commit)
    sink.consumer = SimpleNamespace(paused=lambda: set())
    writer = asyncio.ensure_future(sink._write_forever())
    try:
        for offset in range(3):
            await sink.handle(TP, [record(offset)])
            await asyncio.sleep(0.05)
        for _ in range(40):
            if writes:
                break
            await asyncio.sleep(0.05)
        assert writes == [3] and sink.buffered == 0
    finally:
        writer.cancel()


def read(tp: TopicPartition, *fixes: tuple[str, int]) -> _Read:
    return _Read(tp, 0, 0, [[marker, time_us] for marker, time_us in fixes], [], 0.0)


def test_only_fixes_newer_than_the_newest_written_for_their_marker_are_new():
    written = NewestWritten()
    maybe, new = written.split([read(TP, ("a", 10), ("a", 20), ("a", 20), ("a", 15), ("b", 5))])
    assert maybe == [["a", 10], ["a", 20], ["a", 15], ["b", 5]]  # unknown, sent twice, late, unknown
    assert new == [["a", 20]]
    maybe, new = written.split([read(TP, ("a", 30), ("b", 5), ("b", 6))])
    assert (maybe, new) == ([["b", 5]], [["a", 30], ["b", 6]])


def test_a_revoked_partition_starts_again_from_no_marker_known():
    other = TopicPartition(TP.topic, 1)
    written = NewestWritten()
    written.split([read(TP, ("a", 10)), read(other, ("c", 10))])
    written.forget({TP})  # another worker may write "a" meanwhile
    maybe, new = written.split([read(TP, ("a", 20)), read(other, ("c", 20))])
    assert (maybe, new) == ([["a", 20]], [["c", 20]])
