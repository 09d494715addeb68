"""A report's bytes read at the speed of the stream: one schema decode for the common case,
the rules of ``tracker.positions.model`` for everything else.

``read_report`` gives exactly what ``parse_report(decode_object(raw), now_us)`` gives, a
fix or a heartbeat or the same ``InvalidPosition``, in well under a microsecond for the
usual record: ASCII bytes of a JSON object of known fields only, without ``kind``, with
flat ``attributes`` if any, a valid marker id, coordinates and optional numbers in range
(msgspec checks the types and ranges while it decodes, with the bounds of
``OPTIONAL_RANGES``) and an integer epoch that is not in the future. Any other record,
including every one the decode refuses, goes through the reference rules, which say why a
record is refused. The common case is kept that narrow, and every field is decoded to a type that leaves nothing
unchecked (a number too large for a float is refused even in a field that is then ignored
or given again later), because a record that orjson refuses must never pass here.
"""
from __future__ import annotations

import sys
from typing import Annotated, Any, Optional, Union

import msgspec

from tracker.positions import model
from tracker.positions.model import OPTIONAL_RANGES, decode_object, parse_report


def _bounded(low: float, high: float) -> Any:
    return Annotated[float, msgspec.Meta(ge=low, le=high)]


_FINITE = _bounded(-sys.float_info.max, sys.float_info.max)
#: Integers that orjson reads as integers too (it reads those beyond 64 bits as floats).
_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


#: The common case of a report, field for field (``kind`` only to see that it is absent).
_Report = msgspec.defstruct("_Report", [
    ("marker_id", str),
    ("time", Union[int, _FINITE, str]),
    ("lat", _bounded(-90.0, 90.0)),
    ("lon", _bounded(-180.0, 180.0)),
    *[(name, Optional[_bounded(low, high)], None) for name, (low, high) in OPTIONAL_RANGES.items()],
    ("source", Optional[str], None),
    ("attributes", Optional[dict[str, Union[str, _INT64, _FINITE, bool, None]]], None),
    ("kind", Optional[str], None),
], forbid_unknown_fields=True, gc=False)
_decode = msgspec.json.Decoder(_Report).decode
_NOT_COMMON = (msgspec.DecodeError, msgspec.ValidationError)
_MARKER_ID_MATCH = model.MARKER_ID_PATTERN.fullmatch
_MAX_TIME_MS = model.MAX_TIME_US // 1_000
_MILLIS_ABOVE = model.EPOCH_MILLIS_ABOVE
_MAX_FUTURE_US = model.MAX_FUTURE_US


def read_report(raw: bytes, now_us: int) -> tuple[bool, list]:
    """(False, a fix) or (True, a heartbeat) of a record's bytes, or ``InvalidPosition``."""
    if not raw.isascii():  # text beyond ASCII: the reference says how orjson reads it
        return _by_the_rules(raw, now_us)
    try:
        report = _decode(raw)
    except _NOT_COMMON:
        return _by_the_rules(raw, now_us)
    time_ms = report.time
    if (report.kind is not None or type(time_ms) is not int or not 0 <= time_ms <= _MAX_TIME_MS
            or _MARKER_ID_MATCH(report.marker_id) is None):
        return _by_the_rules(raw, now_us)
    time_us = time_ms * 1_000 if time_ms > _MILLIS_ABOVE else time_ms * 1_000_000
    if time_us > now_us + _MAX_FUTURE_US:
        return _by_the_rules(raw, now_us)
    source, attributes = report.source, report.attributes
    return False, [report.marker_id, time_us, report.lat, report.lon, report.speed, report.heading,
                   report.altitude, report.accuracy, report.battery,
                   None if source is None else model.checked_source(source),
                   None if attributes is None else model.checked_attributes(attributes)]


def _by_the_rules(raw: bytes, now_us: int) -> tuple[bool, list]:
    """The reference: what any record is, or why it is refused."""
    return parse_report(decode_object(raw), now_us)
