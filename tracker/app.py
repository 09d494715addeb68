"""The Faust application. Run a worker with ``faust -A tracker.app worker -l info``.

Agents, services, tables and web views live in the top-level packages ``agents``,
``tables`` and ``web``; the worker discovers them when it starts. With
``TRACKER_ROLE=ingest`` a worker runs no stage: the HTTP ingestion and the API only, in
Faust's producer-only mode (its reads of ``latest`` come from the live hub).
"""
from __future__ import annotations

import gc
import logging
import os
import sys

import faust
from faust.web import drivers as web_drivers

from tracker.settings import settings

log = logging.getLogger(__name__)

#: Exit status of a worker that stopped itself rather than acknowledge unfinished work.
EXIT_FATAL = 70
#: Exit status of a worker that refuses to start with the installed packages.
EXIT_CONFIG = 78

try:  # checks, at import, that faust-streaming and aiokafka are the releases it was written for
    from tracker.stream import faust_internals

    PATCHED = faust_internals.install()
except RuntimeError as exc:  # faust_internals.IncompatibleInternals
    sys.stderr.write(f"tracker: {exc}\n")
    sys.exit(EXIT_CONFIG)

#: The web driver of the app's ``web`` setting: Faust's aiohttp driver behind the listener's
#: guards (timeouts, connections per address: ``web.guard``).
web_drivers.DRIVERS.aliases["tracker"] = "web.guard:GuardedWeb"


class TrackerApp(faust.App):
    def on_webserver_init(self, web) -> None:
        from web.errors import out_of_range
        from web.headers import add_security_headers

        super().on_webserver_init(web)
        # Faust may set the server up more than once: each hook once.
        if add_security_headers not in web.web_app.on_response_prepare:
            web.web_app.on_response_prepare.append(add_security_headers)
        if out_of_range not in web.web_app.middlewares:
            web.web_app.middlewares.append(out_of_range)


app = TrackerApp(
    settings.app_id,
    broker=settings.broker,
    store=settings.store,
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replicas,
    processing_guarantee="at_least_once",
    # An ingest-only worker (TRACKER_ROLE=ingest) serves HTTP only: no agent is imported.
    autodiscover=["agents", "tables", "web"] if settings.runs_stages else ["tables", "web"],
    origin="tracker",
    web_enabled=True,
    web="tracker://",
    # Faust's own views (/router/, /table/..., /stats/, /graph/) would show any table row
    # and the cluster's layout to anyone: off. The tracker's views check who is asking.
    web_router_enabled=False,
    web_tables_enabled=False,
    web_stats_enabled=False,
    web_graph_enabled=False,
    producer_linger_ms=2,
    producer_max_batch_size=512 * 1024,
    producer_max_request_size=4 * 1024 * 1024,
    # Faust consumes only the batches topic (up to a thousand fixes per record) and the
    # changelog: a few records buffered per partition are plenty, and large fetches pay.
    stream_buffer_maxsize=64,
    consumer_max_fetch_size=4 * 1024 * 1024,
    # A worker that dies without leaving the group holds its partitions until this
    # timeout; Faust's default of 60 s would stall its markers for a minute. Members
    # learn of a rebalance at their next heartbeat.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    # With a stable id per worker (static membership) a restarted worker gets its
    # partitions back at once instead of after the session timeout.
    consumer_group_instance_id=settings.worker_id,
    table_standby_replicas=settings.standby_replicas,
)


if not settings.runs_stages:
    # Faust's producer-only mode: the web server and a producer, no consumer, agents or
    # table recovery. The worker joins no consumer group, so it owns no partition.
    app.producer_only = True


class GarbageCollection(faust.Service):
    """The worker makes millions of short-lived objects (fixes, records, rows) that reference
    counting frees; the cycle collector's defaults (a pass every 700 allocations, full
    passes over every object) cost it pauses of up to a tenth of a second. A young pass
    comes after 50,000 more containers (~15 ms); the middle generation, where a drain's
    buffered fixes land, is looked at every 100 young passes (every 20 it cost ~4 % of a
    drain's CPU, for cycles that are rare). Objects that exist once the worker has started
    are frozen out of the collector's passes."""

    THRESHOLDS = (50_000, 100, 100)

    async def on_start(self) -> None:
        gc.set_threshold(*self.THRESHOLDS)
        gc.freeze()


class PatchReport(faust.Service):
    """Says once, when the worker starts, which of faust-streaming's functions it runs patched."""

    async def on_start(self) -> None:
        log.info("faust-streaming %s runs with %d patches (tracker.stream.faust_internals): %s",
                 faust_internals.VERSIONS["faust-streaming"], len(faust_internals.PATCHES),
                 "; ".join(f"{patch.qualname}: {patch.why}" for patch in faust_internals.PATCHES))


def worker_service(service):
    """Run ``service`` in every worker: started before Faust's own components (so before the
    tables are recovered, which ``@app.service`` waits for) and stopped after them. For the
    stages and resources that need no table: they start reading at once."""
    return app.add_dependency(service)


def fatal(message: str) -> None:
    """Stop the worker at once, committing nothing: for a state in which acknowledging the
    records in hand would lose them. A supervisor (Docker, systemd) starts it again, and
    the records are read again from the last commit."""
    log.critical("%s; exiting with status %d", message, EXIT_FATAL)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(EXIT_FATAL)


worker_service(GarbageCollection())
worker_service(PatchReport())


def main() -> None:
    """``python -m tracker.app worker`` is the same as ``faust -A tracker.app worker``."""
    app.main()


if __name__ == "__main__":
    main()
