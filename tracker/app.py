"""The Faust application. Run a worker with ``faust -A tracker.app worker -l info``.

Agents, tables and web views live in the top-level packages ``agents``, ``tables`` and
``web``; the worker discovers them when it starts.
"""
from __future__ import annotations

import faust

from tracker.settings import settings

app = faust.App(
    settings.app_id,
    broker=settings.broker,
    store=settings.store,
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replicas,
    processing_guarantee="at_least_once",
    autodiscover=["agents", "tables", "web"],
    origin="tracker",
    web_enabled=True,
    # Sends to the dead-letter and changelog topics go out in large batches: with
    # small batches every send waits for the previous batch of its partition to drain.
    producer_linger_ms=10,
    producer_max_batch_size=512 * 1024,
    producer_max_request_size=4 * 1024 * 1024,
    stream_buffer_maxsize=16384,
    # A worker that dies without leaving the group holds its partitions until this
    # timeout; Faust's default of 60 s would stall its markers for a minute.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=3.0,
)


def main() -> None:
    """``python -m tracker.app worker`` is the same as ``faust -A tracker.app worker``."""
    app.main()


if __name__ == "__main__":
    main()
