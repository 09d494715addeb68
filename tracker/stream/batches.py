"""Records of the batches topic: many validated fixes in one Kafka record.

A record's value is JSON: ``{"v": 1, "fixes": [fix, ...]}`` where a fix is a list in
``tracker.positions.model.FIX_FIELDS`` order followed by ``received_us``. New fields are only ever
appended to a fix, so readers take the ones they know.

A record may instead be an erase record, asking to erase a marker (``tracker history erase``):
``{"v": 1, "fixes": [], "forget": [{"marker_id", "from_us", "to_us"}]}`` (a bound of None is
open; the key keeps the name workers of earlier versions read). Readers apply it in its place
in the stream: after the fixes before it.

Heartbeats (reports without a position, ``tracker.positions.model.HEARD_FIELDS`` followed by
``received_us``) travel in records of their own, after the fixes of the same slice:
``{"v": 1, "fixes": [], "heard": [heartbeat, ...]}``. Readers of earlier versions find no
fixes in them and skip them.
"""
from __future__ import annotations

from typing import Iterator

import orjson

VERSION = 1
#: Most fixes in one record: enough that Faust's per-record cost vanishes, few enough
#: that one record stays far below the broker's limit.
MAX_FIXES = 1_000
#: A record's value stays below this many bytes (records of fixes with large attributes
#: are split further).
MAX_BYTES = 1024 * 1024


def encode(fixes: list[list], heard: list[list] = ()) -> Iterator[bytes]:
    """One record value per slice of at most ``MAX_FIXES`` fixes and ``MAX_BYTES`` bytes; then
    the heartbeats, in records of their own."""
    for start in range(0, len(fixes), MAX_FIXES):
        yield from _encode_slice("fixes", fixes[start:start + MAX_FIXES])
    for start in range(0, len(heard), MAX_FIXES):
        yield from _encode_slice("heard", heard[start:start + MAX_FIXES])


def _encode_slice(name: str, items: list[list]) -> Iterator[bytes]:
    value = orjson.dumps({"v": VERSION, "fixes": items} if name == "fixes" else
                         {"v": VERSION, "fixes": [], name: items})
    if len(value) <= MAX_BYTES or len(items) == 1:
        yield value
        return
    half = len(items) // 2
    yield from _encode_slice(name, items[:half])
    yield from _encode_slice(name, items[half:])


def decode(value: bytes) -> list[list]:
    """The fixes of one record, in the order the intake read them."""
    return orjson.loads(value)["fixes"]


def decode_record(value: bytes) -> tuple[list[list], list[dict]]:
    """The fixes of one record and what it asks to erase."""
    record = orjson.loads(value)
    return record["fixes"], record.get("forget") or []


def decode_parts(value: bytes) -> tuple[list[list], list[dict], list[list]]:
    """The fixes of one record, what it asks to erase, and its heartbeats."""
    record = orjson.loads(value)
    return record["fixes"], record.get("forget") or [], record.get("heard") or []


def encode_erase(marker_id: str, from_us: int | None, to_us: int | None) -> bytes:
    return orjson.dumps({"v": VERSION, "fixes": [], "forget": [{"marker_id": marker_id, "from_us": from_us,
                                                                "to_us": to_us}]})


def erases_fix(request: dict, time_us: int) -> bool:
    """Whether an erase record covers a fix of its marker at ``time_us``."""
    return ((request["from_us"] is None or time_us >= request["from_us"])
            and (request["to_us"] is None or time_us < request["to_us"]))
