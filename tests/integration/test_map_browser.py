"""The live map in headless Chromium (the ``browser`` fixture of tests/conftest.py): 1,000
markers, an escaped popup, a marker that moves."""
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from tracker.testing import wait_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HOSTILE = "<img src=x onerror=alert(1)>"
MARKERS = 1_000


def fix(marker_id: str, lat: float, lon: float, **extra) -> tuple[bytes, bytes]:
    value = {"marker_id": marker_id, "lat": lat, "lon": lon,
             "time": datetime.now(timezone.utc).isoformat(), "speed": 10.0, "heading": 90, "battery": 55, **extra}
    return marker_id.encode(), orjson.dumps(value)


@pytest.fixture(scope="module")
def map_worker(stack):
    workers = [stack.worker().start(), stack.worker().start()]
    for worker in workers:
        worker.wait_ready()
    records = [fix(f"map-{i:04d}", 45.0 + (i % 40) * 0.01, 14.0 + (i // 40) * 0.01) for i in range(MARKERS - 1)]
    records.append(fix("hostile", 45.2, 14.2, source=HOSTILE))
    stack.send(records)
    wait_for(lambda: stack.history_count() >= MARKERS, 90, "every marker to be stored")
    return workers[1]


def test_live_map_shows_every_marker_escapes_text_and_follows_movement(stack, map_worker, browser, figures):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(map_worker.url + "/map")
    assert "/login?next=%2Fmap" in page.url  # no session: the login form first
    started = time.monotonic()
    stack.sign_in(page, map_worker, "/map")
    assert page.url == map_worker.url + "/map"
    page.wait_for_function(f"() => window.tracker && window.tracker.markers.size === {MARKERS}",
                           timeout=30_000)
    figures.append((f"map: load and draw {MARKERS:,} markers", f"{time.monotonic() - started:.2f} s"))

    # Every marker is on the map, inside the view the page fitted to them.
    assert page.evaluate("""() => Array.from(window.tracker.markers.values()).every(
        m => window.tracker.map.hasLayer(m.layer)
             && window.tracker.map.getBounds().contains(m.layer.getLatLng()))""")

    # The popup shows what the device sent as text: no element is created from it.
    page.evaluate("() => { window.tracker.markers.get('hostile').layer.openPopup(); }")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert HOSTILE in popup.inner_text()
    assert "hostile" in popup.inner_text() and "s ago" in popup.inner_text()
    assert popup.locator("img").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map.png"))

    # A marker that moves is redrawn where it went, without a reload.
    page.evaluate("() => { window.notReloaded = true; }")
    stack.send([fix("map-0007", 46.5, 15.5)])
    page.wait_for_function(
        """() => { const p = window.tracker.markers.get('map-0007').layer.getLatLng();
                   return Math.abs(p.lat - 46.5) < 1e-9 && Math.abs(p.lng - 15.5) < 1e-9; }""",
        timeout=30_000,
    )
    assert page.evaluate("() => window.notReloaded === true")
    assert dialogs == []
    page.close()


def test_track_page_draws_the_track_and_a_working_time_slider(stack, map_worker, browser):
    start = int(time.time()) - 600
    stack.send([(b"walker", orjson.dumps({"marker_id": "walker", "lat": 45.0 + i * 0.001,
                                          "lon": 14.0 + i * 0.0005, "time": start + i * 10}))
                for i in range(30)])
    wait_for(lambda: stack.query("SELECT count(*) FROM positions WHERE marker_id = 'walker'")[0][0] == 30,
             60, "the walker's track")
    page = browser.new_page(viewport={"width": 1024, "height": 700})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    stack.sign_in(page, map_worker, "/map/walker")
    page.locator(".leaflet-interactive").first.wait_for()  # the polyline
    page.locator(".timecontrol-dateslider").wait_for()
    assert page.locator(".leaflet-marker-icon").count() >= 2  # start and end
    page.locator(".timecontrol-forward").click()
    page.screenshot(path=str(ARTIFACTS / "track.png"))
    assert errors == []
    page.close()


def test_a_viewer_signed_in_sees_only_its_groups_markers(stack, map_worker, browser):
    stack.user("map-viewer", "viewer", ["map-000*", "hostile"], password="map-viewer-password")
    page = browser.new_page(viewport={"width": 1024, "height": 700})
    stack.sign_in(page, map_worker, "/map", user="map-viewer", password="map-viewer-password")
    page.wait_for_function("() => window.tracker && window.tracker.updates > 0", timeout=30_000)
    drawn = page.evaluate("() => Array.from(window.tracker.markers.keys()).sort()")
    assert drawn == ["hostile"] + [f"map-000{i}" for i in range(10)]
    page.close()


def test_a_share_link_opens_without_an_account(stack, map_worker, browser):
    status, _, share = map_worker.request("POST", "/api/shares", orjson.dumps({"marker_id": "map-0003"}),
                                          headers={"Content-Type": "application/json"})
    assert status == 201
    page = browser.new_page(viewport={"width": 1024, "height": 700})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(map_worker.url + share["path"])
    page.wait_for_function("() => window.tracker && window.tracker.updates > 0", timeout=30_000)
    drawn = page.evaluate("() => Array.from(window.tracker.markers.keys())")
    assert drawn == ["map-0003"] and errors == []
    page.close()
