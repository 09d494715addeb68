"""Every marker's newest position in memory on every worker, and the feed of changes that the
live map's viewers get (``web/live.py``).

The hub reads the ``latest`` table's changelog with a consumer of its own (no group: every
partition, from the beginning, so it holds every marker whichever worker owns it, and goes
on across rebalances and a dead worker's partitions moving). Every ``TRACKER_LIVE_INTERVAL``
the markers that changed since the last tick become one numbered tick, kept for
``KEPT_SECONDS``, so that a viewer reconnecting with ``Last-Event-ID`` gets what it missed,
or a fresh snapshot when that is older.

Viewers who see the same markers (the same permissions and bbox) share a ``Scope``: each
tick is filtered and encoded once per scope (its gzipped form too, once, when a viewer of
the scope takes gzip: ``Message``), and every viewer of the scope queues the same bytes. So a
thousand viewers of one account cost one encoding per tick, and a viewer that stops reading
holds references to messages the others hold too, not copies.

A viewer's unsent bytes are bounded (``TRACKER_LIVE_CLIENT_BUFFER``, 4 MiB): its queue plus
what its connection has not sent yet (the transport's buffer). A viewer past the bound is
dropped and its connection closed at once, rather than growing the worker's memory; it
reconnects and starts again from a snapshot.

A row is a compact JSON array: ``[marker_id, lat, lon, time_ms, speed, heading, battery,
moving, source, name, heard_ms]`` (unknown values null; ``name`` from
``tracker.positions.model.display_name``; ``battery`` the newest level, a heartbeat's when it is
newer than the fix; ``heard_ms`` when the tracker last received a fix or heartbeat of it).
A message holds its rows as they are (``"m"``), or, for viewers who ask for the columns
layout (the map does), as one array per field (``"c"``, ``COLUMNS``): times as milliseconds
before the message's ``"t"`` (``age``) and after the fix (``heard``), whole numbers without
``.0``, a field that is null in every row left out. Values of one kind side by side
compress far better: gzipped, a tick of 10,000 moving markers takes about 30 % fewer bytes.

The hub also keeps each marker's ``latest`` value as the changelog holds it (``values``), so
that any worker can answer for a marker whose owner cannot (restarting, say). It answers only
once ``caught_up``: it asks the broker for the end of the marker's changelog partition (or of
every partition, for a list) when the request arrives, and waits until it has read that far.
A value is in the changelog before any worker serves it (changelog first, then RocksDB), so
what the hub then holds is never older than what any worker served before the request.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from typing import Callable, Hashable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust import Service

from tracker.metrics import LIVE_DROPPED, LIVE_VIEWERS
from tracker.positions.liveness import battery_of, heard_of
from tracker.positions.model import display_name
from tracker.settings import Settings, settings

log = logging.getLogger(__name__)

#: How long ticks are kept for viewers that reconnect.
KEPT_SECONDS = 60.0
#: How long a read waits for the hub to reach the changelog's end as of the request.
CATCH_UP_SECONDS = 1.0
#: The most a viewer's unsent messages may hold.
CLIENT_BUFFER_BYTES = settings.live_client_buffer

Row = list
#: marker id -> row, or None for a marker removed
Changes = dict[str, "Row | None"]


def row_of(fix: list) -> Row:
    """A ``latest`` value (``tables.latest``) as a feed row."""
    return [fix[0], fix[2], fix[3], fix[1] // 1000, fix[4], fix[5], battery_of(fix), fix[13] if len(fix) > 13 else None,
            fix[9], display_name(fix[10]), heard_of(fix) // 1000]


GZIP_LEVEL = 6


def _deflate(data: bytes) -> bytes:
    """``data`` as raw deflate blocks that need nothing before them (a new compressor, a sync
    flush): appended after a gzip header, any sequence of them is a valid gzip stream."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _gzip_header() -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(b"") + compressor.flush(zlib.Z_SYNC_FLUSH)


#: What a gzipped feed starts with, before any ``Message.gzipped``.
GZIP_HEADER = _gzip_header()


class Message:
    """One encoded message, shared by every viewer it is for; gzipped once, when first asked."""

    __slots__ = ("plain", "_gzipped")

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self._gzipped: bytes | None = None

    def __len__(self) -> int:
        return len(self.plain)

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = _deflate(self.plain)
        return self._gzipped


Keep = Callable[[str, "float | None", "float | None"], bool]

#: The fields of the columns layout, in the order of a row; the first five are always there.
COLUMNS = ("id", "lat", "lon", "age", "heard", "speed", "heading", "battery", "moving", "source", "name")
_ROW_INDEX = {"speed": 4, "heading": 5, "battery": 6, "moving": 7, "source": 8, "name": 9}
#: The columns of numbers, written without ``.0`` when whole.
_NUMBERS = ("speed", "heading", "battery")


def columns_of(rows: list[Row], now_ms: int) -> dict[str, list]:
    """``rows`` as the columns layout, with times relative to ``now_ms``."""
    if not rows:
        return {name: [] for name in COLUMNS[:5]}
    fields = list(zip(*rows))
    times = fields[3]
    columns = {"id": fields[0], "lat": fields[1], "lon": fields[2], "age": [now_ms - t for t in times],
               "heard": [heard - t for heard, t in zip(fields[10], times)]}
    for name, index in _ROW_INDEX.items():
        values = fields[index]
        if any(value is not None for value in values):
            columns[name] = [_whole(value) for value in values] if name in _NUMBERS else values
    return columns


def _whole(value):
    return int(value) if type(value) is float and value.is_integer() else value


class Viewer:
    """One connected viewer: its scope, and its queue of messages not sent yet.

    ``buffered()`` says how many bytes its connection holds unsent (the transport's buffer);
    ``on_drop`` is called once when it is dropped (the view closes the connection)."""

    def __init__(self, keep: Keep, scope_key: Hashable = None, account: Hashable = None,
                 buffered: Callable[[], int] = lambda: 0, on_drop: Callable[[], None] = lambda: None,
                 columns: bool = False) -> None:
        self.keep = keep
        self.columns = columns
        self.scope_key = scope_key if scope_key is not None else ("viewer", id(self))
        self.account = account
        self.buffered = buffered
        self.on_drop = on_drop
        self.queue: deque[Message] = deque()
        self.queued_bytes = 0
        self.wake = asyncio.Event()
        self.dropped = False

    def offer(self, message: Message) -> None:
        if self.dropped:
            return
        if self.queued_bytes + len(message) + self.buffered() > CLIENT_BUFFER_BYTES:
            self.drop()
            return
        self.queue.append(message)
        self.queued_bytes += len(message)
        self.wake.set()

    def drop(self) -> None:
        """Too slow: its queue is let go and its connection closed; it reconnects and starts
        again from a snapshot."""
        if self.dropped:
            return
        self.dropped = True
        self.queue.clear()
        self.queued_bytes = 0
        LIVE_DROPPED.inc()
        self.wake.set()
        self.on_drop()

    def end(self) -> None:
        """Its client has gone: the view stops at once."""
        self.dropped = True
        self.queue.clear()
        self.queued_bytes = 0
        self.wake.set()

    async def next(self, timeout: float) -> Message | None:
        """The next message, or None after ``timeout`` seconds without one."""
        if not self.queue:
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        if not self.queue:
            return None
        message = self.queue.popleft()
        self.queued_bytes -= len(message)
        return message


class Scope:
    """The viewers who see the same markers: each tick is encoded once for all of them."""

    def __init__(self, keep: Keep, columns: bool = False) -> None:
        self.keep = keep
        self.columns = columns
        self.viewers: set[Viewer] = set()
        #: (tick, snapshot) of the last snapshot made: viewers that connect before the next
        #: tick share it (the next update holds every change since that tick).
        self.snapshot: tuple[int, Message] | None = None

    def offer(self, seq: int, changes: Changes) -> None:
        encoded = encode_update(seq, changes, self.keep, columns=self.columns)
        if encoded is None:
            return
        message = Message(encoded)
        for viewer in list(self.viewers):
            viewer.offer(message)


def encode_update(seq: int, changes: Changes, keep: Callable[[str, float, float], bool],
                  event: str = "update", missing: list[int] | None = None, columns: bool = False) -> bytes | None:
    """An SSE message of the changes ``keep`` lets through (None if none), in rows or in the
    columns layout; a snapshot taken before the hub has read some partitions says
    ``"partial": true`` and ``"missing"`` (their markers come in later updates)."""
    rows, removed = [], []
    for marker_id, row in changes.items():
        if row is None:
            if keep(marker_id, None, None):
                removed.append(marker_id)
        elif keep(marker_id, row[1], row[2]):
            rows.append(row)
    if not rows and not removed and event == "update":
        return None
    if columns:
        now_ms = int(time.time() * 1000)
        data = {"t": now_ms, "c": columns_of(rows, now_ms), "r": removed}
    else:
        data = {"m": rows, "r": removed}
    if missing:
        data.update(partial=True, missing=missing)
    return f"id: {seq}\nevent: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


class LiveHub(Service):
    def __init__(self, config: Settings, changelog: str, interval: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config, self.changelog, self.interval = config, changelog, interval
        self.positions: dict[str, Row] = {}
        #: marker id -> its ``latest`` value, as the changelog holds it
        self.values: dict[str, bytes] = {}
        #: changelog partition -> the offset after the last record read
        self._read_to: dict[TopicPartition, int] = {}
        self.pending: Changes = {}
        self.seq = 0
        self.ticks: deque[tuple[int, float, Changes]] = deque()
        self.viewers: set[Viewer] = set()
        self.scopes: dict[Hashable, Scope] = {}
        #: account -> its viewers on this worker
        self.accounts: dict[Hashable, int] = {}
        self.loaded = asyncio.Event()
        #: Changelog partitions not read to the end they had when the hub started.
        self._loading: dict[TopicPartition, int] = {tp: 0 for tp in self._partitions()}
        #: set (and replaced) whenever records were read
        self._progress = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    def _partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self.changelog, p) for p in range(self.config.topic_partitions)]

    def loading(self) -> list[int]:
        """The partitions whose markers the hub has not read yet."""
        return sorted(tp.partition for tp in self._loading)

    async def on_start(self) -> None:
        self.add_future(self._read_forever())
        self.add_future(self._tick_forever())

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=4 * 1024 * 1024)
        await consumer.start()
        partitions = self._partitions()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._read_to = {tp: await consumer.position(tp) for tp in partitions}
        return consumer

    async def _read_forever(self) -> None:
        while not self.should_stop:
            try:
                if self._consumer is None:
                    self._consumer = await self._start_consumer()
                    ends = await self._consumer.end_offsets(list(self._consumer.assignment()))
                    self._loading = {tp: end for tp, end in ends.items() if end > 0}
                    if not self._loading:
                        self.loaded.set()
                batches = await self._consumer.getmany(timeout_ms=200, max_records=20_000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the feed must outlive a broker hiccup
                log.warning("live: reading %s failed (%r); starting again in 1 s", self.changelog, exc)
                if self._consumer is not None:
                    await self._consumer.stop()
                    self._consumer = None
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                self._take(records)
                if not self.loaded.is_set() and tp in self._loading and records[-1].offset + 1 >= self._loading[tp]:
                    del self._loading[tp]
                    if not self._loading:
                        self.loaded.set()
            self._note_progress(batches)
            await asyncio.sleep(0)

    def _note_progress(self, batches) -> None:
        """Where each partition is read to, and wake those waiting for it."""
        for tp, records in batches.items():
            self._read_to[tp] = records[-1].offset + 1
        if batches:
            self._progress.set()
            self._progress = asyncio.Event()

    async def caught_up(self, partitions: list[int] | None = None, timeout: float = CATCH_UP_SECONDS) -> bool:
        """Whether the hub holds what the changelog held when this was called, for
        ``partitions`` (every partition by default): it asks the broker for their end and
        waits, at most ``timeout`` seconds, until it has read that far."""
        consumer = self._consumer
        if consumer is None or not self.loaded.is_set():
            return False
        tps = self._partitions() if partitions is None else [TopicPartition(self.changelog, p) for p in partitions]
        deadline = time.monotonic() + timeout
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(tps), timeout)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - no answer from the broker: not caught up
            return False
        while any(self._read_to.get(tp, 0) < end for tp, end in ends.items()):
            left = deadline - time.monotonic()
            if left <= 0 or self._consumer is not consumer:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    def _take(self, records) -> None:
        positions, pending = self.positions, self.pending
        for record in records:
            marker_id = record.key.decode()
            if record.value is None:
                self.values.pop(marker_id, None)
                if positions.pop(marker_id, None) is not None:
                    pending[marker_id] = None
                continue
            row = row_of(orjson.loads(record.value))
            current = positions.get(marker_id)
            if current is None or row[3] >= current[3]:
                positions[marker_id] = pending[marker_id] = row
                self.values[marker_id] = record.value

    async def _tick_forever(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(self.interval)
            self.tick()

    def tick(self) -> None:
        """Number the changes since the last tick, keep them and offer them to the viewers."""
        now = time.monotonic()
        while self.ticks and now - self.ticks[0][1] > KEPT_SECONDS:
            self.ticks.popleft()
        if not self.pending:
            return
        self.seq += 1
        changes, self.pending = self.pending, {}
        self.ticks.append((self.seq, now, changes))
        for scope in list(self.scopes.values()):
            scope.offer(self.seq, changes)

    def snapshot(self, keep: Keep, scope_key: Hashable = None, columns: bool = False) -> Message:
        """Every marker ``keep`` lets through; shared by the viewers of a scope until the next
        tick (while no partition is still loading)."""
        scope = self.scopes.get(scope_key) if scope_key is not None else None
        if scope is not None and scope.snapshot is not None and scope.snapshot[0] == self.seq:
            return scope.snapshot[1]
        missing = self.loading()
        message = Message(encode_update(self.seq, self.positions, keep, event="snapshot", missing=missing,
                                        columns=columns))
        if scope is not None and not missing:
            scope.snapshot = (self.seq, message)
        return message

    def missed(self, since: int) -> Changes | None:
        """The changes after tick ``since``, merged; None if some are no longer kept."""
        if since > self.seq or (self.ticks and self.ticks[0][0] > since + 1) or (not self.ticks and since < self.seq):
            return None
        merged: Changes = {}
        for seq, _, changes in self.ticks:
            if seq > since:
                merged.update(changes)
        return merged

    def viewers_of(self, account: Hashable) -> int:
        return self.accounts.get(account, 0)

    def scope(self, scope_key: Hashable, keep: Keep, columns: bool = False) -> Scope:
        """The scope of ``scope_key`` (made with ``keep`` and the layout if it has no viewer
        yet: the key says both)."""
        scope = self.scopes.get(scope_key)
        if scope is None:
            scope = self.scopes[scope_key] = Scope(keep, columns)
        return scope

    def subscribe(self, viewer: Viewer) -> None:
        self.scope(viewer.scope_key, viewer.keep, viewer.columns).viewers.add(viewer)
        self.viewers.add(viewer)
        self.accounts[viewer.account] = self.accounts.get(viewer.account, 0) + 1
        LIVE_VIEWERS.set(len(self.viewers))

    def unsubscribe(self, viewer: Viewer) -> None:
        if viewer not in self.viewers:
            return
        self.viewers.discard(viewer)
        scope = self.scopes.get(viewer.scope_key)
        if scope is not None:
            scope.viewers.discard(viewer)
            if not scope.viewers:
                del self.scopes[viewer.scope_key]
        self.accounts[viewer.account] -= 1
        if self.accounts[viewer.account] <= 0:
            del self.accounts[viewer.account]
        LIVE_VIEWERS.set(len(self.viewers))
