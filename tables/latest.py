"""``latest``: each marker's newest position, keyed by marker id as raw bytes.

Values are position dicts (``Position.to_dict()`` plus ``received_at``). The table is
co-partitioned with ``gps.positions``, so the worker that owns a marker's partition of the
topic owns its row.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from tracker.app import app
from tracker.settings import settings

latest = app.Table(
    "latest",
    key_type=bytes,
    partitions=settings.topic_partitions,
    help="Newest position of every marker.",
)


def is_newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Forward-only rule: a fix replaces the stored one only if its fix time is later."""
    if current is None:
        return True
    return datetime.fromisoformat(candidate["time"]) > datetime.fromisoformat(current["time"])
