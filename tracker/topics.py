"""The Kafka topics. All are keyed by marker id (raw UTF-8 bytes) and share one partition count.

- ``gps.positions``: what devices and tools send, untrusted JSON bytes; the validate,
  latest and history agents all consume it.
- ``gps.positions.dlq``: rejected records with the reason.
"""
from __future__ import annotations

from tracker.app import app
from tracker.settings import settings

positions_topic = app.topic(
    settings.topic,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.topic_partitions,
    internal=True,
)

dead_letter_topic = app.topic(
    settings.dlq_topic,
    key_type=bytes,
    key_serializer="raw",
    value_serializer="json",
    partitions=settings.topic_partitions,
    internal=True,
)
