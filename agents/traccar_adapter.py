"""traccar: positions a Traccar server forwards to Kafka (``forward.type=kafka``), read from
``TRACKER_TRACCAR_TOPIC`` (off when unset) and sent on to ``gps.positions`` under their
marker id, by the same converter as ``POST /ingest/traccar`` (``tracker/ingest/protocols/traccar.py``).

Traccar keys its records by its own numeric device id; the marker id is the device's
``uniqueId`` in the value. A record that is not a position (not JSON, no uniqueId, out of
range...) goes to ``gps.positions.dlq`` with its reason; one without a GPS fix
(``valid: false``) is counted and sent on as a heartbeat (it keeps the tracker alive). A consumer group of its own
(``<app id>-traccar``); a slice's offsets are committed once every send of it is
acknowledged (at least once: ``latest`` and the history ignore what they already have).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import orjson
from aiokafka import TopicPartition

from agents.intake import count_dead_letter
from tracker.app import worker_service
from tracker.stream.consumer import GroupConsumer
from tracker.stream.dead_letters import dead_letter
from tracker.stream.admin import ensure_topics
from tracker.metrics import NO_FIX, POSITIONS_REJECTED
from tracker.positions.model import InvalidPosition, micros_of, parse_report
from tracker.ingest.protocols import traccar
from tracker.resources import worker_producer
from tracker.settings import settings

log = logging.getLogger(__name__)


def convert(value: bytes | None, now_us: int) -> tuple[str, dict]:
    """A record's value as a validated ``gps.positions`` record and its marker id; ``InvalidPosition``."""
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        raise InvalidPosition("not_json", "the record is not valid JSON") from None
    record = traccar.convert(body)
    _, item = parse_report(record, now_us)
    return item[0], record


class TraccarAdapter(GroupConsumer):
    name = "traccar"

    def __init__(self, topic: str, **kwargs) -> None:
        super().__init__(settings, topic, f"{settings.app_id}-traccar", **kwargs)

    async def on_start(self) -> None:
        await ensure_topics(settings, {self.topic: {}})  # so the group can join before Traccar's first send
        await worker_producer.ready()
        await super().on_start()

    async def handle(self, tp: TopicPartition, records: list) -> None:
        epoch = self.epoch(tp)  # before any await: a rewind meanwhile must leave this slice behind
        producer, sends, rejected_at = worker_producer.producer, [], datetime.now(timezone.utc)
        now_us = micros_of(rejected_at)
        for record in records:
            try:
                marker_id, converted = convert(record.value, now_us)
            except InvalidPosition as error:
                letter = dead_letter(record.value, error, rejected_at, record.topic, record.partition, record.offset)
                sent = await producer.send(settings.dlq_topic, key=record.key, value=orjson.dumps(letter))
                sent.add_done_callback(count_dead_letter)
                sends.append(sent)
                POSITIONS_REJECTED.labels(error.code).inc()
                continue
            if not traccar.has_fix(converted):
                NO_FIX.labels(traccar.SOURCE).inc()
            sends.append(await producer.send(settings.topic, key=marker_id.encode(), value=orjson.dumps(converted)))
        try:
            await asyncio.gather(*sends)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the slice is read again
            log.warning("traccar: a send for %s[%d] failed: %r", tp.topic, tp.partition, exc)
            self.rewind(tp, epoch)
            return
        self.done(tp, epoch, records[0].offset, records[-1].offset + 1)


adapter = worker_service(TraccarAdapter(settings.traccar_topic)) if settings.traccar_topic else None
