"""history: append every valid position to Postgres ``positions``, in batches, idempotently.

Offsets are acknowledged only after ``HistoryWriter.write`` has committed the batch, and
the writer retries until it can; so a crash or a Postgres outage delays rows but never
drops them, and a replay is absorbed by ``ON CONFLICT DO NOTHING``.
"""
from __future__ import annotations

from tracker.app import app
from tracker.db import HistoryWriter
from tracker.settings import settings
from tracker.topics import valid_positions_topic

writer = HistoryWriter(settings.database_url)


@app.agent(valid_positions_topic, name="history")
async def record_history(stream):
    async for batch in stream.take(settings.history_batch_size, within=settings.history_flush_seconds):
        await writer.write(batch)
