"""The Kafka topics. All share one partition count, so partition p of each belongs together.

- ``gps.positions``: what devices and tools send, untrusted JSON bytes keyed by marker id.
  The intake (``agents/intake.py``) reads it with a consumer group of its own.
- ``gps.positions.dlq``: rejected records with the reason (written by the intake).
- ``<app id>-positions-batches``: validated fixes, one record per slice of a source
  partition, written to the same partition number. The ``latest`` agent (Faust's consumer
  group, so partition p lands on the worker that owns table partition p) and the history
  sink (a consumer group of its own) read it.
- ``gps.events``: what happened to markers (``tracker.events.model``), JSON keyed by marker id,
  written by the events agent (``agents/events.py``) on the partition of its marker.
- ``gps.events.dlq``: webhook deliveries that failed every attempt, with the reason.
- ``gps.journeys``: finished trips and stops, spikes, and days to recompute
  (``tracker.journeys.records``), JSON keyed by marker id, written by the journeys stage
  (``agents/journeys.py``) on the partition of its marker.
- ``<app id>-<table>-changelog``: the tables' changelogs (``tables/``), compacted.

Every topic but the compacted changelogs keeps its records for ``TRACKER_TOPIC_RETENTION_HOURS``.
"""
from __future__ import annotations

from tracker.app import app
from tracker.stream.producer import MAX_REQUEST_BYTES
from tracker.settings import settings

#: The broker takes records of the batches topic as large as the worker's producer sends
#: (the intake stays far below: ``tracker.stream.batches.MAX_BYTES``).
BATCHES_CONFIG = {"max.message.bytes": str(MAX_REQUEST_BYTES)}
#: How long a topic that is not a compacted changelog keeps a record.
RETENTION_CONFIG = {"retention.ms": str(round(settings.topic_retention_hours * 3_600_000))}


def _raw_topic(name: str, config: dict[str, str] | None = None, acks: bool = True):
    """Keys and values as bytes: nothing can fail to deserialize before our code sees it."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=settings.topic_partitions, config={**RETENTION_CONFIG, **(config or {})},
                     internal=True, acks=acks)


positions_topic = _raw_topic(settings.topic)
#: Faust does not track the batches topic's offsets: the ``latest`` agent commits what it
#: processed itself (``tracker.stream.commits``).
batches_topic = _raw_topic(settings.batches_topic, BATCHES_CONFIG, acks=False)
events_topic = _raw_topic(settings.events_topic)
journeys_topic = _raw_topic(settings.journeys_topic)

#: The tables keyed by marker id (``tables.changelog.marker_table``), and their changelogs'
#: config: compacted, in segments small enough to be compacted while the stream runs, so
#: recovering a partition reads little more than one record per key.
TABLES = ("latest", "events-state", "journeys-state")
CHANGELOG_CONFIG = {"segment.bytes": str(16 * 1024 * 1024)}


def changelog_topic(table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def _with_retention(topics: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``RETENTION_CONFIG`` added to each topic's config, unless it is compacted only (the
    changelogs hold each key's last value for good: a table is rebuilt from them)."""
    return {name: config if config.get("cleanup.policy") == "compact" else {**RETENTION_CONFIG, **config}
            for name, config in topics.items()}


#: name -> topic config, for creating the topics before the worker's own consumers start.
#: The changelogs are among them: Faust's assignor leaves out a topic that its metadata
#: does not show yet, and a table whose changelog was left out stays unassigned (its reads
#: fail) until the next rebalance; created here first, they are there when Faust joins.
#: Every one but the compacted changelogs gets ``RETENTION_CONFIG`` (``_with_retention``).
DECLARED = _with_retention({
    **{changelog_topic(table): {"cleanup.policy": "compact", **CHANGELOG_CONFIG} for table in TABLES},
    settings.topic: {},
    settings.dlq_topic: {},
    settings.batches_topic: BATCHES_CONFIG,
    settings.events_topic: {},
    settings.events_dlq_topic: {},
    settings.journeys_topic: {},
})
