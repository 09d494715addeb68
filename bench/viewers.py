"""Many viewers polling the live map's data: ``python -m bench.viewers`` (``make bench-viewers``).

Two workers hold 10,000 markers; V viewers (each with its own API token and the same
permissions) fetch ``/api/markers.geojson`` in a loop, half of them from each worker, for
S seconds. Prints the requests answered, their latency, and how many cluster-wide scans
the workers made: viewers with the same filters share one scan a second.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import orjson

from tracker.testing import Stack, settle_latest, wait_for


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def scans(worker) -> float:
    status, text = worker.get("/metrics")
    match = re.search(r"^tracker_cluster_scans_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def viewer(worker, token: str, until: float, latencies: list[float], errors: list[int]) -> None:
    request = urllib.request.Request(worker.url + "/api/markers.geojson", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
            latencies.append(time.perf_counter() - started)
        except OSError:
            errors.append(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markers", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-viewers-")))
    try:
        workers = [stack.worker().start(), stack.worker().start()]
        for worker in workers:
            worker.wait_ready()
        wait_for(lambda: all(w.health() and w.health()["partitions"] for w in workers), 60, "both workers to own partitions")
        progress(f"sending {args.markers:,} markers")
        now = datetime.now(timezone.utc).isoformat()
        newest = {}
        records = []
        for i in range(args.markers):
            marker = f"view-{i:05d}"
            lat, lon = 45 + (i % 100) / 1000, 14 + (i // 100) / 1000
            newest[marker] = (lat, lon)
            records.append((marker.encode(), orjson.dumps({"marker_id": marker, "lat": lat, "lon": lon, "time": now})))
        stack.send(records)
        settle_latest(workers[0], newest, timeout=120)
        tokens = [stack.user(f"viewer-{n}", "viewer", ["view-*"]) for n in range(args.viewers)]
        before = sum(scans(w) for w in workers)
        latencies: list[float] = []
        errors: list[int] = []
        until = time.monotonic() + args.seconds
        progress(f"{args.viewers} viewers polling for {args.seconds:.0f} s")
        threads = [threading.Thread(target=viewer, args=(workers[n % 2], token, until, latencies, errors))
                   for n, token in enumerate(tokens)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        made = sum(scans(w) for w in workers) - before
        latencies.sort()
        rows = [
            ("viewers / markers", f"{args.viewers} / {args.markers:,}"),
            ("answers", f"{len(latencies):,} ({len(latencies) / args.seconds:,.1f}/s), {len(errors)} errors"),
            ("latency p50 / p95", f"{statistics.median(latencies) * 1000:,.0f} ms / "
                                  f"{latencies[int(len(latencies) * 0.95)] * 1000:,.0f} ms"),
            ("cluster-wide scans", f"{made:,.0f} ({made / args.seconds:.1f}/s for both workers)"),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
