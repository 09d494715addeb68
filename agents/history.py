"""history: append every fix to Postgres ``positions``, in large batches, idempotently.

It reads the batches topic with a consumer group of its own (``<app id>-history``), so
the live path never waits for Postgres: while Postgres is down or slow, the intake and
the ``latest`` agent go on, and the fixes wait, first in a bounded buffer of
``TRACKER_HISTORY_BUFFER`` fixes (reading pauses when it is full), then in Kafka. A
writer takes up to ``TRACKER_HISTORY_BATCH_SIZE`` fixes at a time, once the oldest has
waited ``LINGER_SECONDS`` or a whole batch is there, copies them with one
COPY and one ``INSERT … ON CONFLICT DO NOTHING`` (``tracker.positions.store.copy_fixes``), retries
until Postgres takes them, and only then lets their offsets be committed. A crash or an
outage delays rows but never drops them, and a replay adds nothing. An erase record
(``tracker history erase``) deletes the marker's rows once the fixes before it are in.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import NamedTuple

from aiokafka import TopicPartition

from tracker.stream import batches
from tracker.app import worker_service
from tracker.stream.consumer import GroupConsumer
from tracker.storage.pool import UNAVAILABLE
from tracker.positions.store import copy_fixes
from tracker.storage.erase import erase_history
from tracker.metrics import HISTORY_BUFFERED, HISTORY_LAG_SECONDS, HISTORY_ROWS, HISTORY_WRITE_SECONDS
from tracker.positions.model import FIX_FIELDS
from tracker.resources import database
from tracker.stream.retry import Stopped, retrying
from tracker.settings import settings

log = logging.getLogger(__name__)

RECEIVED = len(FIX_FIELDS)  # received_us follows the fix's fields
#: A write waits this long from its oldest fix for more, unless a whole batch is there: at a
#: low load, a few transactions a second rather than one per record read.
LINGER_SECONDS = 0.5


class _Read(NamedTuple):
    """One record of the batches topic, read and waiting for Postgres."""
    tp: TopicPartition
    epoch: int
    offset: int
    fixes: list
    erasures: list  # markers' history to delete once the fixes before are written
    at: float  # when it was read (monotonic)


class NewestWritten:
    """The newest fix time this sink wrote for each marker, per partition: a fix newer than
    that is not in ``positions`` yet, so it is copied straight in rather than merged.

    A marker is known only once a write of this process holds it, and forgotten with its
    partition: another worker may have written it meanwhile. The knowledge is a hint, never
    a risk: if a fix taken as new is there after all, ``copy_fixes`` merges it."""

    #: Markers remembered per partition; past this the partition starts again from none.
    LIMIT = 200_000

    def __init__(self) -> None:
        self._newest: dict[TopicPartition, dict[str, int]] = {}

    def split(self, entries: list[_Read]) -> tuple[list, list]:
        """The fixes of ``entries`` that may be in ``positions`` already, and the new ones;
        from then on each marker is known up to its newest fix in them."""
        maybe, new = [], []
        for read in entries:
            newest = self._newest.get(read.tp)
            if newest is None or len(newest) > self.LIMIT:
                newest = self._newest[read.tp] = {}
            known = newest.get
            for fix in read.fixes:
                marker, time_us = fix[0], fix[1]
                last = known(marker)
                if last is None:
                    maybe.append(fix)
                    newest[marker] = time_us
                elif time_us > last:
                    new.append(fix)
                    newest[marker] = time_us
                else:
                    maybe.append(fix)
        return maybe, new

    def forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._newest.pop(tp, None)


class HistorySink(GroupConsumer):
    name = "history"

    def __init__(self, **kwargs) -> None:
        super().__init__(settings, settings.batches_topic, f"{settings.app_id}-history", max_records=64, **kwargs)
        #: Each batch record read and not yet written, in the order read.
        self._buffer: deque = deque()
        self._buffered = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()  # a whole batch is buffered
        self._writing = False
        self._written = NewestWritten()

    async def on_start(self) -> None:
        await database.ready()
        await super().on_start()
        self.add_future(self._write_forever())

    @property
    def buffered(self) -> int:
        """Fixes read and not yet written to Postgres."""
        return self._buffered

    async def handle(self, tp: TopicPartition, records: list) -> None:
        epoch, now = self.epoch(tp), time.monotonic()
        for record in records:
            fixes, erasures = batches.decode_record(record.value)
            self._buffer.append(_Read(tp, epoch, record.offset, fixes, erasures, now))
            self._buffered += len(fixes)
            await asyncio.sleep(0)  # a record may hold a thousand fixes: let the live path run
        HISTORY_BUFFERED.set(self._buffered)
        if self._buffered >= settings.history_buffer:
            self.consumer.pause(*self.consumer.assignment())
        if self._buffered >= settings.history_batch_size:
            self._full.set()
        self._wake.set()

    async def _write_forever(self) -> None:
        """Writes one batch at a time on a connection of its own, each retried until Postgres takes it."""
        conn = None
        try:
            while not self.should_stop:
                if not self._buffer:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._linger()
                if not self._buffer:  # revoked meanwhile
                    continue
                entries, rows = self._take(settings.history_batch_size)
                self._writing = True
                try:
                    conn = await self._write(conn, rows, self._written.split(entries), entries[-1].erasures)
                finally:
                    self._writing = False
                if conn is None:
                    return  # stopping: not committed, read again after the restart
                for read in entries:
                    self.done(read.tp, read.epoch, read.offset, read.offset + 1)
                self._buffered -= len(rows)
                HISTORY_BUFFERED.set(self._buffered)
                await self.commit(self.assigned)
                if self._buffered < settings.history_buffer and self.consumer.paused():
                    self.consumer.resume(*self.consumer.paused())
        finally:
            if conn is not None:
                await _close_quietly(conn)

    async def _linger(self) -> None:
        """Wait until the oldest fix buffered has waited ``LINGER_SECONDS`` or a whole batch is there."""
        if self._buffered >= settings.history_batch_size:
            return
        self._full.clear()
        left = self._buffer[0].at + LINGER_SECONDS - time.monotonic()
        if left > 0:
            try:
                await asyncio.wait_for(self._full.wait(), left)
            except asyncio.TimeoutError:
                pass

    def _take(self, limit: int) -> tuple[list, list]:
        """Whole slices from the head of the buffer, up to ``limit`` fixes (at least one
        slice), ending at the first erase record."""
        entries, rows = [], []
        while self._buffer and (not rows or len(rows) + len(self._buffer[0].fixes) <= limit):
            read = self._buffer.popleft()
            entries.append(read)
            rows.extend(read.fixes)
            if read.erasures:
                break
        return entries, rows

    async def _write(self, conn, rows: list, split: tuple[list, list], erasures: list[dict]):
        """The connection once ``rows`` (``split`` in fixes that may be there and new ones)
        are committed (and then ``erasures`` done), or None if the service stopped first."""
        started = time.monotonic()
        held = [conn]

        async def write() -> int:
            if held[0] is None or held[0].closed:
                held[0] = await database.connect()
            inserted = await copy_fixes(held[0], *split) if rows else 0
            for request in erasures:
                await erase_history(held[0], request["marker_id"], request["from_us"], request["to_us"])
            return inserted

        async def drop_connection() -> None:
            if held[0] is not None:
                await _close_quietly(held[0])
                held[0] = None

        try:  # never drop a batch: retry whatever failed
            inserted = await retrying(f"history: the write of {len(rows)} rows", write, retry_on=Exception,
                                      expected=UNAVAILABLE, stopping=lambda: self.should_stop,
                                      after_failure=drop_connection)
        except Stopped:
            return None
        conn = held[0]
        HISTORY_ROWS.inc(inserted)
        HISTORY_WRITE_SECONDS.observe(time.monotonic() - started)
        if rows:
            HISTORY_LAG_SECONDS.observe(time.time() - min(fix[RECEIVED] for fix in rows) / 1e6)
        return conn

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        self._written.forget(partitions)
        kept = deque(read for read in self._buffer if read.tp not in partitions)
        self._buffered -= sum(len(read.fixes) for read in self._buffer if read.tp in partitions)
        self._buffer = kept
        HISTORY_BUFFERED.set(self._buffered)

    async def on_flush(self) -> None:
        """Let a write in progress finish; what is still buffered is read again after a restart."""
        while self._writing:
            await asyncio.sleep(0.05)


async def _close_quietly(conn) -> None:
    try:
        await conn.close()
    except Exception:  # noqa: BLE001 - it is broken already
        pass


history = worker_service(HistorySink())
