"""validate: every raw record on ``gps.positions`` becomes a valid position or a DLQ record.

No input can crash this agent: the topic is consumed as raw bytes and each record is
checked by ``tracker.position.parse_position``. Valid positions are re-keyed by their
marker id and sent to ``gps.positions.valid``; the rest go to ``gps.positions.dlq``.
"""
from __future__ import annotations

from datetime import datetime, timezone

from tracker.app import app
from tracker.dead_letters import dead_letter
from tracker.position import InvalidPosition, format_time, parse_position
from tracker.topics import dead_letter_topic, positions_topic, valid_positions_topic


@app.agent(positions_topic, name="validate")
async def validate(stream):
    async for event in stream.events():
        message = event.message
        now = datetime.now(timezone.utc)
        try:
            position = parse_position(message.value if message.value is not None else b"", now=now)
        except InvalidPosition as exc:
            record = dead_letter(message.value, exc, now, message.topic, message.partition, message.offset)
            await dead_letter_topic.send(key=message.key, value=record)
            continue
        canonical = position.to_dict()
        canonical["received_at"] = format_time(now)
        await valid_positions_topic.send(key=position.marker_id.encode(), value=canonical)
