"""The shape of a ``gps.positions.dlq`` record."""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from tracker.position import InvalidPosition, format_time


def dead_letter(
    payload: bytes | None,
    error: InvalidPosition,
    rejected_at: datetime,
    topic: str,
    partition: int,
    offset: int,
) -> dict[str, Any]:
    """The original bytes (as text when they are UTF-8, else base64), why, and where from."""
    payload = payload or b""
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    return {
        "reason": error.reason,
        "code": error.code,
        "payload": text,
        "payload_encoding": encoding,
        "rejected_at": format_time(rejected_at),
        "source": {"topic": topic, "partition": partition, "offset": offset},
    }
