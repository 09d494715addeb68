"""Where markers have been, on a real worker and in Chromium: an imported GPX day's tracks,
statistics (its distance within 2 % of its trips'), countries and cities, heatmap cells,
a replay that moves two markers together, and a report that downloads as a workbook."""
import io
import subprocess
import sys
from datetime import timedelta

import gpxpy
import openpyxl
import orjson
import pytest

from tests.integration.test_admin_browser import watch
from tests.integration.test_import_journeys import GPX_DIR
from tests.integration.test_map_browser import ARTIFACTS
from tracker.testing import wait_for

DRIVE = "around-visnjan-with-car.gpx"
SHIFT = 0.01  # the van drives the same roads, a kilometre east, two minutes later


@pytest.fixture(scope="module")
def day(stack):
    """The imported drive: (worker, the GPX, its points, the day's range as query text)."""
    path = GPX_DIR / DRIVE
    if not path.exists():
        pytest.fail(f"the shared GPX tracks are expected in {GPX_DIR}")
    gpx = gpxpy.parse(path.read_text())
    points = [p for track in gpx.tracks for segment in track.segments for p in segment.points]
    worker = stack.worker().start()
    worker.wait_ready()
    done = subprocess.run([sys.executable, "-m", "tracker.cli", "import", str(path), "--marker", "car"],
                          env=stack.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stack.send([(b"van", orjson.dumps({"marker_id": "van", "lat": p.latitude, "lon": p.longitude + SHIFT,
                                       "time": (p.time + timedelta(minutes=2)).isoformat(), "altitude": p.elevation}))
                for p in points])
    wait_for(lambda: stack.history_count() == 2 * len(points), 90, "both tracks in history")
    expected = gpx.length_2d()
    # each marker's last trip ends when the idle check finds its partition caught up
    wait_for(lambda: all(abs(trips_total(stack, marker) - expected) <= 0.02 * expected for marker in ("car", "van")),
             90, f"the car's and the van's trips adding up to {expected:.0f} m each")
    start = points[0].time.replace(hour=0, minute=0, second=0)
    span = f"from={start.isoformat().replace('+00:00', 'Z')}&to={(start + timedelta(days=1)).isoformat().replace('+00:00', 'Z')}"
    return worker, gpx, points, span


def trips_total(stack, marker: str) -> float:
    return stack.query("SELECT coalesce(sum(distance_m), 0) FROM trips WHERE marker_id = %s", marker)[0][0]


def test_statistics_of_an_imported_gpx_day_show_its_distance_and_where_it_was(stack, day, browser):
    worker, gpx, points, span = day
    trips = trips_total(stack, "car")
    status, stats = worker.get(f"/api/markers/car/stats?{span}")
    assert status == 200, stats
    (one_day,) = stats["by"]["day"]
    assert one_day["period"] == points[0].time.date().isoformat()
    assert one_day["distance_m"] == pytest.approx(trips, rel=0.02) == pytest.approx(gpx.length_2d(), rel=0.04)
    assert stats["totals"]["distance_m"] == pytest.approx(trips, rel=0.02)
    assert [c["code"] for c in stats["countries"]] == ["HR"]  # Istria
    assert stats["cities"] and all(c["country_code"] == "HR" for c in stats["cities"])

    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors = watch(page)
    stack.sign_in(page, worker, f"/history?markers=car&{span}")
    page.wait_for_function("() => window.historyView && window.historyView.complete", timeout=30_000)
    shown_km = float(page.locator(".totals p", has_text="Distance").inner_text().split(":")[1].split()[0])
    assert shown_km * 1000 == pytest.approx(trips, rel=0.02, abs=60)
    drawn = page.evaluate("() => window.historyView.charts.distance.data.datasets[0].data")
    assert drawn == [pytest.approx(trips / 1000, rel=0.02)]  # the chart is drawn from the API's numbers
    countries = page.get_by_role("region", name="Countries, most visited first")
    assert countries.locator("tbody th").all_inner_texts() == ["Croatia"]
    page.locator("#stats").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "history-stats.png"), full_page=True)
    assert errors == []
    page.close()


def test_the_replay_moves_both_markers_and_the_heatmap_comes_as_cells(stack, day, browser):
    worker, gpx, points, span = day
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors = watch(page)
    stack.sign_in(page, worker, f"/history?markers=car,van&{span}")
    page.wait_for_function("() => window.historyView && window.historyView.drawn", timeout=30_000)
    assert page.evaluate("() => window.historyView.tracks.map(t => [t.marker_id, t.points])") == \
        [["car", len(points)], ["van", len(points)]]

    def dots():
        return page.evaluate("""() => window.historyView.replay.dots.map(
            d => window.historyView.map.hasLayer(d) ? [d.getLatLng().lat, d.getLatLng().lng] : null)""")

    at_start = dots()
    assert at_start[0] is not None and at_start[1] is None  # the van starts two minutes later
    page.evaluate("""() => { const slider = document.getElementById('replay-time');  // dragged to a quarter
        slider.value = '250'; slider.dispatchEvent(new Event('input')); }""")
    before = dots()
    assert before[0] is not None and before[1] is not None
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("""t => window.historyView.replay.time > t + 60 * 1000""",
                           arg=page.evaluate("() => window.historyView.replay.time"), timeout=30_000)
    page.get_by_role("button", name="Pause").click()
    moved = dots()
    assert moved[0] != before[0] and moved[1] != before[1]  # both moved
    assert moved[1][1] > moved[0][1]  # the van is east of the car
    page.locator("#replay-time").focus()
    page.keyboard.press("End")  # the slider works with the keyboard
    ended = dots()
    assert ended[0] == pytest.approx([points[-1].latitude, points[-1].longitude], abs=1e-6)
    assert ended[1] == pytest.approx([points[-1].latitude, points[-1].longitude + SHIFT], abs=1e-6)
    profile = page.evaluate("() => window.historyView.charts.profile.data.datasets.map(d => [d.label, d.data.length])")
    assert [label for label, _ in profile] == ["car speed (km/h)", "car altitude (m)", "van speed (km/h)",
                                              "van altitude (m)"] and all(n > 0 for _, n in profile)
    page.screenshot(path=str(ARTIFACTS / "history.png"), full_page=True)

    page.get_by_label("Heatmap", exact=True).check()
    page.wait_for_function("() => window.historyView.heatLoaded > 0", timeout=30_000)
    cells, counted = page.evaluate("() => [window.historyView.heatCells, window.historyView.heatPoints]")
    assert counted == stack.query("SELECT count(*) FROM positions WHERE NOT spike")[0][0]
    assert 0 < cells < counted
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    page.screenshot(path=str(ARTIFACTS / "history-heatmap.png"))
    assert errors == []
    page.close()


def test_a_report_is_shown_and_downloads_as_a_workbook_with_the_right_rows(stack, day, browser, tmp_path):
    worker, gpx, points, span = day
    expected = stack.query("SELECT marker_id, start_time, distance_m FROM trips ORDER BY marker_id, start_time")
    assert {marker for marker, _, _ in expected} == {"car", "van"}
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    errors = watch(page)
    stack.sign_in(page, worker, f"/reports?markers=car,van&kind=trips&tz=Europe/Zagreb&{span}")
    page.wait_for_function("() => Number(document.body.dataset.loaded || 0) > 0", timeout=30_000)
    assert page.locator("#report tbody tr").count() == len(expected)
    page.screenshot(path=str(ARTIFACTS / "reports.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Excel (XLSX)").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    sheet = openpyxl.load_workbook(saved).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert header[:3] == ["marker_id", "start_time (Europe/Zagreb)", "end_time (Europe/Zagreb)"]
    got = [(row[0], row[1], row[header.index("distance_m")]) for row in rows[1:]]
    from zoneinfo import ZoneInfo
    assert got == [(marker, start.astimezone(ZoneInfo("Europe/Zagreb")).replace(tzinfo=None), pytest.approx(distance))
                   for marker, start, distance in expected]
    assert errors == []
    page.close()

    status, headers, body = worker.request("GET", f"/api/reports/summary?markers=car&format=csv&{span}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0] == "marker_id,day,trips,distance_m,driving_s,stopped_s,stops,max_speed,average_speed"
    status, _, events = worker.request("GET", f"/api/reports/events?markers=car&{span}")
    assert status == 200 and events["columns"][:3] == ["marker_id", "time", "type"]
    workbook = openpyxl.load_workbook(io.BytesIO(_download(worker, span)))
    assert workbook.active.max_row == 1 + stack.query("SELECT count(*) FROM stops WHERE marker_id = 'van'")[0][0]


def _download(worker, span) -> bytes:
    import urllib.request

    request = urllib.request.Request(f"{worker.url}/api/reports/stops?markers=van&format=xlsx&{span}",
                                     headers={"Authorization": f"Bearer {worker.stack.admin_token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read()


def test_a_viewer_sees_only_its_markers_history(stack, day):
    worker, gpx, points, span = day
    token = stack.user("van-viewer", "viewer", ["van"])
    assert worker.get(f"/api/tracks?markers=car&{span}", token=token)[0] == 404
    assert worker.get(f"/api/markers/car/stats?{span}", token=token)[0] == 404
    assert worker.get(f"/api/reports/trips?markers=car&{span}", token=token)[0] == 404
    status, body = worker.get(f"/api/heatmap?markers=*&{span}", token=token)
    assert status == 400
    status, body = worker.get(f"/api/tracks?markers=c*,v*&{span}", token=token)
    assert status == 200 and [t["marker_id"] for t in body["markers"]] == ["van"]
    status, body = worker.get(f"/api/heatmap?markers=van&zoom=14&{span}", token=token)
    assert status == 200 and body["points"] == len(points) and len(body["cells"]) < len(points)


def test_a_heatmap_fitted_to_the_map_says_its_zoom_and_where_the_points_are(stack, day, browser):
    worker, gpx, points, span = day
    status, body = worker.get(f"/api/heatmap?markers=car,van&fit=1000x700&{span}")
    assert status == 200 and body["points"] == 2 * len(points)
    (south, west), (north, east) = body["bounds"]
    lats = [p.latitude for p in points]
    lons = [p.longitude for p in points] + [p.longitude + SHIFT for p in points]
    assert south <= min(lats) and north >= max(lats) and west <= min(lons) and east >= max(lons)
    assert 12 <= body["zoom"] <= 17
    assert worker.get(f"/api/heatmap?markers=car&fit=wide&{span}")[0] == 400

    page = browser.new_page(viewport={"width": 1024, "height": 800})
    errors = watch(page)
    stack.sign_in(page, worker, f"/history?markers=car,van&view=heatmap&{span}")
    page.wait_for_function("() => window.historyView && window.historyView.heatReady", timeout=30_000)
    assert page.evaluate("() => window.historyView.heatPoints") == 2 * len(points)
    assert page.evaluate("() => window.historyView.map.getBounds().contains([%f, %f])" % (lats[0], lons[0]))
    assert page.locator("#replay").is_hidden()
    assert errors == []
    page.close()
