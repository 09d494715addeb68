"""Records of the batches topic: many validated fixes in one Kafka record.

A record's value is JSON: ``{"v": 1, "fixes": [fix, ...]}`` where a fix is a list in
``tracker.position.FIX_FIELDS`` order followed by ``received_us``. New fields are only ever
appended to a fix, so readers take the ones they know.
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


def encode(fixes: list[list]) -> Iterator[bytes]:
    """One record value per slice of at most ``MAX_FIXES`` fixes and ``MAX_BYTES`` bytes."""
    for start in range(0, len(fixes), MAX_FIXES):
        yield from _encode_slice(fixes[start:start + MAX_FIXES])


def _encode_slice(fixes: list[list]) -> Iterator[bytes]:
    value = orjson.dumps({"v": VERSION, "fixes": fixes})
    if len(value) <= MAX_BYTES or len(fixes) == 1:
        yield value
        return
    half = len(fixes) // 2
    yield from _encode_slice(fixes[:half])
    yield from _encode_slice(fixes[half:])


def decode(value: bytes) -> list[list]:
    """The fixes of one record, in the order the intake read them."""
    return orjson.loads(value)["fixes"]
