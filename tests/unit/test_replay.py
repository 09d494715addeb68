"""What ``tracker replay`` reads, through the import's readers: several segments, points
without a time, other formats than GPX, unreadable files."""
from datetime import timedelta

import orjson
import pytest

from tracker.tracks.replay import BadTrackFile, check, points


def load(path):
    return list(points(check(path)))

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
    ("not xml at all", "unknown format"),
    ("<gpx><trk>", "not valid XML"),
    ('<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"></gpx>', "no track or route points"),
])
def test_unusable_files_say_why(tmp_path, content, message):
    path = tmp_path / "bad.gpx"
    path.write_text(content)
    with pytest.raises(BadTrackFile, match=message):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(BadTrackFile, match="cannot read"):
        load(tmp_path / "absent.gpx")


def test_geojson_and_owntracks_files_replay_too(tmp_path):
    line = {"type": "Feature", "properties": {"coordTimes": ["2024-05-01T10:00:00Z", "2024-05-01T10:00:20Z"]},
            "geometry": {"type": "LineString", "coordinates": [[14.0, 45.0, 100], [14.1, 45.1]]}}
    path = tmp_path / "line.geojson"
    path.write_bytes(orjson.dumps(line))
    assert [(p.offset.total_seconds(), p.lat, p.altitude) for p in load(path)] == [(0, 45.0, 100.0), (20, 45.1, None)]
    rec = tmp_path / "phone.rec"
    rec.write_text("".join(f'2024-05-05T06:00:{s:02d}Z\t*\t{{"_type":"location","tst":{1714888800 + s},'
                           f'"lat":48.{s},"lon":11.5}}\n' for s in (0, 10, 30)))
    assert [p.offset.total_seconds() for p in load(rec)] == [0, 10, 30]


SAME_TIME = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
  <trkpt lat="45.000" lon="14.0"><time>2024-05-01T10:00:00Z</time></trkpt>
  <trkpt lat="45.001" lon="14.0"><time>2024-05-01T10:00:00Z</time></trkpt>
  <trkpt lat="45.002" lon="14.0"><time>2024-05-01T10:00:00Z</time></trkpt>
  <trkpt lat="45.003" lon="14.0"><time>2024-05-01T10:00:00Z</time></trkpt>
  <trkpt lat="45.004" lon="14.0"><time>2024-05-01T10:00:10Z</time></trkpt>
</trkseg></trk></gpx>
"""


def replayed(path):
    """The fixes ``tracker replay`` would send for the file, through the one validation."""
    from datetime import datetime, timezone

    from tracker.tracks.replay import records as replay_records
    from tracker.positions.model import parse_position

    start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    return [parse_position(value, now=start + timedelta(days=1))  # raises if the worker would refuse it
            for _, _, value in replay_records(lambda: load(path), "clock", 1.0, start, False)]


def test_points_sharing_one_timestamp_give_no_speed_the_validator_rejects(tmp_path):
    path = tmp_path / "clock.gpx"
    path.write_text(SAME_TIME)
    fixes = replayed(path)
    assert [f.lat for f in fixes] == [45.0, 45.001, 45.002, 45.003, 45.004]
    # 111 m in 1 ms would be 111,000 m/s: no speed at all rather than a fix in the dead letters.
    assert [f.speed for f in fixes[:4]] == [None, None, None, None]
    assert fixes[4].speed == pytest.approx(111.2 / 9.997, abs=0.05)  # over the 10 s step to the last point
    assert all(f.heading == 0.0 for f in fixes[1:])


def test_a_track_with_its_own_timing_keeps_its_speeds(tmp_path):
    path = tmp_path / "t.gpx"
    path.write_text(SAME_TIME.replace("10:00:00Z", "10:00:{}0Z").replace("10:00:10Z", "10:00:40Z").format(0, 1, 2, 3))
    assert [f.speed for f in replayed(path)] == [None, 11.12, 11.12, 11.12, 11.12]


def test_a_derived_speed_is_one_the_validator_takes_or_none():
    from tracker.tracks.derived_motion import derived_speed

    assert derived_speed(45.0, 14.0, 45.001, 14.0, 1.0) == 111.19
    assert derived_speed(45.0, 14.0, 45.001, 14.0, 0.999) is None  # under a second
    assert derived_speed(45.0, 14.0, 45.001, 14.0, 0.0) is None
    assert derived_speed(45.0, 14.0, 46.0, 14.0, 10.0) is None  # 11 km/s: above the validator's 1,000 m/s
