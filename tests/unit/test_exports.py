"""History exports read back by the tools people use: gpxpy, shapely, the csv module."""
import csv
import io
from datetime import datetime, timedelta, timezone

import gpxpy
import pytest
import orjson
from shapely.geometry import shape

from tracker.positions.store import TRACK_FIELDS
from web.exports import RENDERERS, render

START = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
ROWS = [
    dict(zip(TRACK_FIELDS, (START + timedelta(seconds=10 * i), 45.0 + i / 1000, 14.0 + i / 500, 3.5, 90.0,
                            120.0 + i if i % 2 else None, 5.0, 80.0, "phone <a&b>" if i == 1 else None)))
    for i in range(5)
]
END = START + timedelta(hours=1)


def test_gpx_is_gpx_1_1_that_gpxpy_reads_back():
    gpx = gpxpy.parse(render("gpx", "car:7", START, END, ROWS).decode())
    assert gpx.version == "1.1"
    (track,) = gpx.tracks
    assert track.name == "car:7"
    points = track.segments[0].points
    assert [(p.latitude, p.longitude) for p in points] == [(r["lat"], r["lon"]) for r in ROWS]
    assert [p.time for p in points] == [r["time"] for r in ROWS]
    assert points[1].elevation == 121.0 and points[0].elevation is None


def test_geojson_has_every_fix_then_the_track_as_a_linestring():
    collection = orjson.loads(render("geojson", "car:7", START, END, ROWS))
    *fixes, track = collection["features"]
    assert track["properties"]["kind"] == "track" and track["properties"]["count"] == len(ROWS)
    line = shape(track["geometry"])
    assert line.geom_type == "LineString" and line.is_valid
    assert list(line.coords) == [(r["lon"], r["lat"]) for r in ROWS]
    assert len(fixes) == len(ROWS)
    assert all(shape(f["geometry"]).geom_type == "Point" for f in fixes)
    assert fixes[0]["properties"]["time"] == "2026-05-01T08:00:00Z"
    assert fixes[1]["properties"]["source"] == "phone <a&b>"


def test_csv_has_a_header_and_one_row_per_fix():
    reader = csv.DictReader(io.StringIO(render("csv", "car:7", START, END, ROWS).decode()))
    rows = list(reader)
    assert reader.fieldnames[:4] == ["marker_id", "time", "lat", "lon"]
    assert len(rows) == len(ROWS)
    assert rows[1]["source"] == "phone <a&b>"
    assert rows[0]["altitude"] == "" and float(rows[1]["altitude"]) == 121.0
    assert rows[4]["time"] == "2026-05-01T08:00:40Z"


def test_json_lists_positions_in_the_given_order():
    body = orjson.loads(render("json", "car:7", START, END, ROWS[::-1]))
    assert body["count"] == 5
    assert [p["time"] for p in body["positions"]][0] == "2026-05-01T08:00:40Z"


def test_csv_quotes_text_a_spreadsheet_would_run():
    rows = [{**ROWS[0], "source": "=HYPERLINK(\"http://x\")"}]
    (row,) = csv.DictReader(io.StringIO(render("csv", "car:7", START, END, rows).decode()))
    assert row["source"].startswith("'=")


def test_gpx_is_chronological_whatever_the_query_order():
    gpx = gpxpy.parse(render("gpx", "car:7", START, END, ROWS[::-1]).decode())
    times = [p.time for p in gpx.tracks[0].segments[0].points]
    assert times == sorted(times)


def test_csv_quotes_a_formula_in_any_cell_the_marker_id_included():
    (row,) = csv.DictReader(io.StringIO(render("csv", "@car", START, END, ROWS[:1]).decode()))
    assert row["marker_id"] == "'@car"


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_rendering_in_chunks_gives_the_same_bytes_as_at_once(fmt):
    """What the history endpoint streams, chunk by chunk, is the document ``render`` makes."""
    renderer = RENDERERS[fmt]("car:7", START, END)
    streamed = renderer.head() + renderer.points(ROWS[:2]) + renderer.points([]) + renderer.points(ROWS[2:])
    streamed += renderer.tail(len(ROWS), "/next")
    assert streamed == render(fmt, "car:7", START, END, ROWS, "/next")


@pytest.mark.parametrize("fmt", ["json", "geojson"])
def test_json_formats_name_the_next_page(fmt):
    assert orjson.loads(render(fmt, "car:7", START, END, ROWS, "/api/markers/car:7/history?from=x"))["next"] \
        == "/api/markers/car:7/history?from=x"
    assert orjson.loads(render(fmt, "car:7", START, END, []))["next"] is None
