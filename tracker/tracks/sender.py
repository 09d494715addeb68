"""Sends a timed stream of records to Kafka at the pace it asks for, showing progress."""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Iterable

from aiokafka import AIOKafkaProducer

MAX_PENDING = 10_000


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


def _progress(label: str, sent: int, total: int | None, elapsed: float, end: str = "") -> None:
    of = f"/{total}" if total is not None else ""
    shown = f"{bar(sent, total)} " if total else ""
    rate = sent / elapsed if elapsed > 0 else 0.0
    print(f"\r{label}: {shown}{sent}{of} sent, {rate:,.0f}/s", end=end, file=sys.stderr, flush=True)


def bar(done: int, total: int, width: int = 20) -> str:
    """``[#########...........]``: how much of ``total`` is done."""
    filled = min(width, int(width * done / total)) if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"
