"""Our GPX reader against gpxpy, the reference, on real recorded tracks (shared/data/gpx): the
same points, in the same order, with the same times, elevations and segments."""
import os
from datetime import timezone
from pathlib import Path

import gpxpy
import pytest

from tracker.testing import ROOT
from tracker.tracks.files import Reading, read, sources

GPX_DIR = Path(os.environ.get("TRACKER_SHARED_DIR", ROOT.parent / "shared")) / "data" / "gpx"


@pytest.mark.parametrize("name", ["cerknicko-jezero.gpx", "around-visnjan-with-car.gpx"])
def test_our_gpx_reader_reads_what_gpxpy_reads(name):
    path = GPX_DIR / name
    if not path.exists():
        pytest.fail(f"the shared GPX tracks are expected in {GPX_DIR}")
    gpx = gpxpy.parse(path.read_text())
    expected = []
    for track in gpx.tracks:
        for segment in track.segments:
            for i, p in enumerate(segment.points):
                expected.append((p.latitude, p.longitude, p.elevation,
                                 p.time.astimezone(timezone.utc) if p.time else None,
                                 i == 0 and bool(expected)))  # a segment after points is a new piece
    reading = Reading()
    ours = [(p.lat, p.lon, p.altitude, p.time, p.track_break) for source in sources(path) for p in read(source, reading)]
    assert len(expected) > 50
    assert ours == expected
    assert reading.skips.total == 0
