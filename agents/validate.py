"""validate: every record on ``gps.positions`` that is not a valid position goes to the DLQ.

No input can crash this agent: the topic is consumed as raw bytes and each record is judged
by ``tracker.intake.read``. A bad record is sent to ``gps.positions.dlq`` with its reason.
A valid record keyed by something other than its marker id is re-sent under its marker
id, so that it reaches the partition that owns the marker.
"""
from __future__ import annotations

from datetime import datetime, timezone

from tracker.app import app
from tracker.dead_letters import dead_letter
from tracker.intake import read
from tracker.metrics import DLQ_RECORDS, POSITIONS_ACCEPTED, POSITIONS_REJECTED
from tracker.position import InvalidPosition
from tracker.topics import dead_letter_topic, positions_topic


@app.agent(positions_topic, name="validate")
async def validate(stream):
    async for event in stream.events():
        message = event.message
        try:
            accepted = read(message)
        except InvalidPosition as exc:
            rejected_at = datetime.now(timezone.utc)
            record = dead_letter(message.value, exc, rejected_at, message.topic, message.partition, message.offset)
            await dead_letter_topic.send(key=message.key, value=record)
            POSITIONS_REJECTED.labels(exc.code).inc()
            DLQ_RECORDS.inc()
            continue
        POSITIONS_ACCEPTED.inc()
        if not accepted.well_keyed:
            await positions_topic.send(key=accepted.position.marker_id.encode(), value=message.value)
