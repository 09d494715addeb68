"""Each reader of ``tracker.tracks.formats`` on files as the apps that make them write them
(made here from the formats' documentation), and the points it gives: places, times,
fields, attributes, segments, and the points it skips with the reason."""
import io
import zipfile
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from tracker.tracks.files import BadTrackFile, Reading, read, sources


def utc(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def points_of(tmp_path, name, content, interval=None):
    """(points, reading) of a file written with ``content`` (text or bytes)."""
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    reading = Reading(interval=interval)
    found = [point for source in sources(path) for point in read(source, reading)]
    return found, reading


def places(points):
    return [(p.lat, p.lon) for p in points]


def times(points):
    return [p.time for p in points]


def refusal(tmp_path, name, content) -> str:
    with pytest.raises(BadTrackFile) as caught:
        points_of(tmp_path, name, content)
    message = str(caught.value)
    assert "\n" not in message and name in message
    return message


# --- GPX -------------------------------------------------------------------------------------
OSMAND_GPX = """
<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>
<gpx version="1.1" creator="OsmAnd~ 4.7.10" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:osmand="https://osmand.net" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <metadata><name>2024-05-01_10-00_Wed</name></metadata>
  <trk><trkseg>
    <trkpt lat="45.8150000" lon="15.9819000"><ele>120.4</ele><time>2024-05-01T10:00:00Z</time><hdop>3.2</hdop>
      <extensions><osmand:speed>4.2</osmand:speed><osmand:heading>181</osmand:heading></extensions></trkpt>
    <trkpt lat="45.8151000" lon="15.9819000"><ele>121.0</ele><time>2024-05-01T10:00:05Z</time></trkpt>
  </trkseg></trk>
</gpx>
"""


def test_gpx_from_osmand_with_a_blank_line_before_the_declaration(tmp_path):
    points, reading = points_of(tmp_path, "osmand.gpx", OSMAND_GPX)
    assert places(points) == [(45.815, 15.9819), (45.8151, 15.9819)]
    assert times(points) == [utc("2024-05-01T10:00:00Z"), utc("2024-05-01T10:00:05Z")]
    assert (points[0].speed, points[0].heading, points[0].altitude) == (4.2, 181.0, 120.4)
    assert points[0].attributes == {"hdop": 3.2} and points[1].attributes is None
    assert reading.format == "GPX"


GARMIN_GPX = """\ufeff<?xml version="1.0" encoding="UTF-8"?>
<g:gpx version="1.1" creator="Garmin Connect" xmlns:g="http://www.topografix.com/GPX/1/1"
  xmlns:ns3="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
  <g:trk><g:name>Morning Run</g:name><g:trkseg>
    <g:trkpt lat="46.05" lon="14.50"><g:ele>295.2</g:ele><g:time>2024-06-01T05:30:00.000Z</g:time>
      <g:extensions><ns3:TrackPointExtension><ns3:atemp>19.0</ns3:atemp><ns3:hr>141</ns3:hr><ns3:cad>84</ns3:cad>
      </ns3:TrackPointExtension></g:extensions></g:trkpt>
  </g:trkseg><g:trkseg>
    <g:trkpt lat="46.06" lon="14.51"><g:time>2024-06-01T05:40:00.000Z</g:time></g:trkpt>
    <g:trkpt lat="95.0" lon="14.51"><g:time>2024-06-01T05:40:01.000Z</g:time></g:trkpt>
  </g:trkseg></g:trk>
</g:gpx>"""


def test_gpx_from_garmin_with_a_bom_a_namespace_prefix_heart_rate_and_two_segments(tmp_path):
    points, reading = points_of(tmp_path, "run.gpx", GARMIN_GPX)
    assert places(points) == [(46.05, 14.5), (46.06, 14.51)]
    assert points[0].attributes == {"heart_rate": 141, "cadence": 84, "temperature": 19}
    assert [p.track_break for p in points] == [False, True]
    assert reading.skips.counts == {"lat outside [-90, 90]": 1}
    assert reading.skips.first == {"lat outside [-90, 90]": "point 3"}


GPX_10 = """<?xml version="1.0"?>
<gpx version="1.0" creator="GPSBabel" xmlns="http://www.topografix.com/GPX/1/0">
<trk><trkseg>
<trkpt lat="45.0" lon="14.0"><ele>120.5</ele><time>2024-05-01T10:00:00Z</time><course>90.5</course><speed>3.5</speed></trkpt>
<trkpt lat="45.0" lon="14.001"><time>9999-12-31T23:00:00-05:00</time></trkpt>
<trkpt lat="45.0" lon="14.002"><time>yesterday</time></trkpt>
</trkseg></trk></gpx>"""


def test_gpx_10_speed_and_course_and_times_that_are_not_times(tmp_path):
    points, reading = points_of(tmp_path, "old.gpx", GPX_10)
    assert [(p.speed, p.heading) for p in points] == [(3.5, 90.5)]
    assert reading.skips.counts == {"time beyond the calendar": 1, "time not ISO 8601": 1}


@pytest.mark.parametrize("content, reason", [
    ('<?xml version="1.0"?>\n<!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>\n'
     '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="1" lon="1">'
     '<name>&b;</name></trkpt></trkseg></trk></gpx>', "a DOCTYPE is not accepted"),
    ('<?xml version="1.0"?><!-- a comment --><!DOCTYPE gpx SYSTEM "file:///etc/passwd">'
     '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"/>', "a DOCTYPE is not accepted"),
    ('<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1" xmlns:xi="http://www.w3.org/2001/XInclude">'
     '<trk><trkseg><xi:include href="/etc/passwd" parse="text"/></trkseg></trk></gpx>', "XInclude is not accepted"),
    ('<gpx version="1.1"><trk><trkseg><trkpt lat="1" lon="1"><name>&unknown;</name></trkpt></trkseg></trk></gpx>',
     "not valid XML"),
    ('<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><wpt lat="45" lon="14"/></gpx>', "only waypoints"),
    ('<html><body>not a track</body></html>', "not GPX, KML or TCX (its root element is <html>)"),
    ('<gpx><trk>', "not valid XML"),
])
def test_xml_that_could_expand_or_read_other_files_and_other_bad_xml_is_refused_in_one_line(tmp_path, content,
                                                                                          reason):
    assert reason in refusal(tmp_path, "bad.gpx", content)


def test_gpx_memory_holds_the_points_of_one_parsed_chunk_at_most(tmp_path):
    """The parser's tree keeps no point once read: a few hundred elements at most while
    reading 10,000 points, none but the root at the end."""
    from tracker.tracks.formats.xmlstream import after_prolog, elements

    points = "".join(f'<trkpt lat="45" lon="14"><time>2024-05-01T10:00:{i % 60:02d}Z</time></trkpt>'
                     for i in range(10_000))
    data = f'<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{points}</trkseg></trk></gpx>'.encode()
    stream, root_name = after_prolog(io.BytesIO(data))
    assert root_name == "gpx"
    events = elements(stream, frozenset(("trkpt",)))
    _, _, root = next(events)
    widest = 0
    for event, name, element in events:
        if name == "trkpt":
            widest = max(widest, sum(1 for _ in root.iter()))
    assert widest < 1_000
    assert [element.tag for element in root.iter()] == ["{http://www.topografix.com/GPX/1/1}gpx"]


# --- KML -------------------------------------------------------------------------------------
KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><name>trips</name>
  <Folder><name>2024</name><Folder><name>May</name>
    <Placemark><name>start</name><TimeStamp><when>2024-05-01T09:59:00Z</when></TimeStamp>
      <Point><coordinates>15.9819,45.8150,120</coordinates></Point></Placemark>
    <Placemark><name>drive</name>
      <gx:Track><altitudeMode>absolute</altitudeMode>
        <when>2024-05-01T10:00:00Z</when><when>2024-05-01T10:00:10Z</when><when>2024-05-01T10:00:20+02:00</when>
        <gx:coord>15.9819 45.8150 121</gx:coord><gx:coord>15.9829 45.8150 122</gx:coord>
        <gx:coord>15.9839 45.8150 123</gx:coord>
        <ExtendedData><SchemaData schemaUrl="#s"><gx:SimpleArrayData name="speed"><gx:value>3</gx:value>
        </gx:SimpleArrayData></SchemaData></ExtendedData>
      </gx:Track></Placemark>
  </Folder></Folder>
  <Placemark><name>history</name><gx:MultiTrack><gx:Track>
    <when>2024-05-02T08:00:00Z</when><gx:coord>16.0 45.9 0</gx:coord>
    <when>2024-05-02T08:00:30Z</when><gx:coord>16.001 45.9 0</gx:coord>
  </gx:Track></gx:MultiTrack></Placemark>
  <Placemark><name>route</name><TimeSpan><begin>2024-05-03T07:00:00Z</begin><end>2024-05-03T08:00:00Z</end></TimeSpan>
    <MultiGeometry><LineString><coordinates>16.1,46.0 16.2,46.0,10
      16.3,46.0</coordinates></LineString><Point><coordinates>16.4,46.1</coordinates></Point></MultiGeometry>
  </Placemark>
  <Placemark><name>lake</name><Polygon><outerBoundaryIs><LinearRing><coordinates>1,1 2,2 3,1 1,1</coordinates>
  </LinearRing></outerBoundaryIs></Polygon></Placemark>
</Document></kml>"""


def test_kml_points_tracks_whose_times_come_first_or_alternate_and_line_strings_in_folders(tmp_path):
    points, reading = points_of(tmp_path, "trips.kml", KML)
    assert reading.format == "KML"
    assert places(points) == [(45.815, 15.9819), (45.815, 15.9819), (45.815, 15.9829), (45.815, 15.9839),
                              (45.9, 16.0), (45.9, 16.001), (46.0, 16.1), (46.0, 16.2), (46.0, 16.3), (46.1, 16.4)]
    assert times(points)[:6] == [utc("2024-05-01T09:59:00Z"), utc("2024-05-01T10:00:00Z"),
                                 utc("2024-05-01T10:00:10Z"), utc("2024-05-01T08:00:20Z"),
                                 utc("2024-05-02T08:00:00Z"), utc("2024-05-02T08:00:30Z")]
    assert times(points)[6:] == [None] * 4  # a LineString's points have no time of their own
    assert [p.altitude for p in points[:4]] == [120.0, 121.0, 122.0, 123.0]
    assert [i for i, p in enumerate(points) if p.track_break] == [4, 6]  # the second track, the line


def test_kml_line_string_timed_from_its_time_span_with_an_interval(tmp_path):
    points, _ = points_of(tmp_path, "trips.kml", KML, interval=timedelta(seconds=30))
    assert times(points)[6:9] == [utc("2024-05-03T07:00:00Z"), utc("2024-05-03T07:00:30Z"),
                                  utc("2024-05-03T07:01:00Z")]
    assert points[9].time is None  # a Point of the same Placemark: the TimeSpan is no TimeStamp


def test_kmz_is_its_doc_kml(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("files/icon.png", b"\x89PNG")
        archive.writestr("doc.kml", KML)
    points, _ = points_of(tmp_path, "trips.kmz", buffer.getvalue())
    assert len(points) == 10
    assert [source.name.rpartition(":")[2] for source in sources(tmp_path / "trips.kmz")] == ["doc.kml"]


# --- TCX -------------------------------------------------------------------------------------
TCX = """<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
  xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">
 <Activities><Activity Sport="Biking"><Id>2024-05-04T06:00:00Z</Id>
  <Lap StartTime="2024-05-04T06:00:00Z"><TotalTimeSeconds>600</TotalTimeSeconds><Track>
   <Trackpoint><Time>2024-05-04T06:00:00Z</Time>
    <Position><LatitudeDegrees>45.80</LatitudeDegrees><LongitudeDegrees>15.90</LongitudeDegrees></Position>
    <AltitudeMeters>150.2</AltitudeMeters><DistanceMeters>0</DistanceMeters>
    <HeartRateBpm><Value>120</Value></HeartRateBpm><Cadence>80</Cadence>
    <Extensions><ns3:TPX><ns3:Speed>6.5</ns3:Speed><ns3:Watts>210</ns3:Watts></ns3:TPX></Extensions></Trackpoint>
   <Trackpoint><Time>2024-05-04T06:00:01Z</Time><HeartRateBpm><Value>121</Value></HeartRateBpm></Trackpoint>
  </Track><Track>
   <Trackpoint><Time>2024-05-04T06:05:00Z</Time>
    <Position><LatitudeDegrees>45.81</LatitudeDegrees><LongitudeDegrees>15.91</LongitudeDegrees></Position></Trackpoint>
  </Track></Lap>
 </Activity></Activities>
</TrainingCenterDatabase>"""


def test_tcx_trackpoints_with_heart_rate_speed_and_power_and_those_without_a_position_skipped(tmp_path):
    points, reading = points_of(tmp_path, "ride.tcx", TCX)
    assert reading.format == "TCX"
    assert places(points) == [(45.8, 15.9), (45.81, 15.91)]
    assert times(points) == [utc("2024-05-04T06:00:00Z"), utc("2024-05-04T06:05:00Z")]
    first = points[0]
    assert (first.speed, first.altitude) == (6.5, 150.2)
    assert first.attributes == {"heart_rate": 120, "cadence": 80, "power": 210}
    assert [p.track_break for p in points] == [False, True]
    assert reading.skips.counts == {"trackpoint without a Position": 1}


# --- GeoJSON ---------------------------------------------------------------------------------
def test_geojson_lines_with_coord_times_and_coordinates_written_as_text(tmp_path):
    document = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"coordTimes": ["2024-05-03T07:00:00Z", 1714719605, 1714719610000]},
         "geometry": {"type": "LineString", "coordinates": [["14.0", "45.0", "100"], [14.0005, 45.0], [14.001, 45.0]]}},
        {"geometry": {"coordinates": [[[14.002, 45.0]], [[14.003, 45.0], [14.004, 45.0]]], "type": "MultiLineString"},
         "type": "Feature", "properties": {"coordTimes": ["2024-05-03T07:01:00Z", "2024-05-03T07:02:00Z",
                                                         "2024-05-03T07:03:00Z"]}},
        {"type": "Feature", "properties": {"name": "a lake"},
         "geometry": {"type": "Polygon", "coordinates": [[[14, 45], [14.1, 45], [14.1, 45.1], [14, 45]]]}},
    ]}
    points, reading = points_of(tmp_path, "track.geojson", orjson.dumps(document))
    assert [p.lon for p in points] == [14.0, 14.0005, 14.001, 14.002, 14.003, 14.004]
    assert times(points) == [utc("2024-05-03T07:00:00Z"), utc("2024-05-03T07:00:05Z"), utc("2024-05-03T07:00:10Z"),
                             utc("2024-05-03T07:01:00Z"), utc("2024-05-03T07:02:00Z"), utc("2024-05-03T07:03:00Z")]
    assert points[0].altitude == 100.0 and points[1].altitude is None
    assert [i for i, p in enumerate(points) if p.track_break] == [3, 4]  # a new feature, its second line
    assert reading.format == "GeoJSON"


@pytest.mark.parametrize("key, value", [("time", "2024-05-04T09:00:00Z"), ("timestamp", 1714813200),
                                        ("datetime", "2024-05-04 09:00:00"), ("when", 1714813200000),
                                        ("recorded_at", "2024-05-04T11:00:00+02:00"), ("date", "1714813200")])
def test_geojson_point_features_with_the_time_keys_other_trackers_write(tmp_path, key, value):
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [15.0, 46.0, 300]},
               "properties": {key: value, "speed": "2.5", "course": 45, "accuracy": 8, "battery": 80}}
    points, _ = points_of(tmp_path, "point.json", orjson.dumps({"type": "FeatureCollection", "features": [feature]}))
    (point,) = points
    assert point.time == utc("2024-05-04T09:00:00Z")
    assert (point.speed, point.heading, point.altitude, point.accuracy, point.battery) == (2.5, 45.0, 300.0, 8.0, 80.0)


def test_geojson_with_properties_after_a_bare_geometry_and_bad_times_counted(tmp_path):
    line = {"coordinates": [[14.0, 45.0], [14.1, 45.0], [14.2, 45.0]], "type": "LineString"}
    feature = {"geometry": line, "properties": {"times": ["2024-05-03T07:00:00Z", "not a time", None]},
               "type": "Feature"}
    points, reading = points_of(tmp_path, "line.geojson", orjson.dumps(feature))
    assert times(points) == [utc("2024-05-03T07:00:00Z"), None]
    assert reading.skips.counts == {"time not ISO 8601": 1}
    assert "coordTimes" in refusal(tmp_path, "bad.geojson", orjson.dumps({
        "type": "Feature", "properties": {"coordTimes": [["2024-05-03T07:00:00Z"], []]},
        "geometry": {"type": "MultiLineString", "coordinates": [[[14, 45]], [[14.1, 45]]]}}))
    assert "2 times for 1 coordinates" in refusal(tmp_path, "bad.geojson", orjson.dumps({
        "type": "Feature", "properties": {"coordTimes": ["2024-05-03T07:00:00Z", "2024-05-03T07:00:01Z"]},
        "geometry": {"type": "LineString", "coordinates": [[14, 45]]}}))


@pytest.mark.parametrize("order", ["properties first", "geometry first"])
def test_geojson_line_times_whichever_comes_first(tmp_path, order):
    geometry = {"type": "LineString", "coordinates": [[14.0, 45.0], [14.1, 45.0]]}
    properties = {"coordTimes": ["2024-05-03T07:00:00Z", "2024-05-03T07:00:10Z"]}
    feature = {"type": "Feature", "properties": properties, "geometry": geometry} if order == "properties first" \
        else {"type": "Feature", "geometry": geometry, "properties": properties}
    points, _ = points_of(tmp_path, "line.geojson", orjson.dumps(feature))
    assert times(points) == [utc("2024-05-03T07:00:00Z"), utc("2024-05-03T07:00:10Z")]
    collection = {"type": "FeatureCollection", "features": [feature, feature]}
    points, _ = points_of(tmp_path, "lines.geojson", orjson.dumps(collection))
    assert len(points) == 4 and [p.track_break for p in points] == [False, False, True, False]


def test_geojson_flat_coord_times_of_many_lines_are_split_in_one_pass(tmp_path):
    """A MultiLineString's one flat list of times for 20,000 lines (quadratic before)."""
    lines = [[[14 + i / 1e4, 45.0], [14 + i / 1e4, 45.001]] for i in range(20_000)]
    start = utc("2024-05-03T07:00:00Z")
    stamps = [(start + timedelta(seconds=i)).isoformat() for i in range(40_000)]
    feature = {"type": "Feature", "properties": {"coordTimes": stamps},
               "geometry": {"type": "MultiLineString", "coordinates": lines}}
    points, _ = points_of(tmp_path, "many.geojson", orjson.dumps(feature))
    assert len(points) == 40_000 and points[-1].time == start + timedelta(seconds=39_999)
    assert sum(p.track_break for p in points) == 19_999


# --- CSV -------------------------------------------------------------------------------------
GPSLOGGER_CSV = """time,lat,lon,elevation,accuracy,bearing,speed,satellites,provider,hdop,vdop,pdop,geoidheight,\
ageofdgpsdata,dgpsid,activity,battery,annotation,timestamp_ms,time_offset,distance,starttimestamp_ms,profile_name,\
battery_charging
2024-05-05T06:00:00.000Z,48.1000,11.5000,520.0,12.0,270.0,10.0,9,gps,1.1,,,,,,,64,,1714888800000,,0.0,,Default,false
2024-05-05T06:00:05.000Z,48.1001,11.5000,521.0,8.0,,,,gps,,,,,,,,63,a note,1714888805000,,11.1,,Default,false
2024-05-05T06:00:10.000Z,,11.5000,,,,,,gps,,,,,,,,63,,1714888810000,,,,Default,false
"""


def test_csv_as_gpslogger_writes_it(tmp_path):
    points, reading = points_of(tmp_path, "20240505.csv", GPSLOGGER_CSV)
    assert places(points) == [(48.1, 11.5), (48.1001, 11.5)]
    assert times(points) == [utc("2024-05-05T06:00:00Z"), utc("2024-05-05T06:00:05Z")]
    first = points[0]
    assert (first.altitude, first.accuracy, first.heading, first.speed, first.battery) == (520.0, 12.0, 270.0, 10.0, 64.0)
    assert first.attributes == {"sat": 9.0, "provider": "gps", "hdop": 1.1}
    assert reading.skips.counts == {"no lat and lon": 1} and reading.skips.first["no lat and lon"] == "line 4"


def test_csv_with_semicolons_units_separate_date_and_time_columns_and_epoch_times(tmp_path):
    content = ("Date;Time;Latitude;Longitude;Speed (km/h);Altitude (ft);Note\n"
               "2024-05-05;06:00:00;48.1;11.5;36;1000;home\n"
               "2024-05-05;06:00:10;48.2;11.6;-1;;\n")
    points, _ = points_of(tmp_path, "export.csv", content)
    assert times(points) == [utc("2024-05-05T06:00:00Z"), utc("2024-05-05T06:00:10Z")]
    assert points[0].speed == pytest.approx(10.0) and points[0].altitude == pytest.approx(304.8)
    assert points[1].speed is None and points[0].attributes is None  # a note is not kept
    epoch = "timestamp,lng,lat\n1714888800,11.5,48.1\n1714888810000,11.6,48.2\n"
    points, _ = points_of(tmp_path, "epoch.csv", epoch)
    assert times(points) == [utc("2024-05-05T06:00:00Z"), utc("2024-05-05T06:00:10Z")]
    assert "header row" in refusal(tmp_path, "no-header.csv", "48.1,11.5\n48.2,11.6\n")


# --- Overland --------------------------------------------------------------------------------
def overland_location(lon, lat, timestamp, **extra):
    properties = {"timestamp": timestamp, "altitude": 0, "speed": 4, "horizontal_accuracy": 30,
                  "vertical_accuracy": -1, "motion": ["driving", "stationary"], "pauses": False,
                  "activity": "other_navigation", "desired_accuracy": 100, "deferred": 1000,
                  "significant_change": "disabled", "locations_in_payload": 2, "battery_state": "charging",
                  "battery_level": 0.89, "device_id": "phone", "wifi": "Home Network"}
    properties.update(extra)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": properties}


def test_overland_batches_one_after_another(tmp_path):
    first = {"locations": [overland_location(-122.030581, 37.3318, "2015-10-01T08:00:00-0700"),
                           overland_location(-122.03, 37.332, "2015-10-01T08:00:05-0700", speed=-1, course=-1)],
             "current": overland_location(-122.0, 37.4, "2015-10-01T09:00:00-0700")}
    second = {"locations": [overland_location(-122.02, 37.333, "2015-10-01T08:00:10-0700"),
                            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-122.0, 37.3]},
                             "properties": {"type": "trip", "mode": "car", "start": "2015-10-01T07:00:00-0700"}}]}
    content = orjson.dumps(first) + b"\n" + orjson.dumps(second) + b"\n"
    points, reading = points_of(tmp_path, "overland.json", content)
    assert reading.format == "Overland"
    assert places(points) == [(37.3318, -122.030581), (37.332, -122.03), (37.333, -122.02)]
    assert times(points) == [utc("2015-10-01T15:00:00Z"), utc("2015-10-01T15:00:05Z"), utc("2015-10-01T15:00:10Z")]
    head = points[0]
    assert (head.speed, head.altitude, head.accuracy, head.battery) == (4.0, 0.0, 30.0, 89.0)
    assert head.attributes == {"motion": "driving,stationary", "battery_state": "charging"}  # no Wi-Fi name
    assert points[1].speed is None and points[1].heading is None


# --- Google Takeout --------------------------------------------------------------------------
RECORDS = {"locations": [
    {"latitudeE7": 414216106, "longitudeE7": 21684775, "accuracy": 20, "velocity": 10, "heading": 270,
     "altitude": 150, "verticalAccuracy": 10, "source": "WIFI", "deviceTag": 1234567890, "platformType": "ANDROID",
     "activity": [{"timestamp": "2022-01-12T17:18:20.000Z",
                   "activity": [{"type": "IN_VEHICLE", "confidence": 80}, {"type": "STILL", "confidence": 20}]}],
     "timestamp": "2022-01-12T17:18:24.190Z"},
    {"timestampMs": "1642007910000", "latitudeE7": 414216206, "longitudeE7": 21684875, "accuracy": 5},
    {"timestampMs": "1642007920000", "latitudeE7": 4294967296 - 10, "longitudeE7": 21684875},
    {"timestamp": "2022-01-12T17:18:50Z", "latitudeE7": 1800000000, "longitudeE7": 21684875},
    {"latitudeE7": 414216306, "longitudeE7": 21684975},
]}


def test_takeout_records_json_old_and_new_times_and_wrapped_coordinates(tmp_path):
    points, reading = points_of(tmp_path, "Records.json", orjson.dumps(RECORDS, option=orjson.OPT_INDENT_2))
    assert reading.format == "Google Takeout Records.json"
    assert places(points) == [(41.4216106, 2.1684775), (41.4216206, 2.1684875), (-0.000001, 2.1684875)]
    assert times(points) == [utc("2022-01-12T17:18:24.190Z"), utc("2022-01-12T17:18:30Z"),
                             utc("2022-01-12T17:18:40Z")]
    head = points[0]
    assert (head.accuracy, head.speed, head.heading, head.altitude) == (20.0, 10.0, 270.0, 150.0)
    assert head.attributes == {"provider": "WIFI", "activity": "IN_VEHICLE"}
    assert reading.skips.counts == {"lat outside [-90, 90]": 1, "no timestamp": 1}


SEMANTIC = {"timelineObjects": [
    {"placeVisit": {"location": {"latitudeE7": 414083590, "longitudeE7": 21704229, "placeId": "ChIJ",
                                 "address": "a street", "name": "Home"},
                    "duration": {"startTimestamp": "2022-03-03T08:00:00Z", "endTimestamp": "2022-03-03T12:22:24Z"},
                    "placeConfidence": "HIGH_CONFIDENCE", "centerLatE7": 414083000, "centerLngE7": 21704000}},
    {"activitySegment": {"startLocation": {"latitudeE7": 414083590, "longitudeE7": 21704229},
                         "endLocation": {"latitudeE7": 413961889, "longitudeE7": 21536695},
                         "duration": {"startTimestampMs": "1646310144000", "endTimestampMs": "1646311414000"},
                         "distance": 2640, "activityType": "IN_BUS", "confidence": "HIGH",
                         "waypointPath": {"waypoints": [{"latE7": 414000000, "lngE7": 21600000}], "source": "INFERRED"}}},
    {"activitySegment": {"startLocation": {"latitudeE7": 413961889, "longitudeE7": 21536695},
                         "endLocation": {"latitudeE7": 413900000, "longitudeE7": 21500000},
                         "duration": {"startTimestamp": "2022-03-03T13:00:00Z", "endTimestamp": "2022-03-03T13:10:00Z"},
                         "activityType": "WALKING",
                         "simplifiedRawPath": {"points": [{"latE7": 413930000, "lngE7": 21520000,
                                                           "accuracyMeters": 7, "timestamp": "2022-03-03T13:05:00Z"}]},
                         "waypointPath": {"waypoints": [{"latE7": 1, "lngE7": 1}]}}},
]}


def test_takeout_semantic_location_history_visits_and_activity_segments(tmp_path):
    points, reading = points_of(tmp_path, "2022_MARCH.json", orjson.dumps(SEMANTIC))
    assert reading.format == "Google Semantic Location History"
    assert places(points) == [(41.408359, 2.1704229), (41.408359, 2.1704229),  # the visit: arrival, departure
                              (41.408359, 2.1704229), (41.4, 2.16), (41.3961889, 2.1536695),  # the bus
                              (41.3961889, 2.1536695), (41.393, 2.152), (41.39, 2.15)]  # the walk
    assert times(points) == [utc("2022-03-03T08:00:00Z"), utc("2022-03-03T12:22:24Z"),
                             utc("2022-03-03T12:22:24Z"), None, utc("2022-03-03T12:43:34Z"),
                             utc("2022-03-03T13:00:00Z"), utc("2022-03-03T13:05:00Z"), utc("2022-03-03T13:10:00Z")]
    assert points[0].attributes is None and points[3].attributes == {"activity": "IN_BUS"}
    assert points[6].accuracy == 7.0


TIMELINE = {"semanticSegments": [
    {"startTime": "2024-01-01T10:00:00.000+01:00", "endTime": "2024-01-01T11:00:00.000+01:00",
     "startTimeTimezoneUtcOffsetMinutes": 60, "endTimeTimezoneUtcOffsetMinutes": 60,
     "visit": {"hierarchyLevel": 0, "probability": 0.9,
               "topCandidate": {"placeId": "ChIJ", "semanticType": "HOME", "probability": 0.8,
                                "placeLocation": {"latLng": "50.0506312°, 14.3439906°"}}}},
    {"startTime": "2024-01-01T10:00:00.000+01:00", "endTime": "2024-01-01T11:00:00.000+01:00",
     "visit": {"hierarchyLevel": 1, "topCandidate": {"placeLocation": {"latLng": "50.06°, 14.35°"}}}},
    {"startTime": "2024-01-01T11:00:00.000+01:00", "endTime": "2024-01-01T11:20:00.000+01:00",
     "activity": {"start": {"latLng": "50.0506312°, 14.3439906°"}, "end": {"latLng": "50.07°, 14.4°"},
                  "distanceMeters": 4200.5, "topCandidate": {"type": "IN_PASSENGER_VEHICLE", "probability": 0.9}}},
    {"startTime": "2024-01-01T11:00:00.000+01:00", "endTime": "2024-01-01T13:00:00.000+01:00",
     "timelinePath": [{"point": "50.055°, 14.36°", "time": "2024-01-01T11:05:00.000+01:00"},
                      {"point": "-33.8688°, 151.2093°", "time": "2024-01-01T11:10:00.000+01:00"},
                      {"point": "somewhere", "time": "2024-01-01T11:15:00.000+01:00"}]},
    {"startTime": "2024-01-01T13:00:00.000+01:00", "endTime": "2024-01-02T13:00:00.000+01:00",
     "timelineMemory": {"trip": {"distanceFromOriginKms": 120}}},
], "rawSignals": [
    {"position": {"LatLng": "50.0507°, 14.3441°", "accuracyMeters": 13, "altitudeMeters": 250.0, "source": "WIFI",
                  "timestamp": "2024-01-01T12:00:00.000+01:00", "speedMetersPerSecond": 0.5}},
    {"wifiScan": {"deliveryTime": "2024-01-01T12:00:00.000+01:00", "devicesRecords": [{"mac": 1, "rawRssi": -60}]}},
], "userLocationProfile": {"frequentPlaces": [{"placeId": "ChIJ", "placeLocation": "50.05°, 14.34°", "label": "HOME"}]}}


def test_timeline_export_from_the_phone(tmp_path):
    points, reading = points_of(tmp_path, "Timeline.json", orjson.dumps(TIMELINE))
    assert reading.format == "Google Timeline export"
    assert places(points) == [(50.0506312, 14.3439906), (50.0506312, 14.3439906),  # the outermost visit only
                              (50.0506312, 14.3439906), (50.07, 14.4),  # the drive
                              (50.055, 14.36), (-33.8688, 151.2093),  # the path
                              (50.0507, 14.3441)]  # a raw position
    assert times(points) == [utc("2024-01-01T09:00:00Z"), utc("2024-01-01T10:00:00Z"), utc("2024-01-01T10:00:00Z"),
                             utc("2024-01-01T10:20:00Z"), utc("2024-01-01T10:05:00Z"), utc("2024-01-01T10:10:00Z"),
                             utc("2024-01-01T11:00:00Z")]
    assert points[2].attributes == {"activity": "IN_PASSENGER_VEHICLE"}
    raw = points[-1]
    assert (raw.accuracy, raw.altitude, raw.speed, raw.attributes) == (13.0, 250.0, 0.5, {"provider": "WIFI"})
    assert reading.skips.counts == {"place not 'lat°, lon°'": 1}


def test_a_takeout_zip_is_read_without_unpacking_records_first(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Takeout/archive_browser.html", "<html/>")
        archive.writestr("Takeout/Location History (Timeline)/Settings.json", "{}")
        archive.writestr("Takeout/Location History (Timeline)/Semantic Location History/2022/2022_MARCH.json",
                         orjson.dumps(SEMANTIC))
        archive.writestr("Takeout/Location History (Timeline)/Records.json", orjson.dumps(RECORDS))
    points, reading = points_of(tmp_path, "takeout-20240101.zip", buffer.getvalue())
    assert len(points) == 3 and reading.format == "Google Takeout Records.json"

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for month in ("2022_MARCH", "2021_DECEMBER", "2022_JANUARY"):
            archive.writestr(f"Takeout/Location History/Semantic Location History/{month[:4]}/{month}.json",
                             orjson.dumps(SEMANTIC))
    path = tmp_path / "semantic.zip"
    path.write_bytes(buffer.getvalue())
    assert [s.name.rpartition("/")[2] for s in sources(path)] == ["2021_DECEMBER.json", "2022_JANUARY.json",
                                                                 "2022_MARCH.json"]
    assert "without a track file" in refusal(tmp_path, "photos.zip", _zip({"a.jpg": b"\xff\xd8"}))


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- OwnTracks -------------------------------------------------------------------------------
def test_owntracks_rec_with_tabs_or_spaces(tmp_path):
    body = '{"_type":"location","tst":1714888800,"lat":48.1,"lon":11.5,"vel":36,"cog":270,"alt":520,"acc":12,' \
           '"batt":64,"tid":"ab","t":"u","SSID":"Home"}'
    content = (f"2024-05-05T06:00:00Z\t*                 \t{body}\n"
               '2024-05-05T06:00:05Z\tlwt               \t{"_type":"lwt","tst":1714888805}\n'
               f"2024-05-05T06:00:10Z   *     {body.replace('1714888800', '1714888810')}\n"
               "a line that is not one\n")
    points, reading = points_of(tmp_path, "2024-05.rec", content)
    assert times(points) == [utc("2024-05-05T06:00:00Z"), utc("2024-05-05T06:00:10Z")]
    assert (points[0].speed, points[0].heading, points[0].battery) == (10.0, 270.0, 64.0)
    assert points[0].attributes == {"tid": "ab", "t": "u"}  # no Wi-Fi name
    assert reading.skips.counts == {"line not <time> <tag> <JSON>": 1}


def test_unknown_and_empty_files_are_refused(tmp_path):
    assert "unknown format" in refusal(tmp_path, "notes.txt", "just some notes\n")
    assert "empty" in refusal(tmp_path, "empty.gpx", "")
    assert "JSON array" in refusal(tmp_path, "list.json", "[1, 2]")
