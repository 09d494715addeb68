"""Recorded tracks imported with their own times feed the journeys like live fixes: the trips
of the two real GPX tracks add up to the length gpxpy measures, and the summary's driving
time is plausible.

The car drive runs with the default rules, and its trips must add up to gpxpy's
``length_2d()`` within 2 %. The hike (eight pieces of recording around a lake, at about
1 m/s with long pauses) runs with rules for walking (``TRACKER_MOTION_SPEED=0.3``,
``TRACKER_TRIP_MIN_METERS=100``, ``TRACKER_STOP_MIN_SECONDS=600``); its trips must add up to
gpxpy's moving distance within 2 %: ``length_2d()`` also counts the GPS wander while the
walkers stood still (277 m here), which a stop leaves out by design. The driving time
must lie between gpxpy's moving time less a fifth (gpxpy calls moving anything above
1 km/h) and the track's whole duration."""
import os
import subprocess
import sys
from pathlib import Path

import gpxpy
import pytest

from tracker.testing import ROOT, Stack, wait_for

GPX_DIR = Path(os.environ.get("TRACKER_SHARED_DIR", ROOT.parent / "shared")) / "data" / "gpx"
WALKING = {"TRACKER_MOTION_SPEED": "0.3", "TRACKER_TRIP_MIN_METERS": "100", "TRACKER_STOP_MIN_SECONDS": "600"}


@pytest.mark.parametrize("name, rules, compare", [
    ("around-visnjan-with-car.gpx", {}, "length_2d"),
    ("cerknicko-jezero.gpx", WALKING, "moving_distance"),
])
def test_an_imported_track_gives_trips_as_long_as_the_file(tmp_path, name, rules, compare):
    path = GPX_DIR / name
    if not path.exists():
        pytest.fail(f"the shared GPX tracks are expected in {GPX_DIR}")
    gpx = gpxpy.parse(path.read_text())
    points = [p for track in gpx.tracks for segment in track.segments for p in segment.points]
    expected = gpx.length_2d() if compare == "length_2d" else gpx.get_moving_data().moving_distance
    stack = Stack.create(tmp_path)
    try:
        stack.env.update(rules)
        worker = stack.worker().start()
        worker.wait_ready()
        done = subprocess.run([sys.executable, "-m", "tracker.cli", "import", str(path), "--marker", "hiker"],
                              env=stack.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: stack.history_count() == len(points), 60, "the imported points in history")

        def total() -> float:
            return stack.query("SELECT coalesce(sum(distance_m), 0) FROM trips")[0][0]

        # the last trip ends once the import has been silent for a few seconds
        wait_for(lambda: abs(total() - expected) <= 0.02 * expected, 60,
                 f"trips adding up to {expected:.0f} m")
        first, last = points[0].time, points[-1].time
        status, body = worker.get(f"/api/markers/hiker/summary?from={int(first.timestamp()) - 86_400}"
                                  f"&to={int(last.timestamp()) + 86_400}")
        assert status == 200 and sum(day["trips"] for day in body["periods"]) >= 1
        driving = sum(day["driving_s"] for day in body["periods"])
        assert 0.8 * gpx.get_moving_data().moving_time <= driving <= (last - first).total_seconds()
    finally:
        stack.close()
