"""``GET /health``: 200 when this worker is ready to answer, 503 while it starts or rebalances."""
from __future__ import annotations

from tracker.app import app
from tracker.settings import settings


def readiness() -> tuple[bool, str]:
    if not app.tables.recovery.completed.is_set():
        return False, "recovering tables"
    if app.rebalancing:
        return False, "rebalancing"
    return True, "ready"


@app.page("/health")
async def health(web, request):
    ready, state = readiness()
    partitions = sorted(
        tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic
    )
    return web.json(
        {"ready": ready, "state": state, "partitions": partitions}, status=200 if ready else 503
    )
