"""``GET /metrics``: Prometheus text format, Faust's own sensor and ``tracker.metrics``."""
from __future__ import annotations

from faust.sensors.prometheus import setup_prometheus_sensors

import tracker.metrics  # noqa: F401 - registers the tracker's metrics
from tracker.app import app

setup_prometheus_sensors(app, pattern="/metrics", name_prefix="faust")
