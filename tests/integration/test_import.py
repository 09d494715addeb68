"""``tracker import`` of real GPX tracks through the broker and a worker: every point in the
history with the file's own time, and ``latest`` not moved back by the older fixes."""
import os
import subprocess
import sys
from pathlib import Path

import gpxpy
import pytest

from tracker.testing import ROOT, settle_latest, wait_for

TRACKER = str(Path(sys.executable).with_name("tracker"))
GPX_DIR = Path(os.environ.get("TRACKER_SHARED_DIR", ROOT.parent / "shared")) / "data" / "gpx"
NAMES = ("cerknicko-jezero.gpx", "around-visnjan-with-car.gpx")


def run(stack, *args):
    return subprocess.run([TRACKER, *map(str, args)], env=stack.env, capture_output=True, text=True, timeout=60)


def test_import_stores_every_point_with_its_own_time_and_latest_stays_on_the_newer_fix(stack):
    paths = [GPX_DIR / name for name in NAMES]
    if not all(path.exists() for path in paths):
        pytest.fail(f"the shared GPX tracks are expected in {GPX_DIR}")
    expected = {}
    for path in paths:
        gpx = gpxpy.parse(path.read_text())
        for point in (p for track in gpx.tracks for segment in track.segments for p in segment.points):
            expected[point.time] = (point.latitude, point.longitude)
    worker = stack.worker().start()
    worker.wait_ready()

    now = run(stack, "send", "--marker", "imp-1", "--lat", "45.81", "--lon", "15.98", "--source", "now")
    assert now.returncode == 0, now.stderr
    assert settle_latest(worker, {"imp-1": (45.81, 15.98)}, timeout=30)["imp-1"] == (45.81, 15.98)

    result = run(stack, "import", *paths, "--marker", "imp-1")
    assert result.returncode == 0, result.stderr
    assert f"imported {len(expected)} points as imp-1" in result.stdout
    assert f"{len(expected)}/{len(expected)} sent" in result.stderr  # the progress line

    wait_for(lambda: stack.query("SELECT count(*) FROM positions WHERE marker_id = 'imp-1'")[0][0] > len(expected),
             30, f"{len(expected) + 1} rows of imp-1 in positions", interval=0.2)
    stack.wait_pipeline_committed(30)
    rows = stack.query("SELECT fix_time, lat, lon, source FROM positions WHERE marker_id = 'imp-1' AND source <> 'now'")
    assert {fix_time: (lat, lon) for fix_time, lat, lon, _ in rows} == expected
    assert len(rows) == len(expected) and {source for *_, source in rows} == {"import"}

    status, body = worker.get("/api/markers/imp-1")
    assert status == 200 and (body["lat"], body["lon"], body["source"]) == (45.81, 15.98, "now")
