"""``GET /metrics``: Prometheus text format, Faust's own sensor and ``tracker.metrics``.

Only for an admin, or for a scraper with ``Authorization: Bearer TRACKER_METRICS_TOKEN``.
"""
from __future__ import annotations

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

import tracker.metrics  # noqa: F401 - registers the tracker's metrics
from tracker.app import app
from tracker.accounts.credentials import same_secret
from tracker.settings import settings
from web.auth import bearer_token, require_admin

app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(REGISTRY, "faust"))


@app.page("/metrics")
async def metrics(web, request):
    if not same_secret(bearer_token(request.headers.get("Authorization", "")), settings.metrics_token):
        await require_admin(request)
    return web.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
