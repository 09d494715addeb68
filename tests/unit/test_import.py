"""``tracker import``: what each kind of file sends, and the one-line refusals.

The command runs through ``tracker.cli.main``; instead of Kafka, the records it would send
are collected and run through the one validation function, as the worker would."""
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from tracker.cli.main import main
from tracker.positions.model import parse_position

NOW = datetime.now(timezone.utc)


@pytest.fixture()
def sent(monkeypatch):
    """The records ``tracker import`` sends, decoded; each one checked by the validator."""
    records = []

    class NoKafka:
        async def __aenter__(self):
            return object()

        async def __aexit__(self, *exc_info):
            return None

    async def send_all(producer, topic, key, values, total, label="import"):
        for value in values:
            record = orjson.loads(value)
            assert key == record["marker_id"].encode()
            parse_position(value, now=NOW)  # raises if the worker would refuse it
            records.append(record)
        assert len(records) == total
        return len(records), 0.01

    monkeypatch.setattr("tracker.stream.producer.started", lambda config, topic: NoKafka())
    monkeypatch.setattr("tracker.tracks.importer.send_all", send_all)
    return records


def run(capsys, *args):
    code = main(["import", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    return path


def times(records):
    return [record["time"] for record in records]


def refused(capsys, *args) -> str:
    """The one line on stderr of a command that ended with exit code 2."""
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert err.startswith("tracker: ") and err.count("\n") == 1, err
    return err


GPX_10 = """<?xml version="1.0"?>
<gpx version="1.0" creator="test" xmlns="http://www.topografix.com/GPX/1/0">
<trk><trkseg>
  <trkpt lat="45.0" lon="14.0"><ele>120.5</ele><time>2024-05-01T10:00:00Z</time><course>90.5</course><speed>3.5</speed></trkpt>
  <trkpt lat="45.0" lon="14.001"><ele>121</ele><time>2024-05-01T10:00:10Z</time><speed>7.8</speed></trkpt>
  <trkpt lat="45.0" lon="14.002"><time>2024-05-01T10:00:20Z</time></trkpt>
</trkseg></trk></gpx>
"""


def test_gpx_10_track_with_its_own_times_and_speeds(tmp_path, capsys, sent):
    code, out, err = run(capsys, write(tmp_path, "old.gpx", GPX_10), "--marker", "bike-1")
    assert code == 0, err
    assert times(sent) == ["2024-05-01T10:00:00Z", "2024-05-01T10:00:10Z", "2024-05-01T10:00:20Z"]
    assert [(r["lat"], r["lon"]) for r in sent] == [(45.0, 14.0), (45.0, 14.001), (45.0, 14.002)]
    assert [r.get("speed") for r in sent] == [3.5, 7.8, 7.86]  # the file's own, else derived
    assert [r.get("heading") for r in sent] == [90.5, 90.0, 90.0]
    assert [r.get("altitude") for r in sent] == [120.5, 121.0, None]
    assert {r["source"] for r in sent} == {"import"} and {r["marker_id"] for r in sent} == {"bike-1"}
    assert "old.gpx: 3 points (GPX), 2024-05-01T10:00:00Z to 2024-05-01T10:00:20Z" in out
    assert "imported 3 points as bike-1" in out


GPX_11 = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v2">
<wpt lat="1" lon="1"><name>not part of the track</name></wpt>
<trk><name>t</name>
<trkseg>
  <trkpt lat="45.1" lon="14.1"><time>2024-05-01T12:00:00+02:00</time>
    <extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>4.25</gpxtpx:speed><gpxtpx:course>12</gpxtpx:course>
    </gpxtpx:TrackPointExtension></extensions></trkpt>
  <trkpt lat="45.1001" lon="14.1"><time>2024-05-01T10:00:01.5Z</time></trkpt>
</trkseg>
<trkseg>
  <trkpt lat="45.3" lon="14.3"><time>2024-05-01T10:05:00Z</time></trkpt>
</trkseg>
</trk>
<rte><rtept lat="2" lon="2"/></rte>
</gpx>
"""


def test_gpx_11_track_segments_joined_extensions_read_routes_and_waypoints_left_out(tmp_path, capsys, sent):
    code, out, err = run(capsys, write(tmp_path, "new.gpx", GPX_11), "--marker", "car-1")
    assert code == 0, err
    assert [(r["lat"], r["lon"]) for r in sent] == [(45.1, 14.1), (45.1001, 14.1), (45.3, 14.3)]
    assert times(sent) == ["2024-05-01T10:00:00Z", "2024-05-01T10:00:01.500000Z", "2024-05-01T10:05:00Z"]
    assert sent[0]["speed"] == 4.25 and sent[0]["heading"] == 12.0
    assert sent[1]["speed"] == 7.41  # derived: 11.1 m in 1.5 s
    assert sent[2]["speed"] == pytest.approx(27_250 / 298.5, rel=0.01)  # 27 km in 298.5 s



GPX_ROUTE = """<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><rte>
  <rtept lat="46.0" lon="15.0"><time>2024-05-02T08:00:00Z</time></rtept>
  <rtept lat="46.1" lon="15.1"><time>2024-05-02T08:30:00Z</time></rtept>
</rte><wpt lat="1" lon="1"/></gpx>"""


def test_route_only_gpx_sends_the_route(tmp_path, capsys, sent):
    code, out, err = run(capsys, write(tmp_path, "route.gpx", GPX_ROUTE), "--marker", "r-1")
    assert code == 0, err
    assert [(r["lat"], r["lon"], r["time"]) for r in sent] == [
        (46.0, 15.0, "2024-05-02T08:00:00Z"), (46.1, 15.1, "2024-05-02T08:30:00Z")]


def test_waypoints_only_gpx_is_refused(tmp_path, capsys, sent):
    path = write(tmp_path, "places.gpx", """<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">
      <wpt lat="45" lon="14"><time>2024-05-01T10:00:00Z</time></wpt></gpx>""")
    err = refused(capsys, path, "--marker", "w-1")
    assert "places.gpx" in err and "only waypoints" in err
    assert sent == []


GEOJSON_LINES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"coordTimes": ["2024-05-03T07:00:00Z", "2024-05-03T07:00:05Z"]},
     "geometry": {"type": "LineString", "coordinates": [[14.0, 45.0, 100], [14.0005, 45.0]]}},
    {"type": "Feature", "properties": {"name": "togeojson", "coordTimes": [
        ["2024-05-03T07:01:00Z"], ["2024-05-03T07:02:00Z", "2024-05-03T07:03:00Z"]]},
     "geometry": {"type": "MultiLineString", "coordinates": [[[14.001, 45.0]], [[14.002, 45.0], [14.003, 45.0]]]}},
    {"type": "Feature", "properties": {"name": "a lake"},
     "geometry": {"type": "Polygon", "coordinates": [[[14, 45], [14.1, 45], [14.1, 45.1], [14, 45]]]}},
]}


def test_geojson_linestring_and_multilinestring_with_coord_times(tmp_path, capsys, sent):
    path = write(tmp_path, "track.geojson", orjson.dumps(GEOJSON_LINES).decode())
    code, out, err = run(capsys, path, "--marker", "g-1")
    assert code == 0, err
    assert [r["lon"] for r in sent] == [14.0, 14.0005, 14.001, 14.002, 14.003]
    assert times(sent) == ["2024-05-03T07:00:00Z", "2024-05-03T07:00:05Z", "2024-05-03T07:01:00Z",
                           "2024-05-03T07:02:00Z", "2024-05-03T07:03:00Z"]
    assert sent[0]["altitude"] == 100.0 and "altitude" not in sent[1]


def test_geojson_point_features_with_a_time_property(tmp_path, capsys, sent):
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [15.0 + i / 1000, 46.0]},
                 "properties": {"time": f"2024-05-04T09:00:0{i}Z", "speed": 2.5 if i == 0 else None,
                                "battery": 80 - i}} for i in range(3)]
    path = write(tmp_path, "points.json", orjson.dumps({"type": "FeatureCollection", "features": features}).decode())
    code, out, err = run(capsys, path, "--marker", "p-1")
    assert code == 0, err
    assert times(sent) == ["2024-05-04T09:00:00Z", "2024-05-04T09:00:01Z", "2024-05-04T09:00:02Z"]
    assert sent[0]["speed"] == 2.5 and sent[1]["speed"] == 77.24  # 77.24 m in 1 s
    assert [r["battery"] for r in sent] == [80.0, 79.0, 78.0]


REC = (
    '2024-05-05T06:00:00Z\t*                 \t{"_type":"location","tst":1714888800,"lat":48.1,"lon":11.5,'
    '"vel":36,"cog":270,"alt":520,"acc":12,"batt":64,"tid":"ab"}\n'
    '2024-05-05T06:00:05Z\tlwt               \t{"_type":"lwt","tst":1714888805}\n'
    '2024-05-05T06:00:10Z\t*                 \t{"_type":"location","tst":1714888810,"lat":48.1001,"lon":11.5,'
    '"vel":-1,"cog":-1,"batt":63}\n'
)


def test_owntracks_recorder_file(tmp_path, capsys, sent):
    code, out, err = run(capsys, write(tmp_path, "2024-05.rec", REC), "--marker", "phone-1")
    assert code == 0, err
    assert len(sent) == 2  # the lwt line carries no position
    assert times(sent) == ["2024-05-05T06:00:00Z", "2024-05-05T06:00:10Z"]
    first, second = sent
    assert (first["speed"], first["heading"], first["altitude"], first["accuracy"], first["battery"]) == \
        (10.0, 270.0, 520.0, 12.0, 64.0)  # 36 km/h is 10 m/s
    assert second["speed"] == pytest.approx(1.11, abs=0.01)  # unknown (-1): derived, 11 m in 10 s
    assert second["heading"] == 0.0 and second["battery"] == 63.0


UNTIMED = """<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
  <trkpt lat="45.0" lon="14.0"/><trkpt lat="45.001" lon="14.0"/><trkpt lat="45.002" lon="14.0"/>
</trkseg></trk></gpx>"""


def test_a_file_without_times_is_refused(tmp_path, capsys, sent):
    err = refused(capsys, write(tmp_path, "untimed.gpx", UNTIMED), "--marker", "u-1")
    assert "untimed.gpx" in err and "no point has a time" in err and "--start" in err
    assert sent == []


def test_start_and_interval_give_files_without_times_their_times(tmp_path, capsys, sent):
    first = write(tmp_path, "a.gpx", UNTIMED)
    second = write(tmp_path, "b.gpx", UNTIMED)
    timed = write(tmp_path, "timed.gpx", GPX_ROUTE)
    code, out, err = run(capsys, first, timed, second, "--marker", "u-1",
                         "--start", "2024-05-06T10:00:00Z", "--interval", "5")
    assert code == 0, err
    assert times(sent) == [  # counted on across the files without times; the timed one keeps its own
        "2024-05-06T10:00:00Z", "2024-05-06T10:00:05Z", "2024-05-06T10:00:10Z",
        "2024-05-02T08:00:00Z", "2024-05-02T08:30:00Z",
        "2024-05-06T10:00:15Z", "2024-05-06T10:00:20Z", "2024-05-06T10:00:25Z"]
    assert "a.gpx: 3 points (GPX), 2024-05-06T10:00:00Z to 2024-05-06T10:00:10Z (times from --start, 5 s apart)" in out
    assert refused(capsys, first, "--marker", "u-1", "--start", "2024-05-06T10:00:00Z").startswith(
        "tracker: --start and --interval go together")
    assert "--interval" in refused(capsys, first, "--marker", "u-1", "--start", "2024-05-06", "--interval", "0")


def test_points_without_a_time_between_timed_ones_are_interpolated_and_flagged(tmp_path, capsys, sent):
    path = write(tmp_path, "gaps.gpx", """<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
      <trkpt lat="45.0" lon="14.0"><time>2024-05-01T10:00:00Z</time></trkpt>
      <trkpt lat="45.001" lon="14.0"/><trkpt lat="45.002" lon="14.0"/>
      <trkpt lat="45.003" lon="14.0"><time>2024-05-01T10:00:30Z</time></trkpt>
      <trkpt lat="45.004" lon="14.0"/>
    </trkseg></trk></gpx>""")
    code, out, err = run(capsys, path, "--marker", "i-1")
    assert code == 0, err
    assert times(sent) == ["2024-05-01T10:00:00Z", "2024-05-01T10:00:10Z", "2024-05-01T10:00:20Z",
                           "2024-05-01T10:00:30Z", "2024-05-01T10:00:31Z"]
    assert [r["source"] for r in sent] == ["import", "import:interpolated", "import:interpolated", "import",
                                           "import:interpolated"]
    assert "(3 interpolated)" in out


def test_points_sharing_one_timestamp_keep_it_and_get_no_speed_the_validator_rejects(tmp_path, capsys, sent):
    points = "".join(f'<trkpt lat="{45 + i / 100}" lon="14.0"><time>2024-05-01T10:00:00Z</time></trkpt>'
                     for i in range(4))
    path = write(tmp_path, "clock.gpx", f'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
                                        f'<trk><trkseg>{points}</trkseg></trk></gpx>')
    code, out, err = run(capsys, path, "--marker", "c-1")
    assert code == 0, err
    assert len(sent) == 4 and all("speed" not in r for r in sent)  # and every one passed the validator
    assert "3 points share their time with another" in out


def test_dry_run_says_what_it_would_send_and_sends_nothing(tmp_path, capsys, sent, monkeypatch):
    class Unreachable:
        async def __aenter__(self):
            raise AssertionError("a dry run must not connect to Kafka")

    monkeypatch.setattr("tracker.stream.producer.started", lambda config, topic: Unreachable())
    code, out, err = run(capsys, write(tmp_path, "old.gpx", GPX_10), write(tmp_path, "route.gpx", GPX_ROUTE),
                         "--marker", "d-1", "--dry-run")
    assert code == 0, err
    assert sent == []
    assert out.splitlines() == [
        f"{tmp_path}/old.gpx: 3 points (GPX), 2024-05-01T10:00:00Z to 2024-05-01T10:00:20Z",
        f"{tmp_path}/route.gpx: 2 points (GPX), 2024-05-02T08:00:00Z to 2024-05-02T08:30:00Z",
        "dry run: 5 points would be sent as d-1; nothing sent",
    ]


@pytest.mark.parametrize("name, content, reason", [
    ("broken.gpx", "<gpx><trk>", "not valid XML"),
    ("broken.geojson", '{"type": "Feature", ', "not valid JSON"),
    ("notes.txt", "just some notes\n", "unknown format"),
    ("empty.gpx", '<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"></gpx>', "no track or route points"),
    ("empty.geojson", '{"type": "FeatureCollection", "features": []}', "no points"),
    ("html.gpx", '<html xmlns="http://www.w3.org/1999/xhtml"/>', "not GPX, KML or TCX"),
    ("entities.gpx", '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>' + GPX_ROUTE,
     "a DOCTYPE is not accepted"),
    ("truncated.json", '{"locations": [{"latitudeE7": 1, "longitudeE7": 1, "timestamp": "2024-05-01T10:00:00Z"}, {"lat',
     "not valid JSON"),
    ("bad.gpx", GPX_10.replace('lat="45.0"', 'lat="95.0"'), "no valid point: 3 skipped: lat outside [-90, 90] "
                                                           "(3, the first at point 1)"),
    ("bad.rec", "2024-05-05T06:00:00Z\t*\t{not json\n", "no valid point: 1 skipped: JSON not valid (1, at line 1)"),
    ("end.gpx", GPX_ROUTE.replace("2024-05-02T08:00:00Z", "9999-12-31T23:00:00-05:00")
     .replace("2024-05-02T08:30:00Z", "9999-12-31T23:59:59.999999Z"), "no valid point: 2 skipped: time"),
    ("future.gpx", GPX_ROUTE.replace("2024-05-02T08:00:00Z", (NOW + timedelta(hours=1)).isoformat())
     .replace("2024-05-02T08:30:00Z", (NOW + timedelta(hours=2)).isoformat()),
     "2 skipped: time more than 5 min from now"),
])
def test_bad_files_are_one_line_naming_the_file_and_exit_2(tmp_path, capsys, sent, name, content, reason):
    good = write(tmp_path, "good.gpx", GPX_10)
    err = refused(capsys, good, write(tmp_path, name, content), "--marker", "b-1")
    assert name in err and reason in err, err
    assert sent == []  # nothing of the good file either


def test_a_missing_file_and_a_bad_marker_id(tmp_path, capsys, sent):
    assert "cannot read" in refused(capsys, tmp_path / "absent.gpx", "--marker", "m-1")
    err = refused(capsys, write(tmp_path, "old.gpx", GPX_10), "--marker", "no spaces")
    assert "not a marker id" in err and "1 to 64 characters" in err


def test_a_file_with_some_bad_points_sends_the_rest_and_says_how_many_were_skipped_and_why(tmp_path, capsys, sent):
    content = GPX_10.replace('lat="45.0" lon="14.001"', 'lat="95.0" lon="14.001"').replace(
        "2024-05-01T10:00:20Z", (NOW + timedelta(hours=1)).isoformat())
    code, out, err = run(capsys, write(tmp_path, "partly.gpx", content), "--marker", "s-1")
    assert code == 0, err
    assert times(sent) == ["2024-05-01T10:00:00Z"]
    assert ("partly.gpx: 1 points (GPX), 2024-05-01T10:00:00Z to 2024-05-01T10:00:00Z; 2 skipped: "
            "lat outside [-90, 90] (1, at point 2); time more than 5 min from now (1, at point 2)") in out


def test_every_format_through_the_command(tmp_path, capsys, sent):
    """One file of each reader, with the kind of times it has, through ``tracker import``."""
    from tests.unit.test_track_formats import KML, OSMAND_GPX, RECORDS, TCX, TIMELINE

    files = {
        "a.gpx": OSMAND_GPX,
        "b.kml": KML,
        "c.tcx": TCX,
        "d.csv": "time,lat,lon\n2024-05-05T06:00:00Z,48.1,11.5\n2024-05-05T06:00:10Z,48.2,11.6\n",
        "e.rec": REC,
        "Records.json": orjson.dumps(RECORDS).decode(),
        "Timeline.json": orjson.dumps(TIMELINE).decode(),
    }
    paths = [write(tmp_path, name, content) for name, content in files.items()]
    code, out, err = run(capsys, *paths, "--marker", "all-1", "--interval", "60")
    assert code == 0, err
    counts = {line.split(": ")[0].rpartition("/")[2]: int(line.split(": ")[1].split()[0])
              for line in out.splitlines() if " points (" in line}
    assert counts == {"a.gpx": 2, "b.kml": 10, "c.tcx": 2, "d.csv": 2, "e.rec": 2, "Records.json": 3,
                      "Timeline.json": 7}
    assert len(sent) == sum(counts.values())
    kml = sent[2:12]  # the LineString timed from its TimeSpan, 60 s apart; the Point after it interpolated
    assert [r["time"] for r in kml[6:9]] == ["2024-05-03T07:00:00Z", "2024-05-03T07:01:00Z", "2024-05-03T07:02:00Z"]
    assert kml[9]["source"] == "import:interpolated" and kml[8]["source"] == "import"
    assert sent[12]["attributes"] == {"heart_rate": 120, "cadence": 80, "power": 210}
    assert sent[13]["attributes"] == {"track_break": True}  # the TCX file's second track
    assert "Records.json: 3 points (Google Takeout Records.json)" in out


def test_points_without_a_time_after_the_last_timed_one_may_not_reach_the_future(tmp_path, capsys, sent):
    almost = (datetime.now(timezone.utc) + timedelta(minutes=4)).isoformat()
    content = GPX_ROUTE.replace('<rtept lat="46.1" lon="15.1"><time>2024-05-02T08:30:00Z</time></rtept>',
                                '<rtept lat="46.1" lon="15.1"/>' * 120).replace("2024-05-02T08:00:00Z", almost)
    err = refused(capsys, write(tmp_path, "late.gpx", content), "--marker", "l-1")
    assert "late.gpx: its times reach" in err and "more than 5 min from now" in err
