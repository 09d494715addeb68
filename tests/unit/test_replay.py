"""GPX loading: several segments, points without a time, unreadable files."""
from datetime import timedelta

import pytest

from tracker.replay import BadTrack, load

GPX = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
<trk><name>t</name>
<trkseg>
  <trkpt lat="45.0" lon="14.0"></trkpt>
  <trkpt lat="45.1" lon="14.1"><time>2024-05-01T10:00:00Z</time></trkpt>
  <trkpt lat="45.2" lon="14.2"></trkpt>
  <trkpt lat="45.3" lon="14.3"></trkpt>
  <trkpt lat="45.4" lon="14.4"><time>2024-05-01T10:00:30Z</time></trkpt>
</trkseg>
<trkseg>
  <trkpt lat="46.0" lon="15.0"><time>2024-05-01T10:05:00Z</time></trkpt>
  <trkpt lat="46.1" lon="15.1"></trkpt>
</trkseg>
</trk></gpx>
"""


def test_segments_are_joined_and_missing_times_filled(tmp_path):
    path = tmp_path / "t.gpx"
    path.write_text(GPX)
    points = load(path)
    assert [p.lat for p in points] == [45.0, 45.1, 45.2, 45.3, 45.4, 46.0, 46.1]
    assert [p.offset.total_seconds() for p in points] == [0, 1, 11, 21, 31, 301, 302]


def test_a_file_without_times_is_one_point_a_second(tmp_path):
    path = tmp_path / "t.gpx"
    path.write_text(GPX.replace("<time>", "<!--").replace("</time>", "-->"))
    assert [p.offset for p in load(path)] == [timedelta(seconds=i) for i in range(7)]


@pytest.mark.parametrize("content, message", [
    ("not xml at all", "not valid GPX"),
    ('<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"></gpx>', "no track or route points"),
])
def test_unusable_files_say_why(tmp_path, content, message):
    path = tmp_path / "bad.gpx"
    path.write_text(content)
    with pytest.raises(BadTrack, match=message):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(BadTrack, match="cannot read"):
        load(tmp_path / "absent.gpx")
