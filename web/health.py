"""``GET /health``: is this worker ready? Tables recovered and Kafka reachable.

Postgres is checked and reported too, but a worker whose Postgres is down still serves
the live path (positions, the table, the map): history waits in Kafka meanwhile, so the
worker answers 200 with ``"state": "degraded"``. ``readiness`` (tables only) also guards
the views that read ``latest``. An ingest-only worker (``TRACKER_ROLE=ingest``) is ready
once its producer has started.
"""
from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from tracker.app import app
from tracker.resources import database, live_hub, worker_producer
from tracker.settings import settings

CHECK_TIMEOUT = 2.0
CACHE_SECONDS = 2.0

_cache: dict[str, tuple[float, bool]] = {}


def readiness() -> tuple[bool, str]:
    if app.should_stop:  # shutting down: its tables are closing, let another worker answer
        return False, "stopping"
    if not settings.runs_stages:
        return _ingest_readiness()
    from agents.history import history
    from agents.intake import intake

    if not app.tables.recovery.completed.is_set():
        return False, "recovering tables"
    if app.rebalancing:
        return False, "rebalancing"
    if not (intake.joined.is_set() and history.joined.is_set()):
        return False, "joining the intake and history groups"
    return True, "ready"


def _ingest_readiness() -> tuple[bool, str]:
    """An ingest-only worker is ready once its producer is: it takes reports at once (its
    reads wait for the live hub, and say so with 503 until then)."""
    if worker_producer.send_many is None:  # set once the producer has started
        return False, "starting the producer"
    return True, "ready (ingest only)" if live_hub.loaded.is_set() else "ready (ingest only); reading the markers"


async def _kafka_reachable() -> bool:
    """A TCP connection to any bootstrap server."""
    for server in settings.bootstrap_servers.split(","):
        parts = urlsplit("//" + server)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port or 9092), CHECK_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            continue
        writer.close()
        return True
    return False


async def _postgres_reachable() -> bool:
    async def ping() -> None:
        async with database.connection(timeout=CHECK_TIMEOUT) as conn:
            await conn.execute("SELECT 1")

    try:
        await asyncio.wait_for(ping(), CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure means unreachable
        return False
    return True


async def _cached(name: str, check) -> bool:
    now = time.monotonic()
    hit = _cache.get(name)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    result = await check()
    _cache[name] = (now, result)
    return result


@app.page("/health")
async def health(web, request):
    tables_ready, state = readiness()
    kafka, postgres = await asyncio.gather(
        _cached("kafka", _kafka_reachable), _cached("postgres", _postgres_reachable))
    ready = tables_ready and kafka
    if tables_ready and not kafka:
        state = "kafka unreachable"
    elif ready and not postgres:
        state = "degraded: postgres unreachable, history is waiting in Kafka"
    if settings.runs_stages:
        from agents.history import history

        partitions = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == settings.batches_topic)
        buffered = history.buffered
    else:
        partitions, buffered = [], 0
    return web.json(
        {"ready": ready, "state": state, "checks": {"tables": tables_ready, "kafka": kafka, "postgres": postgres},
         "partitions": partitions, "history_buffered": buffered, "role": settings.role},
        status=200 if ready else 503,
    )
