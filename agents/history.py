"""history: append every valid position to Postgres ``positions``, in batches, idempotently.

Offsets are acknowledged only after ``HistoryWriter.write`` has committed the batch, and
the writer retries until it can; so a crash or a Postgres outage delays rows but never
drops them, and a replay is absorbed by ``ON CONFLICT DO NOTHING``.
"""
from __future__ import annotations

from tracker.app import app
from tracker.db import HistoryWriter
from tracker.intake import read
from tracker.position import InvalidPosition
from tracker.settings import settings
from tracker.topics import positions_topic

writer = HistoryWriter(settings.database_url)


@app.agent(positions_topic, name="history")
async def record_history(stream):
    async for batch in stream.take_events(settings.history_batch_size, within=settings.history_flush_seconds):
        accepted = []
        for event in batch:
            try:
                accepted.append(read(event.message))
            except InvalidPosition:
                continue  # the validate agent reports it
        await writer.write(accepted)
