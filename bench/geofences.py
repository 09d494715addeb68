"""The stream's cost with geofences at their caps: ``python -m bench.geofences``
(``make bench-security``).

For each set of geofences, ``--fixes`` fixes of 2,000 markers wait in ``gps.positions`` while
the worker is stopped; the worker starts and drains them (intake, ``latest`` with its events
and journeys stages): fixes a second, from its readiness to the last commit. Then ``/health``
is timed every 50 ms while the set is replaced (a reload: the shapes checked and indexed
off the event loop), and the worker's memory is read.

Sets: none; the caps' worst case, TRACKER_GEOFENCES_MAX polygons sharing
TRACKER_GEOFENCES_MAX_VERTICES vertices, every one holding every fix; TRACKER_GEOFENCE_MAX_VERTICES
polygons, ten of them overlapping; as many circles, none overlapping (sites).
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson

from bench.report import print_table
from tracker.settings import settings
from tracker.testing import Stack

MARKERS = 2_000


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def polygon(name: str, vertices: int, lon: float, lat: float, radius: float) -> dict:
    ring = [[lon + radius * math.cos(2 * math.pi * i / (vertices - 1)),
             lat + radius * math.sin(2 * math.pi * i / (vertices - 1))] for i in range(vertices - 1)]
    return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon",
                                                                         "coordinates": [ring + [ring[0]]]}}


def circle(name: str, lon: float, lat: float) -> dict:
    return {"type": "Feature", "properties": {"name": name, "radius": 200},
            "geometry": {"type": "Point", "coordinates": [lon, lat]}}


def sets() -> list[tuple[str, list[dict]]]:
    count, total, each = settings.geofences_max, settings.geofences_max_vertices, settings.geofence_max_vertices
    return [
        ("no geofences", []),
        (f"{count} overlapping polygons of {total // count:,} vertices (every cap)",
         [polygon(f"worst-{n}", total // count, 14.05 + n * 1e-5, 45.05, 0.2) for n in range(count)]),
        (f"{total // each} overlapping polygons of {each:,} vertices",
         [polygon(f"big-{n}", each, 14.05 + n * 1e-4, 45.05, 0.2) for n in range(total // each)]),
        (f"{count} circles, apart", [circle(f"site-{n}", 14.0 + (n % 50) * 0.01, 45.0 + (n // 50) * 0.01)
                                      for n in range(count)]),
    ]


def fixes(count: int, start: float) -> list[tuple[bytes, bytes]]:
    records = []
    for n in range(count):
        marker = f"geo-{n % MARKERS:04d}"
        records.append((marker.encode(), orjson.dumps({
            "marker_id": marker, "lat": 45.0 + (n % MARKERS) % 50 * 0.002, "lon": 14.0 + (n % MARKERS) // 50 * 0.002,
            "time": start + n // MARKERS, "speed": 3.0})))
    return records


def health_during(worker, action) -> float:
    """The slowest /health while ``action()`` runs."""
    slowest, done = [0.0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            started = time.monotonic()
            with urllib.request.urlopen(worker.url + "/health", timeout=30):
                pass
            slowest[0] = max(slowest[0], time.monotonic() - started)
            done.wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    action()
    time.sleep(4)  # two polls of the version: the reload is done
    done.set()
    thread.join()
    return slowest[0]


def reload(stack: Stack) -> None:
    """Every worker loads the set again, as after any change."""
    stack.query("UPDATE geofences_version SET version = version + 1 RETURNING 1")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", type=int, default=100_000)
    args = parser.parse_args()
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-geofences-")))
    rows = []
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        start = time.time() - 86_400
        for name, features in sets():
            progress(name)
            stack.query("DELETE FROM geofences RETURNING 1")
            stack.query("UPDATE geofences_version SET version = version + 1 RETURNING 1")
            if features:
                stack.add_geofences(features)
            worker.stop()
            start += 3_600
            stack.send(fixes(args.fixes, start))
            ends = {"intake": stack.end_offsets(stack.settings.topic)}
            worker.start()
            worker.wait_ready()
            began = time.monotonic()
            while not stack.caught_up("-intake", stack.settings.topic, ends["intake"]):
                time.sleep(0.2)
            batches = stack.end_offsets(stack.settings.batches_topic)
            while not stack.caught_up("", stack.settings.batches_topic, batches):
                time.sleep(0.2)
            drained = time.monotonic() - began
            slowest = health_during(worker, lambda: reload(stack))
            rows.append((f"{name}: drain", f"{args.fixes / drained:,.0f} fixes/s",
                         f"{args.fixes:,} fixes of {MARKERS:,} markers in {drained:.1f} s"))
            rows.append((f"{name}: worker RSS / slowest /health at a reload",
                         f"{rss_mb(worker.proc.pid):,.0f} MB / {slowest * 1000:,.0f} ms", ""))
        print_table(rows, [])
    finally:
        stack.close()


if __name__ == "__main__":
    main()
