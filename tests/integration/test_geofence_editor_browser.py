"""Geofences drawn in Chromium on the geofences page: a circle drawn with the mouse raises
geofence_enter for a marker driven into it; a moved circle is saved where it was dropped; a
shape the API refuses shows the API's own message; a geofence is deleted."""
import time
from datetime import datetime, timezone

import orjson
import pytest

from tracker.testing import wait_for
from tests.integration.test_admin_browser import watch
from tests.integration.test_map_browser import ARTIFACTS

CENTRE = (45.0, 14.0)
RADIUS = 300.0


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker


def point(page, lat: float, lon: float) -> tuple[float, float]:
    """Where (lat, lon) is on the screen."""
    box = page.locator("#geofence-map").bounding_box()
    at = page.evaluate("([lat, lon]) => geofenceEditor.map.latLngToContainerPoint([lat, lon])", [lat, lon])
    return box["x"] + at["x"], box["y"] + at["y"]


def click(page, lat: float, lon: float) -> None:
    x, y = point(page, lat, lon)
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def geofences(worker) -> dict:
    return {f["properties"]["name"]: f for f in worker.get("/api/geofences")[1]["features"]}


def events_of(worker, marker_id: str) -> list[dict]:
    status, body = worker.get(f"/api/markers/{marker_id}/events")
    return body["events"] if status == 200 else []


def open_editor(stack, worker, browser, zoom: int = 15):
    """The geofences page, signed in as the admin, the map at ``CENTRE``: (page, its errors)."""
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/geofences")
    page.wait_for_function("() => Number(document.body.dataset.loaded || 0) > 0")
    page.evaluate("([lat, lon, zoom]) => geofenceEditor.map.setView([lat, lon], zoom, {animate: false})",
                  [*CENTRE, zoom])
    return page, errors


def test_a_circle_drawn_on_the_map_raises_geofence_enter(stack, worker, browser):
    page, errors = open_editor(stack, worker, browser)
    assert page.title() == "Geofences: GPS tracker"

    page.locator(".leaflet-pm-icon-circle").click()
    click(page, *CENTRE)
    edge_lon = CENTRE[1] + RADIUS / (111_320 * 0.7071)
    click(page, CENTRE[0], edge_lon)
    page.get_by_label("Name").fill("Drawn depot")
    page.get_by_label("Speed limit (m/s, empty: none)").fill("20")
    page.get_by_role("button", name="Save the geofence").click()
    page.locator("#list tr", has_text="Drawn depot").wait_for()
    depot = geofences(worker)["Drawn depot"]
    assert depot["geometry"]["type"] == "Point" and depot["properties"]["speed_limit"] == 20
    assert depot["properties"]["radius"] == pytest.approx(RADIUS, rel=0.05)
    assert depot["geometry"]["coordinates"] == pytest.approx([CENTRE[1], CENTRE[0]], abs=2e-4)
    page.screenshot(path=str(ARTIFACTS / "geofence-drawn.png"), full_page=True)

    now = int(time.time())
    stack.send([(b"driver-1", orjson.dumps({"marker_id": "driver-1", "lat": CENTRE[0], "lon": CENTRE[1] + 0.05,
                                            "time": now - 60}))])

    def entered():
        stack.send([(b"driver-1", orjson.dumps({"marker_id": "driver-1", "lat": CENTRE[0], "lon": CENTRE[1],
                                                "time": datetime.now(timezone.utc).isoformat()}))])
        return [e for e in events_of(worker, "driver-1") if e["type"] == "geofence_enter"]

    (event,) = wait_for(entered, 90, "geofence_enter for the drawn circle", interval=1.0)
    assert event["geofence_name"] == "Drawn depot" and event["geofence_id"] == depot["id"]
    assert errors == []
    page.close()


def test_a_chosen_circle_is_moved_renamed_and_deleted(stack, worker, browser):
    page, errors = open_editor(stack, worker, browser)
    page.wait_for_function("() => geofenceEditor.layers.size > 0")
    page.locator("#list tr", has_text="Drawn depot").get_by_role("button", name="Choose").click()
    page.evaluate("([lat, lon]) => geofenceEditor.map.setView([lat, lon], 15, {animate: false})", list(CENTRE))
    x, y = point(page, *CENTRE)
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + step * 10, y, steps=2)
    page.mouse.up()
    page.get_by_label("Name").fill("Moved depot")
    page.get_by_role("button", name="Save the geofence").click()
    page.locator("#list tr", has_text="Moved depot").wait_for()
    moved = geofences(worker)["Moved depot"]
    assert moved["geometry"]["coordinates"][0] > CENTRE[1] + 0.001  # east of where it was
    assert moved["properties"]["radius"] == pytest.approx(RADIUS, rel=0.05)

    page.locator("#list tr", has_text="Moved depot").get_by_role("button", name="Choose").click()
    page.get_by_role("button", name="Delete the geofence").click()
    page.get_by_text("No geofences yet.").wait_for()
    assert geofences(worker) == {}
    trail = [(e["action"], e["actor"], e["via"]) for e in worker.get("/api/audit?action=geofence")[1]]
    assert trail == [("geofence.remove", "admin", "session"), ("geofence.change", "admin", "session"),
                     ("geofence.add", "admin", "session")]
    assert errors == []
    page.close()


def test_a_crossed_polygon_gets_the_api_s_message(stack, worker, browser):
    page, errors = open_editor(stack, worker, browser, zoom=14)
    page.locator(".leaflet-pm-icon-polygon").click()
    d = 0.01
    corners = [(CENTRE[0] - d, CENTRE[1] - d), (CENTRE[0] + d, CENTRE[1] + d), (CENTRE[0] - d, CENTRE[1] + d),
               (CENTRE[0] + d, CENTRE[1] - d)]
    for corner in [*corners, corners[0]]:  # the first corner again closes it
        click(page, *corner)
    page.get_by_label("Name").fill("Bow tie")
    page.get_by_role("button", name="Save the geofence").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    geometry = page.evaluate("() => geofenceEditor.selected().toGeoJSON().geometry")
    status, _, refused = worker.request("POST", "/api/geofences", orjson.dumps(
        {"type": "Feature", "geometry": geometry, "properties": {"name": "Bow tie"}}),
        headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid" in refused["message"]
    assert alert.inner_text() == refused["message"][0].upper() + refused["message"][1:] + "."  # in a sentence
    page.screenshot(path=str(ARTIFACTS / "geofence-refused.png"), full_page=True)
    assert "Bow tie" not in geofences(worker)
    assert errors == []
    page.close()
