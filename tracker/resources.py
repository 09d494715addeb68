"""The worker's shared resources, each a service started with the worker and stopped after
its agents: the Postgres pool, the Kafka producer, and the clients that read the batches
topic's committed offsets and skipped records (``tracker.stream.continuity``)."""
from __future__ import annotations

from tracker.app import worker_service
from tracker.stream.continuity import AgentProgress, BrokerOffsets
from tracker.storage.db import Database
from tracker.stream.producer import WorkerProducer
from tracker.settings import settings

database = worker_service(Database(settings.database_url))
worker_producer = worker_service(WorkerProducer())
batches_offsets = worker_service(BrokerOffsets(settings, settings.app_id, settings.batches_topic))
#: How far the ``latest`` agent got (``agents/latest.py`` reports, the stages' timers ask).
agent_progress = AgentProgress(batches_offsets)
