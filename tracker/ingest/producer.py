"""The ingestion's produce path: records of many concurrent requests (or MQTT messages) sent
to Kafka in as few producer batches as fit.

One ``send`` per position through a producer's per-message API costs tens of microseconds
of Python and a future per record, and the broker gets many small batches. ``Coalescer``
instead appends each record to the open batch of its partition (``producer.create_batch``,
aiokafka's builder in C) and hands the batch to the producer whole (``send_batch``); while
one batch of a partition is on its way, the records that follow gather in the next. Each
record's caller gets the future of its batch, resolved once the broker has acknowledged
the whole batch (the producer's ``acks``: every in-sync replica), or failed with why.

Records go to the partition Kafka's default partitioner picks for their key
(``tracker.positions.intake.partition_of``), the one the intake expects; a record without a
key goes to the partitions in turn.
"""
from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Iterable

from tracker.positions.intake import Partitioner


class _Open:
    """A partition's batch being filled, and the future its callers wait for."""

    __slots__ = ("builder", "done", "records")

    def __init__(self, builder, done: asyncio.Future) -> None:
        self.builder, self.done, self.records = builder, done, 0


class Coalescer:
    """Sends records through ``producer`` (a started ``AIOKafkaProducer``) in whole batches;
    every topic it writes has ``partitions`` partitions."""

    def __init__(self, producer, partitions: int) -> None:
        self.producer = producer
        self.partitions = partitions
        self._open: dict[tuple[str, int], _Open] = {}
        #: per partition, the batches that filled up, in order, before the open one
        self._full: dict[tuple[str, int], deque[_Open]] = {}
        self._draining: set[tuple[str, int]] = set()
        self._partition_of = Partitioner(partitions)
        self._turn = itertools.cycle(range(partitions))

    def partition(self, key: bytes | None) -> int:
        return next(self._turn) if key is None else self._partition_of(key)

    def submit(self, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> list[asyncio.Future]:
        """Add ``records`` (key, value) to the open batches of their partitions; the futures of
        those batches (each resolved when its batch is acknowledged, or failed)."""
        waits: dict[int, asyncio.Future] = {}
        for key, value in records:
            tp = (topic, self.partition(key))
            batch = self._open.get(tp)
            if batch is None:
                batch = self._start(tp)
            if batch.builder.append(key=key, value=value, timestamp=None) is None:
                if not batch.records:
                    raise ValueError(f"a record of {len(value)} bytes is larger than a producer batch")
                batch.builder.close()  # full: it is sent as it is, and the record starts the next
                self._full.setdefault(tp, deque()).append(batch)
                batch = self._start(tp)
                batch.builder.append(key=key, value=value, timestamp=None)
            batch.records += 1
            waits[id(batch.done)] = batch.done
        return list(waits.values())

    async def send(self, topic: str, records: Iterable[tuple[bytes | None, bytes]], timeout: float) -> None:
        """Send ``records`` and wait until the broker has acknowledged every one of them;
        ``asyncio.TimeoutError`` after ``timeout`` seconds, or the producer's error. The
        batches are shared with other callers, so they are never cancelled here."""
        futures = self.submit(topic, records)
        if not futures:
            return
        done, pending = await asyncio.wait(futures, timeout=timeout)
        if pending:
            raise asyncio.TimeoutError()
        for future in done:
            future.result()

    def _start(self, tp: tuple[str, int]) -> _Open:
        batch = self._open[tp] = _Open(self.producer.create_batch(), asyncio.get_running_loop().create_future())
        if tp not in self._draining:
            self._draining.add(tp)
            asyncio.ensure_future(self._drain(tp))
        return batch

    async def _drain(self, tp: tuple[str, int]) -> None:
        """Hand the partition's open batches to the producer, one after the other: the
        producer takes the next once the one before has left (``send_batch`` waits), and
        meanwhile the records that arrive gather in the open one."""
        try:
            await asyncio.sleep(0)  # the requests of this turn of the loop join the first batch
            while (batch := self._next(tp)) is not None:
                try:
                    sent = await self.producer.send_batch(batch.builder, tp[0], partition=tp[1])
                except Exception as exc:  # noqa: BLE001 - its callers answer with it
                    _fail(batch.done, exc)
                    continue
                sent.add_done_callback(lambda result, done=batch.done: _settle(done, result))
        finally:
            self._draining.discard(tp)

    def _next(self, tp: tuple[str, int]) -> _Open | None:
        """The partition's oldest batch not sent yet: a full one, else the open one."""
        full = self._full.get(tp)
        if full:
            batch = full.popleft()
            if not full:
                del self._full[tp]
            return batch
        return self._open.pop(tp, None)


def _settle(done: asyncio.Future, sent: asyncio.Future) -> None:
    if sent.cancelled():
        _fail(done, ConnectionError("the producer dropped the batch"))
    elif sent.exception() is not None:
        _fail(done, sent.exception())
    elif not done.done():
        done.set_result(None)


def _fail(done: asyncio.Future, exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
    done.exception()  # retrieved: a batch nobody waits for any more is not logged as lost
