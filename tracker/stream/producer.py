"""The worker's own Kafka producer, a Faust service shared by the intake and the ``latest``
agent: it batches records per partition (``send_many``) at a fraction of the cost of one
``send`` per record."""
from __future__ import annotations

import asyncio

from faust import Service

from tracker.stream.kafka import batch_sender, stream_producer
from tracker.settings import settings


class WorkerProducer(Service):
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

