"""The journeys benchmarks on the local real services (rows 10 and 11 of ``make bench``).

    python -m bench.journeys                       (both, full size)
    python -m bench.journeys --positions 200000 --days 30

10. ``tracker journeys rebuild`` of N stored positions (100 markers, a fix every 10 s,
    trips and stops in turn): positions/s end to end, as a separate process.
11. ``GET /api/markers/{id}/summary?by=day`` over a year of one marker at a fix every 10 s
    (3.15 M rows in ``positions``; the trips and stops rebuilt from them first): the
    request's time through a worker, median and max of 20.

Each run checks its result: the rebuild finds trips and stops for every marker, and the
summary has a row per day with the trips' total distance; it exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from tracker.storage.schema import create_schema
from tracker.positions.store import copy_fixes
from bench.report import print_table
from tracker.testing import Stack, run_sync

FAILURES: list[str] = []
STEP_S = 10
COPY_CHUNK = 50_000


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def day_of_driving(marker_id: str, start: datetime, fixes: int, seed: int):
    """``fixes`` fixes 10 s apart: drives of 10 to 40 minutes at 8 to 25 m/s between stops
    of 10 to 90 minutes (rows as ``tracker.positions.store.copy_fixes`` takes them)."""
    rng = random.Random(seed)
    lat, lon, heading = 45 + rng.uniform(-1, 1), 14 + rng.uniform(-1, 1), rng.uniform(0, 2 * math.pi)
    t = int(start.timestamp()) * 1_000_000
    driving, left = False, rng.randrange(60, 540)
    speed = 0.0
    for _ in range(fixes):
        if left == 0:
            driving = not driving
            left = rng.randrange(60, 240) if driving else rng.randrange(60, 540)
            speed = rng.uniform(8, 25) if driving else 0.0
        left -= 1
        if driving:
            heading += rng.uniform(-0.15, 0.15)
            lat += speed * STEP_S * math.cos(heading) / 111_195
            lon += speed * STEP_S * math.sin(heading) / (111_195 * math.cos(math.radians(lat)))
        t += STEP_S * 1_000_000
        yield [marker_id, t, lat, lon, speed, None, None, None, None, "bench", None, t]


async def _store(url: str, rows) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await create_schema(conn)
        stored, chunk = 0, []
        for row in rows:
            chunk.append(row)
            if len(chunk) == COPY_CHUNK:
                stored += await copy_fixes(conn, chunk)
                chunk = []
        if chunk:
            stored += await copy_fixes(conn, chunk)
        return stored


def _rebuild(stack: Stack, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tracker.cli", "journeys", "rebuild", *args], env=stack.env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        FAILURES.append(f"journeys rebuild failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds, done.stdout


def measure_rebuild(positions: int = 1_000_000, markers: int = 100) -> list[tuple[str, str, str]]:
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-journeys-")))
    start = datetime.now(timezone.utc) - timedelta(days=60)
    per_marker = positions // markers
    say(f"storing {per_marker * markers:,} positions of {markers} markers")
    rows = (row for m in range(markers) for row in day_of_driving(f"r{m:03d}", start, per_marker, m))
    stored = run_sync(_store(stack.settings.database_url, rows))
    say("journeys rebuild")
    seconds, output = _rebuild(stack)
    trips, stops = (stack.query(f"SELECT count(*), count(DISTINCT marker_id) FROM {t}")[0] for t in ("trips", "stops"))
    if trips[1] != markers or stops[1] != markers:
        FAILURES.append(f"rebuild: trips for {trips[1]} and stops for {stops[1]} of {markers} markers")
    reported = re.search(r"([\d,]+)\s*$", output.strip().splitlines()[-1]) if output.strip() else None
    return [(f"10. journeys rebuild of {stored:,} stored positions ({markers} markers)",
             f"{stored / seconds:,.0f} positions/s",
             f"{seconds:.1f} s as a process (its own count: {reported.group(1) if reported else '?'} fixes/s); "
             f"{trips[0]:,} trips, {stops[0]:,} stops (goal >= 200,000/s)")]


def measure_summary(days: int = 365, requests: int = 20) -> list[tuple[str, str, str]]:
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-summary-")))
    start = (datetime.now(timezone.utc) - timedelta(days=days + 1)).replace(hour=0, minute=0, second=0,
                                                                               microsecond=0)
    fixes = days * 86_400 // STEP_S
    say(f"storing a year of one marker: {fixes:,} positions")
    stored = run_sync(_store(stack.settings.database_url, day_of_driving("year", start, fixes, 7)))
    say("rebuilding its trips and stops")
    rebuild_seconds, _ = _rebuild(stack, "--marker", "year")
    worker = stack.worker().start()
    try:
        worker.wait_ready()
        url = (f"/api/markers/year/summary?from={int(start.timestamp())}"
               f"&to={int((start + timedelta(days=days)).timestamp())}&by=day")
        timings, body = [], None
        for _ in range(requests):
            began = time.perf_counter()
            status, body = worker.get(url)
            timings.append(time.perf_counter() - began)
            if status != 200:
                FAILURES.append(f"summary answered {status}")
                break
        trips = stack.query("SELECT count(*), coalesce(sum(distance_m), 0) FROM trips")[0]
        periods = body.get("periods", []) if isinstance(body, dict) else []
        if len(periods) < days - 1 or abs(sum(p["distance_m"] for p in periods) - trips[1]) > 1:
            FAILURES.append(f"summary: {len(periods)} days for {days}, or its distance is not the trips'")
    finally:
        stack.close()
    timings.sort()
    return [(f"11. /summary?by=day over {days} days of one marker ({stored:,} positions, {trips[0]:,} trips)",
             f"p50 {statistics.median(timings) * 1000:.0f} ms",
             f"max {timings[-1] * 1000:.0f} ms of {len(timings)} requests (goal <= 300 ms); "
             f"its journeys rebuilt in {rebuild_seconds:.1f} s ({stored / rebuild_seconds:,.0f} positions/s)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000, help="stored positions of (10)")
    parser.add_argument("--days", type=int, default=365, help="days of one marker's history in (11)")
    args = parser.parse_args()
    rows = measure_rebuild(args.positions) + measure_summary(args.days)
    print_table(rows, FAILURES)


if __name__ == "__main__":
    main()
