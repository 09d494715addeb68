"""``latest``: each marker's newest fix, keyed by marker id as raw bytes.

A value is the fix as compact JSON: a list in ``tracker.positions.model.FIX_FIELDS`` order plus
``received_us``, then (from the journeys stage, when it runs) the marker's odometer in
metres and whether it is moving; times in microseconds since the epoch (``position_of`` turns it into the
API's dict with ISO 8601 times, at the HTTP edge). The table is co-partitioned with
``gps.positions`` and the batches topic: the worker that owns partition p of the batches
topic owns partition p of the table, and every marker of that partition.

``LatestWriter`` applies a whole slice of fixes of one partition at once:

- forward-only: a fix replaces the stored one only if its fix time is strictly later
  (so late fixes and replays never move a marker back, and on equal times the first
  one stays);
- once per marker: only the newest fix of the slice is compared and written;
- changelog first (``tables.changelog.ChangelogWriter``): a worker killed between the
  changelog send and the RocksDB write has nothing locally that the changelog lacks:
  recovery brings the values in, and the replayed slice finds them already there.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import orjson

from tables.changelog import ChangelogWriter, PartitionStore, SendMany, marker_table
from tracker.positions.model import OPTIONAL_RANGES, display_name, format_micros, micros_of

latest = marker_table("latest", help="Newest fix of every marker.")

TIME = 1  # index of time_us in a fix
RECEIVED = 11  # index of received_us


def encode(fix: list) -> bytes:
    return orjson.dumps(fix)


def decode(value: bytes) -> list:
    """A stored value as a fix (``FIX_FIELDS`` plus ``received_us``)."""
    data = orjson.loads(value)
    if isinstance(data, dict):  # an ISO 8601 dict, as versions before fixes stored them
        return _fix_of_dict(data)
    return data


def position_of(fix: list) -> dict[str, Any]:
    """A fix as the API shows it: contract names, ISO 8601 UTC times."""
    marker_id, t, lat, lon, speed, heading, altitude, accuracy, battery, source, attributes, received = fix[:12]
    return {
        "marker_id": marker_id, "lat": lat, "lon": lon, "time": format_micros(t), "speed": speed,
        "heading": heading, "altitude": altitude, "accuracy": accuracy, "battery": battery,
        "source": source, "attributes": attributes, "received_at": format_micros(received),
        "odometer": fix[12] if len(fix) > 12 else None, "moving": fix[13] if len(fix) > 13 else None,
        "name": display_name(attributes),
    }


def _fix_of_dict(position: dict) -> list:
    time_us = micros_of(datetime.fromisoformat(position["time"]))
    received = position.get("received_at")
    return [position["marker_id"], time_us, position["lat"], position["lon"],
            *(position.get(name) for name in OPTIONAL_RANGES), position.get("source"), position.get("attributes"),
            micros_of(datetime.fromisoformat(received)) if received else time_us]


def newest_per_marker(fixes: Iterable[list]) -> dict[str, list]:
    """Each marker's newest fix; of equal times, the first."""
    newest: dict[str, list] = {}
    get = newest.get
    for fix in fixes:
        current = get(fix[0])
        if current is None or fix[TIME] > current[TIME]:
            newest[fix[0]] = fix
    return newest


class LatestWriter(ChangelogWriter):
    """Applies slices of fixes to ``latest``; ``send_many`` sends changelog records."""

    def __init__(self, send_many: SendMany, store: PartitionStore | None = None, table=latest) -> None:
        super().__init__(send_many, table, store)

    def changes(self, partition: int, fixes: Iterable[list],
                motion: dict[str, tuple[float, bool]] | None = None) -> list[tuple[bytes, bytes]]:
        """(key, value) of every marker whose newest fix here is newer than the stored one;
        ``motion`` gives a marker's (odometer, moving) to store with it."""
        get = self.store.get
        changes = []
        for marker_id, fix in newest_per_marker(fixes).items():
            key = marker_id.encode()
            stored = get(partition, key)
            if stored is None or fix[TIME] > decode(stored)[TIME]:
                if motion is not None and marker_id in motion:
                    odometer, moving = motion[marker_id]
                    fix = [*fix[:RECEIVED + 1], round(odometer, 1), moving]
                changes.append((key, encode(fix)))
        return changes
