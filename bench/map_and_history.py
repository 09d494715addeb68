"""Map figures on the real stack: the /map page with 10,000 markers in headless Chromium.
Prints a table of medians. (The history reads are row 6 of ``bench.pipeline``.)

    make bench-map        (needs scripts/services running: make services)
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import orjson

from tracker.testing import Stack, wait_for

MARKERS = 10_000
RUNS = 3


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def timed_get(url: str, token: str) -> tuple[float, int]:
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def map_render_seconds(stack: Stack, worker) -> float:
    """From the login form's submit to every marker drawn."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        started = time.perf_counter()
        stack.sign_in(page, worker, "/map")
        page.wait_for_function(f"() => window.tracker && window.tracker.markers.size === {MARKERS}", timeout=120_000)
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

        rows = []
        page_seconds, page_bytes = timed_get(worker.url + "/map", stack.admin_token)
        geojson = [timed_get(worker.url + "/api/markers.geojson", stack.admin_token) for _ in range(RUNS)]
        progress("rendering /map in headless Chromium")
        renders = [map_render_seconds(stack, worker) for _ in range(RUNS)]

        rows.append(("/map HTML (markers come from the GeoJSON)", f"{page_bytes:,} B", f"{page_seconds * 1000:.0f} ms"))
        rows.append((f"/api/markers.geojson, {MARKERS:,} markers", f"{geojson[0][1]:,} B",
                     f"{statistics.median(t for t, _ in geojson) * 1000:.0f} ms"))
        rows.append((f"/map load and draw {MARKERS:,} markers (Chromium)", "", f"{statistics.median(renders) * 1000:.0f} ms"))
        width = max(len(r[0]) for r in rows)
        print(f"{'measure':<{width}}  {'size':>14}  {'median of ' + str(RUNS):>12}")
        for name, size, seconds in rows:
            print(f"{name:<{width}}  {size:>14}  {seconds:>12}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
