"""A stream of positions with a known outcome: duplicates, late fixes, malformed records.

Every valid fix time is a whole number of milliseconds and is written in one of the three
accepted forms (epoch seconds, epoch milliseconds, ISO 8601) so all of them are exercised.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson

MALFORMED = [
    b"not json at all",
    b'{"marker_id": "x", "lat": NaN, "lon": 1, "time": 1}',
    b'{"marker_id": "x", "lat": 91, "lon": 1, "time": 1700000000}',
    b'{"marker_id": "x", "lon": 1, "time": 1700000000}',
    b'{"marker_id": "bad id!", "lat": 1, "lon": 1, "time": 1700000000}',
    b'{"marker_id": "x", "lat": true, "lon": 1, "time": 1700000000}',
    b'{"marker_id": "x", "lat": 1, "lon": 1, "time": "next tuesday"}',
    b'{"marker_id": "x", "lat": 1, "lon": 1, "time": 99999999999999}',
    b"[1, 2, 3]",
    b"\xff\xfe\xfa binary",
]


@dataclass
class Dataset:
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: (marker id, epoch milliseconds) of every distinct valid fix
    expected_rows: set[tuple[str, int]] = field(default_factory=set)
    #: marker id -> its newest fix as sent
    expected_latest: dict[str, dict] = field(default_factory=dict)
    malformed: list[bytes] = field(default_factory=list)

    @property
    def marker_ids(self) -> list[str]:
        return sorted(self.expected_latest)

    @property
    def newest_positions(self) -> dict[str, tuple[float, float]]:
        """marker id -> (lat, lon) of its newest fix"""
        return {marker: (fix["lat"], fix["lon"]) for marker, fix in self.expected_latest.items()}

    def assert_every_marker_right(self, worker, timeout: float = 30.0) -> None:
        """Every marker's newest fix (place and time), asked one by one of ``worker``. A 503
        (the group rebalancing, or a partition's new owner recovering it) is asked again
        until ``timeout``; a wrong answer never is."""
        deadline = time.monotonic() + timeout
        pending, wrong = self.marker_ids, []
        while pending and time.monotonic() < deadline:
            retry = []
            for marker_id in pending:
                status, body = worker.get(f"/api/markers/{marker_id}")
                expected = self.expected_latest[marker_id]
                if status == 503:
                    retry.append(marker_id)
                elif (status != 200 or (body["lat"], body["lon"]) != (expected["lat"], expected["lon"])
                      or not body["time"].endswith("Z")
                      or int(datetime.fromisoformat(body["time"]).timestamp() * 1000) != expected["millis"]):
                    wrong.append((marker_id, status, body))
            pending = retry
            if pending:
                time.sleep(0.5)
        assert not wrong and not pending, \
            f"worker {worker.index}: {len(wrong)} markers wrong, e.g. {wrong[:3]}; {len(pending)} unavailable"


def _encode_time(millis: int, form: int):
    if form == 0:
        return millis / 1000
    if form == 1:
        return millis
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=millis)
    return moment.isoformat().replace("+00:00", "Z")


def build(markers: int = 100, in_order: int = 90, duplicates: int = 5, late: int = 4,
          malformed: int = 50, extra_duplicates: int = 50, seed: int = 7,
          prefix: str = "marker-") -> Dataset:
    """``markers`` x (in_order + duplicates + late) records, plus extras and malformed ones."""
    rng = random.Random(seed)
    base = (int(datetime.now(timezone.utc).timestamp()) - 3 * 3600) * 1000
    data = Dataset()
    per_marker: list[list[tuple[bytes, bytes]]] = []
    for m in range(markers):
        marker_id = f"{prefix}{m:03d}"
        key = marker_id.encode()
        sequence: list[tuple[bytes, bytes]] = []
        lat, lon = 45.0 + rng.uniform(-1, 1), 14.0 + rng.uniform(-1, 1)
        for j in range(in_order):
            millis = base + j * 10_000 + m
            lat += rng.uniform(-0.001, 0.001)
            lon += rng.uniform(-0.001, 0.001)
            fix = {"marker_id": marker_id, "lat": round(lat, 6), "lon": round(lon, 6),
                   "time": _encode_time(millis, j % 3), "speed": round(rng.uniform(0, 30), 2),
                   "heading": round(rng.uniform(0, 360), 1), "battery": 80}
            sequence.append((key, orjson.dumps(fix)))
            data.expected_rows.add((marker_id, millis))
            data.expected_latest[marker_id] = {**fix, "millis": millis}
        for _ in range(duplicates + (1 if m < extra_duplicates else 0)):
            sequence.append(rng.choice(sequence[:in_order]))
        for j in range(late):
            millis = base + rng.randrange(in_order - 1) * 10_000 + 5_000 + m  # between two fixes
            fix = {"marker_id": marker_id, "lat": 0.5, "lon": 0.5, "time": _encode_time(millis, j % 3)}
            sequence.append((key, orjson.dumps(fix)))
            data.expected_rows.add((marker_id, millis))
        per_marker.append(sequence)
    # Interleave the markers at random, keeping each marker's own order.
    cursors = [0] * markers
    live = list(range(markers))
    while live:
        m = rng.choice(live)
        data.records.append(per_marker[m][cursors[m]])
        cursors[m] += 1
        if cursors[m] == len(per_marker[m]):
            live.remove(m)
    for i in range(malformed):
        payload = MALFORMED[i % len(MALFORMED)] + (b" " * (i // len(MALFORMED)))
        data.malformed.append(payload)
        data.records.insert(rng.randrange(len(data.records) + 1), (b"junk", payload))
    return data
