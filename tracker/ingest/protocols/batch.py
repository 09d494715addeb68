"""``POST /ingest/batch``: many reports in the topic's own format (README, "Sending
positions"; a heartbeat with ``"kind": "heartbeat"``), as a JSON array of objects or as
NDJSON (one object per line).

Each element is judged on its own (``items``): one that is not JSON, or not an object, is
refused by itself, and the rest stand. A device's request may leave ``marker_id`` out: it
is the device's.
"""
from __future__ import annotations

from typing import Any

import orjson

from tracker.positions.model import InvalidPosition

#: Media types of NDJSON; anything else starting with "[" is a JSON array.
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")


def items(body: bytes, content_type: str) -> list[tuple[Any, Any]]:
    """(the element as sent, its decoded object or an ``InvalidPosition``), in order."""
    stripped = body.lstrip()
    if content_type not in NDJSON_TYPES and stripped.startswith(b"["):
        try:
            elements = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidPosition("not_json", "the body is not a valid JSON array") from None
        return [(element, element if isinstance(element, dict) else
                 InvalidPosition("not_object", "each element must be a JSON object")) for element in elements]
    found = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            element = orjson.loads(line)
        except orjson.JSONDecodeError:
            found.append((line, InvalidPosition("not_json", "the line is not valid JSON")))
            continue
        found.append((line, element if isinstance(element, dict) else
                      InvalidPosition("not_object", "each line must be a JSON object")))
    return found
