"""Map and history figures on the real stack: the /map page with 10,000 markers in headless
Chromium, and a 100,000-point history as JSON and GeoJSON. Prints a table of medians.

    make bench-map        (needs scripts/services running: make services)
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from tests.integration.harness import Stack, wait_for
from tracker.db import HistoryWriter
from tracker.intake import Accepted
from tracker.position import Position

MARKERS = 10_000
HISTORY_POINTS = 100_000
RUNS = 3


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def fill_history(stack: Stack) -> None:
    start = datetime.now(timezone.utc) - timedelta(hours=20)
    writer = HistoryWriter(stack.settings.database_url)

    async def write() -> None:
        batch = []
        for i in range(HISTORY_POINTS):
            moment = start + timedelta(milliseconds=500 * i)
            batch.append(Accepted(Position("bench-history", 45 + i * 1e-6, 14 + i * 1e-6, moment,
                                           speed=12.0, heading=90.0, battery=70.0), moment, True))
            if len(batch) == 5_000:
                await writer.write(batch)
                batch.clear()
        await writer.write(batch)
        await writer.close()

    asyncio.run(write())


def map_render_seconds(url: str) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(
            f"window.tracker && Object.keys(window.tracker.markers).length === {MARKERS}", timeout=120_000
        )
        elapsed = time.perf_counter() - started
        browser.close()
    return elapsed


def main() -> None:
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-")))
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        progress(f"sending {MARKERS:,} markers")
        now = datetime.now(timezone.utc).isoformat()
        stack.send([
            (f"m{i:05d}".encode(), orjson.dumps({"marker_id": f"m{i:05d}", "lat": 40 + (i % 100) * 0.05,
                                                 "lon": 10 + (i // 100) * 0.05, "time": now, "speed": 5.0}))
            for i in range(MARKERS)
        ])
        wait_for(lambda: stack.history_count() >= MARKERS, 300, "every marker stored")
        progress(f"writing {HISTORY_POINTS:,} history points")
        fill_history(stack)

        rows = []
        page_seconds, page_bytes = timed_get(worker.url + "/map")
        geojson = [timed_get(worker.url + "/api/markers.geojson") for _ in range(RUNS)]
        progress("rendering /map in headless Chromium")
        renders = [map_render_seconds(worker.url + "/map") for _ in range(RUNS)]
        window = "from=2000-01-01T00:00:00Z&limit=1000000"
        history = {}
        for fmt in ("json", "geojson"):
            progress(f"history as {fmt}")
            url = f"{worker.url}/api/markers/bench-history/history?{window}&format={fmt}"
            history[fmt] = [timed_get(url) for _ in range(RUNS)]

        rows.append(("/map HTML (markers come from the GeoJSON)", f"{page_bytes:,} B", f"{page_seconds * 1000:.0f} ms"))
        rows.append((f"/api/markers.geojson, {MARKERS:,} markers", f"{geojson[0][1]:,} B",
                     f"{statistics.median(t for t, _ in geojson) * 1000:.0f} ms"))
        rows.append((f"/map load and draw {MARKERS:,} markers (Chromium)", "", f"{statistics.median(renders) * 1000:.0f} ms"))
        for fmt, runs in history.items():
            rows.append((f"history, {HISTORY_POINTS:,} points, {fmt}", f"{runs[0][1]:,} B",
                         f"{statistics.median(t for t, _ in runs) * 1000:.0f} ms"))
        width = max(len(r[0]) for r in rows)
        print(f"{'measure':<{width}}  {'size':>14}  {'median of ' + str(RUNS):>12}")
        for name, size, seconds in rows:
            print(f"{name:<{width}}  {size:>14}  {seconds:>12}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
