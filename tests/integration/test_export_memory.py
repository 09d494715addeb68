"""A 1,000,000-point track leaves the worker page by page, streamed: its memory stays flat
and it keeps answering ``/health`` meanwhile."""
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import orjson
import psycopg
import pytest

ROWS = 1_000_000
PAGE = 100_000
MAX_GROWTH_MB = 100
#: Generous, so that a loaded CI machine does not fail it; the figure is what matters.
MAX_HEALTH_SECONDS = 1.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Watch(threading.Thread):
    """Samples the worker's memory and times ``/health`` every 50 ms until stopped."""

    def __init__(self, worker) -> None:
        super().__init__(daemon=True)
        self.worker = worker
        self.peak_mb = 0.0
        self.health_seconds: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.worker.proc.pid))
            started = time.monotonic()
            with urllib.request.urlopen(self.worker.url + "/health", timeout=10) as response:
                assert response.status == 200
            self.health_seconds.append(time.monotonic() - started)
            self.stopped.wait(0.05)


@pytest.fixture(scope="module")
def exporter(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    stack.ensure_partitions("positions", datetime(2026, 1, 1, tzinfo=timezone.utc))  # ROWS seconds: in January
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO positions (marker_id, fix_time, lat, lon, speed, source) SELECT 'exp-long', "
                     "timestamptz '2026-01-01' + n * interval '1 second', 45 + n / 1e7, 14 + n / 1e7, 12.5, 'bench' "
                     "FROM generate_series(1, %s) n", (ROWS,))
        conn.execute("ANALYZE positions")
    return worker


def fetch_page(worker, path: str) -> dict:
    request = urllib.request.Request(worker.url + path, headers={"Authorization": f"Bearer {worker.stack.admin_token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200 and response.headers["Transfer-Encoding"] == "chunked"
        return orjson.loads(response.read())


def test_a_million_point_export_streams_with_flat_memory(exporter, figures):
    worker = exporter
    fetch_page(worker, "/api/markers/exp-long/history?from=2025-12-31&limit=1000")  # warm: pool, code paths
    baseline = rss_mb(worker.proc.pid)
    watch = Watch(worker)
    watch.start()
    started = time.monotonic()
    path, count, pages = f"/api/markers/exp-long/history?from=2025-12-31&to=2026-02-01&limit={PAGE}", 0, 0
    try:
        while path:
            body = fetch_page(worker, path)
            count += len(body["positions"])
            path, pages = body["next"], pages + 1
    finally:
        watch.stopped.set()
        watch.join()
    elapsed = time.monotonic() - started
    growth = watch.peak_mb - baseline
    slowest = max(watch.health_seconds)
    figures.append(("export: 1,000,000 points in pages of 100,000", f"{count / elapsed:,.0f} points/s"))
    figures.append(("export: worker memory growth", f"{growth:.0f} MB"))
    figures.append(("export: slowest /health meanwhile", f"{slowest * 1000:.0f} ms"))
    assert count == ROWS and pages == ROWS // PAGE
    assert growth < MAX_GROWTH_MB, f"the worker grew {growth:.0f} MB"
    assert slowest < MAX_HEALTH_SECONDS, f"/health took {slowest:.2f} s during the export"
