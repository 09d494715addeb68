"""Sends recorded tracks to Kafka, showing progress: at the pace their own times ask for
(``send_paced``: replay, simulate), or at full speed (``send_all``: import)."""
from __future__ import annotations

import asyncio
import sys
import time
from itertools import islice
from typing import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from tracker.positions.intake import partition_of
from tracker.stream.producer import KafkaUnavailable, batch_sender

MAX_PENDING = 10_000
#: Records ``send_all`` encodes and hands to the producer at a time (it packs them into
#: batches of its own size and sends them while the next chunk is encoded).
CHUNK = 10_000


async def send_paced(producer: AIOKafkaProducer, topic: str, items: Iterable[tuple[float, bytes, bytes]],
                     label: str, total: int | None = None) -> tuple[int, float]:
    """Send each (seconds after start, key, value) no earlier than its time.

    Prints progress to stderr about once a second; returns (records sent, seconds taken).
    Every send is acknowledged by the broker before this returns.
    """
    started = time.monotonic()
    last_report = started
    sent = 0
    pending: list[asyncio.Future] = []
    try:
        for due, key, value in items:
            wait = due - (time.monotonic() - started)
            if wait > 0.002:
                await asyncio.sleep(wait)
            pending.append(await producer.send(topic, key=key, value=value))
            sent += 1
            if len(pending) >= MAX_PENDING:
                await asyncio.gather(*pending)
                pending.clear()
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                _progress(label, sent, total, now - started)
        await asyncio.gather(*pending)
    finally:
        _progress(label, sent, total, time.monotonic() - started, end="\n")
    return sent, time.monotonic() - started


async def send_all(producer, topic: str, key: bytes, values: Iterable[bytes], total: int,
                   label: str = "import") -> tuple[int, float]:
    """Send the ``total`` values under ``key`` to its partition at full speed, in batches
    (taking the next values while the last batches are on their way), and wait until the
    broker has acknowledged all; progress on stderr about once a second. (records
    acknowledged, seconds taken); ``KafkaUnavailable`` in one line when the broker fails."""
    started = last_report = time.monotonic()
    acknowledged = 0
    values = iter(values)
    pending: list[tuple[asyncio.Future, int]] = []

    def settle() -> None:
        """Count the acknowledged batches (raising a failed one's error); keep the others."""
        nonlocal acknowledged, pending
        waiting = []
        for future, count in pending:
            if future.done():
                future.result()
                acknowledged += count
            else:
                waiting.append((future, count))
        pending = waiting

    try:
        partitions = sorted(await producer.partitions_for(topic))
        partition = partitions[partition_of(key, len(partitions))]
        send = batch_sender(producer)
        while chunk := [(key, value) for value in islice(values, CHUNK)]:
            pending.extend(await send(topic, partition, chunk))
            await asyncio.sleep(0)  # let the producer send while the next chunk is encoded
            settle()
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                _progress(label, acknowledged, total, now - started)
        while pending:
            await asyncio.wait([future for future, _ in pending], timeout=1.0)
            settle()
            if pending:
                _progress(label, acknowledged, total, time.monotonic() - started)
    except KafkaError as exc:
        _progress(label, acknowledged, total, time.monotonic() - started, end="\n")
        raise KafkaUnavailable(f"Kafka failed after {acknowledged} of {total} points: {exc}") from None
    elapsed = time.monotonic() - started
    _progress(label, acknowledged, total, elapsed, end="\n")
    return acknowledged, elapsed


def _progress(label: str, sent: int, total: int | None, elapsed: float, end: str = "") -> None:
    of = f"/{total}" if total is not None else ""
    shown = f"{bar(sent, total)} " if total else ""
    rate = sent / elapsed if elapsed > 0 else 0.0
    print(f"\r{label}: {shown}{sent}{of} sent, {rate:,.0f}/s", end=end, file=sys.stderr, flush=True)


def bar(done: int, total: int, width: int = 20) -> str:
    """``[#########...........]``: how much of ``total`` is done."""
    filled = min(width, int(width * done / total)) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"
