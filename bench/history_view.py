"""The history view's figures on the real stack (``make bench-map``): a month of one marker
(100,000 points) drawn in headless Chromium, the heatmap of 1,000,000 points (cells counted
by Postgres, drawn by leaflet.heat), and a year of one marker's statistics over HTTP.
Prints a table of medians; a figure over its target is a FAILED line (exit 1).

The rows are written straight into Postgres (``copy_fixes``, ``write_trips``,
``write_stops``), as the sinks write them: the pipeline's own speed is ``bench.pipeline``'s.
"""
from __future__ import annotations

import asyncio
import math
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from bench import map_and_history
from bench.report import print_table
from tracker.testing import Stack

MONTH_POINTS = 100_000
HEAT_MARKERS = 10
HEAT_POINTS = 1_000_000
YEAR_TRIPS_PER_DAY = 4
RUNS = 3
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
MONTH = timedelta(days=30)
TARGETS = {"history": 2.0, "heatmap": 3.0, "stats": 0.3}


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def walk(marker: str, points: int, seed: int, centre=(46.05, 14.5)) -> list[list]:
    """A marker wandering around ``centre`` for a month, a fix every few seconds, as fixes."""
    rng = random.Random(seed)
    lat, lon = centre
    step_us = int(MONTH.total_seconds() * 1e6 / points)
    start_us = int(START.timestamp() * 1e6)
    fixes = []
    for i in range(points):
        lat = min(max(lat + rng.gauss(0, 0.0004), centre[0] - 0.3), centre[0] + 0.3)
        lon = min(max(lon + rng.gauss(0, 0.0006), centre[1] - 0.4), centre[1] + 0.4)
        t = start_us + i * step_us
        fixes.append([marker, t, lat, lon, abs(rng.gauss(12, 6)), None, 300 + 50 * math.sin(i / 500), None, None,
                      "bench", None, t])
    return fixes


async def fill(url: str) -> None:
    from tracker.journeys import store as journeys
    from tracker.positions.store import copy_fixes
    from tracker.storage.schema import create_schema

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await create_schema(conn)
        batches = [walk("month-1", MONTH_POINTS, 1)] + [
            walk(f"heat-{i}", HEAT_POINTS // HEAT_MARKERS, 100 + i, (46.0 + i * 0.05, 14.3 + i * 0.05))
            for i in range(HEAT_MARKERS)]
        for fixes in batches:
            for at in range(0, len(fixes), 50_000):
                await copy_fixes(conn, fixes[at:at + 50_000])
        progress(f"{MONTH_POINTS + HEAT_POINTS:,} positions stored")
        trips, stops = [], []
        year_start = START - timedelta(days=365)
        rng = random.Random(7)
        places = [(46.05, 14.5), (45.8, 15.97), (45.33, 14.44), (46.36, 15.11)]
        for day in range(365):
            for n in range(YEAR_TRIPS_PER_DAY):
                begin = year_start + timedelta(days=day, hours=7 + n * 3)
                a, b = places[(day + n) % 4], places[(day + n + 1) % 4]
                trips.append(("year-1", begin, begin + timedelta(minutes=40), *a, *b, rng.uniform(5_000, 80_000),
                              2400.0, 30.0, 20.0, [], []))
                stops.append(("year-1", begin + timedelta(minutes=40), begin + timedelta(hours=3), *b, 8000.0))
        await journeys.write_trips(conn, trips)
        await journeys.write_stops(conn, stops)
        await conn.execute("ANALYZE positions")
    progress(f"a year of trips and stops stored ({len(trips):,} each)")


def timed_get(url: str, token: str) -> float:
    return map_and_history.timed_get(url, token)[0]


def browser_figures(stack: Stack, worker) -> tuple[list[float], list[float], int]:
    """(seconds from asking for the page to the month drawn, the same to the heatmap of every
    point drawn, cells drawn), per run: the page's own clock (``performance.now()``)."""
    from playwright.sync_api import sync_playwright

    span = f"from={START.isoformat().replace('+00:00', 'Z')}&to={(START + MONTH).isoformat().replace('+00:00', 'Z')}"
    heat = ",".join(f"heat-{i}" for i in range(HEAT_MARKERS))
    drawn, heated, cells = [], [], 0
    next_frame = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        stack.sign_in(page, worker, "/admin/tokens")
        for _ in range(RUNS):
            page.goto(f"{worker.url}/history?markers=month-1&{span}", wait_until="commit")
            page.wait_for_function(f"() => window.historyView && window.historyView.drawn "
                                   f"&& window.historyView.tracks[0].points === {MONTH_POINTS}", timeout=120_000)
            drawn.append(page.evaluate(next_frame) / 1000)
        for _ in range(RUNS):
            page.goto(f"{worker.url}/history?markers={heat}&view=heatmap&{span}", wait_until="commit")
            page.wait_for_function(f"() => window.historyView && window.historyView.heatReady "
                                   f"&& window.historyView.heatPoints === {HEAT_POINTS}", timeout=120_000)
            heated.append(page.evaluate(next_frame) / 1000)
            cells = page.evaluate("() => window.historyView.heatCells")
        browser.close()
    return drawn, heated, cells


def main() -> None:
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-history-")))
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        progress(f"storing a month of {MONTH_POINTS:,} points, {HEAT_POINTS:,} for the heatmap and a year of journeys")
        asyncio.run(fill(stack.settings.database_url))
        token = stack.admin_token
        span = f"from={START.isoformat().replace('+00:00', 'Z')}&to={(START + MONTH).isoformat().replace('+00:00', 'Z')}"
        year = f"from={(START - timedelta(days=365)).isoformat().replace('+00:00', 'Z')}&to={START.isoformat().replace('+00:00', 'Z')}"
        heat = ",".join(f"heat-{i}" for i in range(HEAT_MARKERS))
        timed_get(f"{worker.url}/api/markers/year-1/stats?{year}", token)  # the geocoder's data loaded
        stats = [timed_get(f"{worker.url}/api/markers/year-1/stats?{year}", token) for _ in range(5)]
        tracks = [timed_get(f"{worker.url}/api/tracks?markers=month-1&{span}", token) for _ in range(RUNS)]
        cells_api = [timed_get(f"{worker.url}/api/heatmap?markers={heat}&zoom=9&{span}", token) for _ in range(RUNS)]
        progress("drawing in headless Chromium")
        drawn, heated, cells = browser_figures(stack, worker)
        rows = [
            (f"/api/tracks, one marker's month ({MONTH_POINTS:,} points)", f"{statistics.median(tracks) * 1000:.0f} ms", "HTTP, median"),
            ("history view of that month, asked for to drawn (Chromium)", f"{statistics.median(drawn) * 1000:.0f} ms",
             f"median of {RUNS}, target ≤ {TARGETS['history'] * 1000:.0f} ms"),
            (f"/api/heatmap, {HEAT_POINTS:,} points at zoom 9", f"{statistics.median(cells_api) * 1000:.0f} ms",
             f"HTTP, median; {cells:,} cells"),
            (f"heatmap of {HEAT_POINTS:,} points, asked for to drawn (Chromium)", f"{statistics.median(heated) * 1000:.0f} ms",
             f"median of {RUNS}, target ≤ {TARGETS['heatmap'] * 1000:.0f} ms"),
            (f"/api/markers/{{id}}/stats, a year ({365 * YEAR_TRIPS_PER_DAY:,} trips and stops)",
             f"{statistics.median(stats) * 1000:.0f} ms", f"median of 5, target ≤ {TARGETS['stats'] * 1000:.0f} ms"),
        ]
        failures = [f"{name}: {value} over its target" for (name, value, _), key in zip([rows[1], rows[3], rows[4]],
                                                                                         ("history", "heatmap", "stats"))
                    if float(value.split()[0]) / 1000 > TARGETS[key]]
    finally:
        stack.close()
    print_table(rows, failures)


if __name__ == "__main__":
    main()
