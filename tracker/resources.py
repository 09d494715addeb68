"""The worker's shared resources, each a service started with the worker and stopped after
its agents: the Postgres pool and the Kafka producer."""
from __future__ import annotations

from tracker.app import worker_service
from tracker.db import Database
from tracker.producer import WorkerProducer
from tracker.settings import settings

database = worker_service(Database(settings.database_url))
worker_producer = worker_service(WorkerProducer())
