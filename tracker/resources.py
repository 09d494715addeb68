"""The services a worker shares between its agents, views and timers: the one list of them.

Each is started with the worker, before Faust's own components (``tracker.app.worker_service``),
and stopped after its agents. An agent or view takes what it needs from here and never from
another agent's module, so that turning a stage off never takes away what another uses.

- ``database``: the Postgres pool.
- ``worker_producer``: the Kafka producer of the intake, the stages and the sinks.
- ``batches_offsets``: the batches topic's committed and end offsets, records read again
  (``tracker.stream.continuity``).
- ``agent_commits``: what the ``latest`` agent processed, committed by itself, and the lease
  that lets this worker answer for its partitions (``tracker.stream.commits``).
- ``readiness``: the partitions of ``latest`` this worker may answer reads for
  (``tracker.stream.ownership``).
- ``partition_guards``: the partitions of the batches topic, and the changelog partitions of
  a recovery, that Faust's consumer stopped delivering, fetched again
  (``tracker.stream.partition_guard``).
- ``geofences``: every geofence, reloaded from Postgres, for the events stage and the
  journeys sink (the geofences a trip starts and ends in); started when either runs.
- ``live_hub``: every marker's newest position from the ``latest`` changelog, for the live
  feed, the OwnTracks friends and the ingestion answers.

An ingest-only worker (``TRACKER_ROLE=ingest``) starts the pool, the producer and the live
hub only.
"""
from __future__ import annotations

from pathlib import Path

from tracker.app import app, worker_service
from tracker.geofences.cache import GeofenceCache
from tracker.positions.live_hub import LiveHub
from tracker.settings import settings
from tracker.storage.pool import Database
from tracker.stream.commits import AgentCommits
from tracker.stream.continuity import BrokerOffsets
from tracker.stream.ownership import Readiness
from tracker.stream.partition_guard import PartitionGuards
from tracker.stream.producer import WorkerProducer
from tracker.stream.topics import changelog_topic

database = worker_service(Database(settings.database_url))
worker_producer = worker_service(WorkerProducer())
batches_offsets = BrokerOffsets(settings, settings.app_id, settings.batches_topic)
#: How far the ``latest`` agent got (``agents/latest.py`` reports, the stages' timers ask).
agent_commits = AgentCommits(app, settings.batches_topic, batches_offsets.committed, batches_offsets.end_offsets)
partition_guards = PartitionGuards(app, settings.batches_topic, batches_offsets, agent_commits)
#: The partitions of ``latest`` this worker may answer reads for (``tracker.stream.ownership``).
readiness = Readiness(app, settings.batches_topic, agent_commits)
geofences = GeofenceCache(database.connection, snapshot=lambda: Path(app.conf.datadir) / "geofences.json")
if settings.runs_stages:  # an ingest-only worker (TRACKER_ROLE=ingest) reads no stream of the pipeline
    worker_service(batches_offsets)
    worker_service(agent_commits)
    app.on_partitions_revoked.connect(lambda sender, revoked, **kwargs: agent_commits.on_revoked(revoked))
    worker_service(partition_guards)
    if settings.events_enabled or settings.journeys_enabled:
        worker_service(geofences)

live_hub = worker_service(LiveHub(settings, changelog_topic("latest"), settings.live_interval))
