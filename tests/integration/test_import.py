"""``tracker import`` through the broker and a worker: every point of real GPX tracks in the
history with the file's own time, ``latest`` not moved back by the older fixes; every format
landing its points with their times, and a second import adding nothing."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
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


def test_every_format_lands_its_points_with_their_times_and_a_second_import_adds_nothing(stack, tmp_path):
    """One file per format, as the apps write them (``bench.track_files``), imported through
    the broker and a worker into the history; then the same files again."""
    import zipfile

    from bench.track_files import WRITERS, track, write_records

    first = datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
    fixes = track(20, first)
    whole_seconds = [first + timedelta(seconds=i) for i in range(20)]
    expected = {}  # marker: its times
    paths = []
    for name, (suffix, writer) in WRITERS.items():
        marker = "fmt-" + "".join(c for c in name.lower() if c.isalnum())[:20]
        path = tmp_path / marker / f"track{suffix}"
        path.parent.mkdir()
        assert writer(path, fixes) == 20
        paths.append((marker, path))
        expected[marker] = whole_seconds
        if writer is write_records:  # its times carry milliseconds (record i at +i ms), as Google writes them
            records = path
            expected[marker] = [t + timedelta(milliseconds=i) for i, t in enumerate(whole_seconds)]
    archive = tmp_path / "takeout-20240401T000000Z-001.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as takeout:
        takeout.write(records, "Takeout/Location History (Timeline)/Records.json")
    paths.append(("fmt-takeoutzip", archive))
    expected["fmt-takeoutzip"] = [t + timedelta(milliseconds=i) for i, t in enumerate(whole_seconds)]
    worker = stack.worker().start()
    worker.wait_ready()

    def import_all():
        for marker, path in paths:
            result = run(stack, "import", path, "--marker", marker)
            assert result.returncode == 0, (path.name, result.stderr)
            assert "imported 20 points" in result.stdout, result.stdout

    def stored() -> dict:
        rows = stack.query("SELECT marker_id, fix_time FROM positions WHERE marker_id LIKE %s ORDER BY fix_time", "fmt-%")
        found = {}
        for marker, fix_time in rows:
            found.setdefault(marker, []).append(fix_time)
        return found

    import_all()
    wait_for(lambda: sum(map(len, stored().values())) >= 20 * len(paths), 60, "every format in positions")
    stack.wait_pipeline_committed(60)
    assert stored() == expected
    import_all()
    stack.wait_pipeline_committed(60)
    assert stored() == expected  # one point per marker and time: nothing added
