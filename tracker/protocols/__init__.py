"""What phone apps send, turned into ``gps.positions`` records (the topic's JSON contract).

Each converter returns plain dicts in the contract's units (speed in m/s, battery in %);
``tracker.position.parse_position`` then validates them like any other record.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from tracker.position import MAX_ATTRIBUTES, InvalidPosition


def number(value: Any, name: str) -> float | None:
    """A number from JSON or from a query string; '' and null mean absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidPosition("wrong_type", f"{name} must be a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise InvalidPosition("wrong_type", f"{name} must be a number, got {str(value)[:20]!r}") from None
    if not math.isfinite(result):
        raise InvalidPosition("not_finite", f"{name} must be finite")
    return result


def known(value: float | None) -> float | None:
    """Apps report an unknown speed or heading as a negative number."""
    return None if value is None or value < 0 else value


def scalar_attributes(items: Mapping[str, Any], skip: set[str], prefix: str = "") -> dict[str, Any]:
    """Everything else the app sent that is a plain value, kept as attributes."""
    kept = {}
    for key, value in items.items():
        if key in skip or not isinstance(key, str):
            continue
        if value is None or isinstance(value, (str, bool, int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                continue
            if isinstance(value, str):
                value = value[:256]
            kept[(prefix + key)[:64]] = value
        if len(kept) >= MAX_ATTRIBUTES:
            break
    return kept
