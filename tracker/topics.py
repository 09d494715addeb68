"""The Kafka topics. All share one partition count, so partition p of each belongs together.

- ``gps.positions``: what devices and tools send, untrusted JSON bytes keyed by marker id.
  The intake (``agents/intake.py``) reads it with a consumer group of its own.
- ``gps.positions.dlq``: rejected records with the reason (written by the intake).
- ``<app id>-positions-batches``: validated fixes, one record per slice of a source
  partition, written to the same partition number. The ``latest`` agent (Faust's consumer
  group, so partition p lands on the worker that owns table partition p) and the history
  sink (a consumer group of its own) read it.
- ``gps.events``: what happened to markers (``tracker.events``), JSON keyed by marker id,
  written by the events agent (``agents/events.py``) on the partition of its marker.
- ``gps.events.dlq``: webhook deliveries that failed every attempt, with the reason.
- ``<app id>-<table>-changelog``: the tables' changelogs (``tables/``), compacted.
"""
from __future__ import annotations

from tracker.app import app
from tracker.kafka import MAX_REQUEST_BYTES
from tracker.settings import settings

#: The broker takes records of the batches topic as large as the worker's producer sends
#: (the intake stays far below: ``tracker.batches.MAX_BYTES``).
BATCHES_CONFIG = {"max.message.bytes": str(MAX_REQUEST_BYTES)}


def _raw_topic(name: str, config: dict[str, str] | None = None):
    """Keys and values as bytes: nothing can fail to deserialize before our code sees it."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=settings.topic_partitions, config=config, internal=True)


positions_topic = _raw_topic(settings.topic)
batches_topic = _raw_topic(settings.batches_topic, BATCHES_CONFIG)
events_topic = _raw_topic(settings.events_topic)

#: The tables keyed by marker id (``tables.changelog.marker_table``), and their changelogs'
#: config: compacted, in segments small enough to be compacted while the stream runs, so
#: recovering a partition reads little more than one record per key.
TABLES = ("latest", "events-state")
CHANGELOG_CONFIG = {"segment.bytes": str(16 * 1024 * 1024)}


def changelog_topic(table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


#: name -> topic config, for creating the topics before the worker's own consumers start.
#: The changelogs are among them: Faust's assignor leaves out a topic that its metadata
#: does not show yet, and a table whose changelog was left out stays unassigned (its reads
#: fail) until the next rebalance; created here first, they are there when Faust joins.
DECLARED = {
    **{changelog_topic(table): {"cleanup.policy": "compact", **CHANGELOG_CONFIG} for table in TABLES},
    settings.topic: {},
    settings.dlq_topic: {},
    settings.batches_topic: BATCHES_CONFIG,
    settings.events_topic: {},
    settings.events_dlq_topic: {},
}
