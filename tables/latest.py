"""``latest``: each marker's newest fix, keyed by marker id as raw bytes.

A value is the fix as compact JSON: a list in ``tracker.positions.model.FIX_FIELDS`` order plus
``received_us``, then (from the journeys stage, when it runs) the marker's odometer in
metres and whether it is moving, then (once the marker has sent a heartbeat or a late fix)
its liveness: ``[heard_us, beat_us, beat_battery]``, when the tracker last received any
report of it, and the time and battery level of its newest heartbeat when that is newer
than the fix (else null); times in microseconds since the epoch (``position_of`` turns it into the
API's dict with ISO 8601 times, at the HTTP edge). Workers of earlier versions read the
first fourteen elements and leave the rest. The table is co-partitioned with
``gps.positions`` and the batches topic: the worker that owns partition p of the batches
topic owns partition p of the table, and every marker of that partition.

``LatestWriter`` applies a whole slice of fixes of one partition at once:

- forward-only: a fix replaces the stored one only if its fix time is strictly later
  (so late fixes and replays never move a marker back, and on equal times the first
  one stays);
- once per marker: only the newest fix of the slice is compared and written;
- changelog first (``tables.changelog.ChangelogWriter``): a worker killed between the
  changelog send and the RocksDB write has nothing locally that the changelog lacks:
  recovery brings the values in, and the replayed slice finds them already there;
- liveness only moves forward too: the time last heard is the newest receipt seen, a
  heartbeat counts only if it is newer than the fix and any heartbeat before it, and a
  marker with no fix yet gets no row (there is no position to show);
- recovered forward only (``LatestTable``, ``tables.changelog.ForwardOnlyTable``): a
  changelog record older than the value already recovered for its marker is left out, so
  a worker that woke from a pause and appended an old value after its successor's newer
  ones cannot move a marker back; the writer's next send to the partition carries the
  kept value again, so that the changelog's newest record for the marker is the newest
  fix once more (the one compaction keeps);
- read from memory: the writer keeps the values it stored last (``cache``, decoded), so a
  marker's next fix is compared without a RocksDB read and a decode. A value enters the
  cache when ``commit`` stores it; every other write through ``commit`` (heartbeats,
  erasures) takes its key out; ``begin`` empties it when the assignment changes (another
  worker may have written a partition meanwhile, and Faust's recovery writes the store).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import orjson

from tables.changelog import ChangelogWriter, ForwardOnlyTable, PartitionStore, SendMany, marker_table
from tracker.positions.liveness import LIVENESS, battery_of, heard_of, with_liveness
from tracker.positions.model import OPTIONAL_RANGES, display_name, format_micros, micros_of

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
        "heading": heading, "altitude": altitude, "accuracy": accuracy, "battery": battery_of(fix),
        "source": source, "attributes": attributes, "received_at": format_micros(received),
        "odometer": fix[12] if len(fix) > 12 else None, "moving": fix[13] if len(fix) > 13 else None,
        "name": display_name(attributes), "heard_at": format_micros(heard_of(fix)),
    }


def _fix_of_dict(position: dict) -> list:
    time_us = micros_of(datetime.fromisoformat(position["time"]))
    received = position.get("received_at")
    return [position["marker_id"], time_us, position["lat"], position["lon"],
            *(position.get(name) for name in OPTIONAL_RANGES), position.get("source"), position.get("attributes"),
            micros_of(datetime.fromisoformat(received)) if received else time_us]


def rank(value: list) -> tuple[int, int]:
    """What orders two values of one marker: the fix time, then when it was last heard."""
    return value[TIME], heard_of(value)


class LatestTable(ForwardOnlyTable):
    """The ``latest`` table, its changelog recovered forward only (``rank``)."""

    def rank(self, value: bytes) -> tuple[int, int]:
        return rank(decode(value))


latest = marker_table("latest", help="Newest fix of every marker.", table_class=LatestTable)


def newest_per_marker(fixes: Iterable[list]) -> dict[str, list]:
    """Each marker's newest fix; of equal times, the first."""
    newest: dict[str, list] = {}
    get = newest.get
    for fix in fixes:
        current = get(fix[0])
        if current is None or fix[TIME] > current[TIME]:
            newest[fix[0]] = fix
    return newest


#: Markers whose stored value a writer keeps decoded in memory (about 1 KB each).
CACHED_VALUES = 50_000


class LatestWriter(ChangelogWriter):
    """Applies slices of fixes to ``latest``; ``send_many`` sends changelog records."""

    def __init__(self, send_many: SendMany, store: PartitionStore | None = None, table=latest) -> None:
        super().__init__(send_many, table, store)
        self.cache: dict[bytes, list] = {}  # key -> the value stored, decoded
        self.generation: object = None
        self._writing: dict[int, dict[bytes, list]] = {}  # partition -> key -> the value ``changes`` made

    def begin(self, generation: object) -> None:
        """Before a step: forget every cached value if the assignment changed since the last one."""
        if generation != self.generation:
            self.cache.clear()
            self._writing.clear()
            self.generation = generation

    def commit(self, partition: int, changes: list[tuple[bytes, bytes | None]], changelog_offset: int) -> None:
        super().commit(partition, changes, changelog_offset)
        made, cache = self._writing.pop(partition, {}), self.cache
        if len(cache) + len(changes) > CACHED_VALUES:
            cache.clear()
        for key, value in changes:
            fix = made.get(key) if value is not None else None
            if fix is not None:
                cache[key] = fix
            else:
                cache.pop(key, None)

    def _current(self, partition: int, key: bytes) -> list | None:
        current = self.cache.get(key)
        if current is None:
            stored = self.store.get(partition, key)
            if stored is not None:
                current = decode(stored)
        return current

    def changes(self, partition: int, fixes: Iterable[list],
                motion: dict[str, tuple[float, bool]] | None = None) -> list[tuple[bytes, bytes]]:
        """(key, value) of every marker whose newest fix here is newer than the stored one;
        ``motion`` gives a marker's (odometer, moving) to store with it."""
        current_of = self._current
        changes, made = [], {}
        for marker_id, fix in newest_per_marker(fixes).items():
            key = marker_id.encode()
            current = current_of(partition, key)
            if current is None or fix[TIME] > current[TIME]:
                if motion is not None and marker_id in motion:
                    odometer, moving = motion[marker_id]
                    fix = [*fix[:RECEIVED + 1], round(odometer, 1), moving]
                if current is not None and len(current) > LIVENESS and current[LIVENESS]:
                    _, beat_us, beat_battery = current[LIVENESS]
                    fix = with_liveness(fix, heard_of(current), (beat_us, beat_battery) if beat_us else None) or fix
                changes.append((key, encode(fix)))
                made[key] = fix
            elif len(fix) > RECEIVED and (heard := with_liveness(current, fix[RECEIVED])) is not None:
                changes.append((key, encode(heard)))  # a late fix: the marker was heard from
                made[key] = heard
        self._writing[partition] = made
        return changes

    def heard_changes(self, partition: int, heard: Iterable[list]) -> list[tuple[bytes, bytes]]:
        """(key, value) of every marker whose liveness the heartbeats (``HEARD_FIELDS`` plus
        ``received_us``) move forward; a marker without a row stays without one."""
        get = self.store.get
        values: dict[str, list | None] = {}
        changed: set[str] = set()
        for report in heard:
            marker_id = report[0]
            if marker_id not in values:
                stored = get(partition, marker_id.encode())
                values[marker_id] = None if stored is None else decode(stored)
            value = values[marker_id]
            if value is None:
                continue
            updated = with_liveness(value, report[5] if len(report) > 5 else 0, (report[1], report[2]))
            if updated is not None:
                values[marker_id] = updated
                changed.add(marker_id)
        return [(marker_id.encode(), encode(values[marker_id])) for marker_id in changed]
