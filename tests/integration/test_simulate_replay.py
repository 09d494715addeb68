"""``tracker simulate`` and ``tracker replay`` send exactly what they promise, to the real broker."""
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import gpxpy
import pytest

from tracker.testing import ROOT

TRACKER = str(Path(sys.executable).with_name("tracker"))
GPX_DIR = Path(os.environ.get("TRACKER_SHARED_DIR", ROOT.parent / "shared")) / "data" / "gpx"


def run(stack, *args):
    return subprocess.run([TRACKER, *args], env=stack.env, capture_output=True, text=True, timeout=120)


def sent(stack, expect):
    return stack.read_topic(stack.settings.topic, expect=expect, timeout=20)


@pytest.fixture()
def fresh_topic(stack):
    """Each test reads a topic of its own."""
    stack.env["TRACKER_TOPIC"] = f"{stack.name}.{uuid.uuid4().hex[:12]}"
    return stack


def by_marker(records):
    times = defaultdict(list)
    for record in records:
        times[record["marker_id"]].append(datetime.fromisoformat(record["time"]))
    return times


def test_simulate_sends_the_count_markers_and_rising_times(fresh_topic):
    result = run(fresh_topic, "simulate", "--markers", "7", "--rate", "300", "--duration", "2",
                 "--seed", "3", "--prefix", "sim-t-", "--area", "45.8,15.9,3")
    assert result.returncode == 0, result.stderr
    assert "sent 600 positions for 7 markers" in result.stdout
    records = sent(fresh_topic, 600)
    assert len(records) == 600
    times = by_marker(records)
    assert sorted(times) == [f"sim-t-{i:05d}" for i in range(7)]
    for marker, stamps in times.items():
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), marker
    for record in records:
        assert abs(record["lat"] - 45.8) < 0.5 and abs(record["lon"] - 15.9) < 0.5
        assert 0 <= record["speed"] <= 130 / 3.6


def test_simulate_injects_duplicates_and_late_fixes_when_asked(fresh_topic):
    result = run(fresh_topic, "simulate", "--markers", "5", "--rate", "400", "--duration", "1",
                 "--seed", "4", "--prefix", "inj-", "--duplicates", "0.1", "--out-of-order", "0.1")
    assert result.returncode == 0, result.stderr
    records = sent(fresh_topic, 400)
    assert len(records) == 400
    payloads = [tuple(sorted(r.items())) for r in records]
    assert len(set(payloads)) < len(payloads)  # exact duplicates
    late = sum(1 for stamps in by_marker(records).values() for a, b in zip(stamps, stamps[1:]) if b < a)
    assert late > 0
    assert "duplicate" in result.stdout and "late" in result.stdout


@pytest.mark.parametrize("name", ["cerknicko-jezero.gpx", "around-visnjan-with-car.gpx"])
def test_replay_sends_every_point_of_a_real_track(fresh_topic, name):
    path = GPX_DIR / name
    if not path.exists():
        pytest.fail(f"the shared GPX tracks are expected in {GPX_DIR}")
    gpx = gpxpy.parse(path.read_text())
    expected = [p for t in gpx.tracks for s in t.segments for p in s.points]
    result = run(fresh_topic, "replay", str(path), "--marker", "gpx-1", "--speedup", "100000")
    assert result.returncode == 0, result.stderr
    records = sent(fresh_topic, len(expected))
    assert len(records) == len(expected)
    assert {r["marker_id"] for r in records} == {"gpx-1"}
    assert [(r["lat"], r["lon"]) for r in records] == [(p.latitude, p.longitude) for p in expected]
    stamps = by_marker(records)["gpx-1"]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_replay_paces_by_the_tracks_own_timing(fresh_topic, tmp_path):
    path = tmp_path / "slow.gpx"
    path.write_text("""<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
      <trkpt lat="1" lon="1"><time>2024-01-01T00:00:00Z</time></trkpt>
      <trkpt lat="1.001" lon="1"><time>2024-01-01T00:00:10Z</time></trkpt>
      <trkpt lat="1.002" lon="1"><time>2024-01-01T00:00:20Z</time></trkpt>
    </trkseg></trk></gpx>""")
    result = run(fresh_topic, "replay", str(path), "--marker", "paced", "--speedup", "10")
    assert result.returncode == 0, result.stderr
    elapsed = float(result.stdout.rsplit(" in ", 1)[1].split(" s")[0])
    assert 1.8 <= elapsed < 10
    stamps = by_marker(sent(fresh_topic, 3))["paced"]
    assert [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])] == [1.0, 1.0]


def test_replay_of_a_bad_file_is_one_line_and_non_zero(fresh_topic, tmp_path):
    bad = tmp_path / "bad.gpx"
    bad.write_text("<gpx><trk>")
    for path in (bad, tmp_path / "absent.gpx"):
        result = run(fresh_topic, "replay", str(path), "--marker", "x")
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("tracker: ")
