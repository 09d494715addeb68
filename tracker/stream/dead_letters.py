"""The shape of a ``gps.positions.dlq`` record."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from tracker.positions.model import InvalidPosition, format_time

#: The most bytes of a rejected record a dead letter carries (64 KiB).
MAX_PAYLOAD_BYTES = 64 * 1024


def dead_letter(
    payload: bytes | None,
    error: InvalidPosition,
    rejected_at: datetime,
    topic: str,
    partition: int,
    offset: int,
) -> dict[str, Any]:
    """The original bytes (as text when they are UTF-8, else base64), why, and where from.

    A payload over ``MAX_PAYLOAD_BYTES`` is cut to that size, with its full length and
    SHA-256 beside it: escaped as JSON it could otherwise outgrow the broker's limit on one
    record, and a dead letter that cannot be written would hold up its partition."""
    payload = payload or b""
    letter: dict[str, Any] = {"reason": error.reason, "code": error.code}
    kept = payload
    if len(payload) > MAX_PAYLOAD_BYTES:
        kept = payload[:MAX_PAYLOAD_BYTES]
        letter.update(payload_truncated=True, payload_bytes=len(payload),
                      payload_sha256=hashlib.sha256(payload).hexdigest())
    try:
        text, encoding = _utf8(kept, truncated=kept is not payload), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    letter.update(payload=text, payload_encoding=encoding, rejected_at=format_time(rejected_at),
                  source={"topic": topic, "partition": partition, "offset": offset})
    return letter


def _utf8(data: bytes, truncated: bool) -> str:
    """``data`` as UTF-8; a cut may have split the last character, which is then dropped."""
    if truncated:
        for cut in range(4):
            try:
                return data[:len(data) - cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
    return data.decode("utf-8")
