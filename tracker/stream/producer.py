"""The project's Kafka producers and how records are sent.

- ``positions_producer``: the producer of the command line, the MQTT bridge, tests and
  benchmarks: acknowledged by every in-sync replica, batching for throughput.
- ``stream_producer``: the worker's, the same with a shorter linger and larger requests.
- ``batch_sender``: many records to one partition in as few requests as fit, at a fraction
  of the cost of one ``send`` per record.
- ``WorkerProducer``: the worker's producer as a service (``tracker.resources``).
- ``started``: a started producer for a command, its topic created first, or
  ``KafkaUnavailable`` in one line.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust import Service

from tracker.settings import Settings, settings
from tracker.stream.admin import ensure_topic

#: Largest request the worker's producer sends: a batch record of the batches topic, or
#: a batch of changelog records.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class KafkaUnavailable(Exception):
    """The broker cannot be reached; the message says so in one line."""


def _producer(config: Settings, **options) -> AIOKafkaProducer:
    """Every send acknowledged by all in-sync replicas, uncompressed, batched as ``options`` say."""
    return AIOKafkaProducer(bootstrap_servers=config.bootstrap_servers, acks="all", compression_type=None, **options)


def positions_producer(config: Settings) -> AIOKafkaProducer:
    """The producer of commands, the MQTT bridge, tests and benchmarks: batches for throughput."""
    return _producer(config, linger_ms=10, max_batch_size=256 * 1024)


def stream_producer(config: Settings) -> AIOKafkaProducer:
    """The producer of the intake and of the ``latest`` agent: large requests, a short linger
    so the live path stays fast."""
    return _producer(config, linger_ms=2, max_batch_size=1024 * 1024, max_request_size=MAX_REQUEST_BYTES)


def batch_sender(producer: AIOKafkaProducer):
    """``send_many(topic, partition, records)``: many (key, value) records to one partition in
    as few requests as fit; returns the futures of those requests (``RecordMetadata`` of
    each request's first record) and the number of records in each."""

    async def send(topic: str, partition: int, records: list[tuple[bytes, bytes]]) -> list[tuple[asyncio.Future, int]]:
        sent = []
        batch, count = producer.create_batch(), 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                if not count:
                    raise ValueError(f"a record of {len(value)} bytes is larger than a producer batch")
                sent.append((await producer.send_batch(batch, topic, partition=partition), count))
                batch, count = producer.create_batch(), 0
                batch.append(key=key, value=value, timestamp=None)
            count += 1
        if count:
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
        return sent

    return send


@asynccontextmanager
async def started(config: Settings, topic: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started ``positions_producer``, ``topic`` created first if missing; stopped (after
    sending what it holds) when the block ends."""
    producer = positions_producer(config)
    try:
        await ensure_topic(config, topic)
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise KafkaUnavailable(f"cannot reach Kafka at {config.bootstrap_servers}: {exc}") from None
    try:
        yield producer
    finally:
        await producer.stop()


class WorkerProducer(Service):
    """The worker's ``stream_producer`` and its ``send_many``, for the intake and the stages."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.producer = None
        self.send_many = None
        self._ready = asyncio.Event()

    async def on_start(self) -> None:
        self.producer = stream_producer(settings)
        await self.producer.start()
        self.send_many = batch_sender(self.producer)
        self._ready.set()

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()  # sends what is queued first

    async def ready(self) -> "WorkerProducer":
        await self._ready.wait()
        return self
