"""The live map a dispatcher uses, on two real workers in headless Chromium: 1,000 markers from
``tracker simulate`` in the list, a search that narrows it, a row that opens the right
popup, "follow" that moves the view with its marker, and a position produced to Kafka that
reaches the page within 2 s through the push feed, without a single request to
``/api/markers.geojson``."""
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from tracker.testing import ROOT, wait_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
MARKERS = 1_000


def fix(marker_id: str, lat: float, lon: float) -> tuple[bytes, bytes]:
    return marker_id.encode(), orjson.dumps({"marker_id": marker_id, "lat": lat, "lon": lon, "speed": 12.0,
                                             "time": datetime.now(timezone.utc).isoformat()})


@pytest.fixture(scope="module")
def worker(stack):
    workers = [stack.worker().start(), stack.worker().start()]
    for each in workers:
        each.wait_ready()
    done = subprocess.run([sys.executable, "-m", "tracker.cli", "simulate", "--markers", str(MARKERS), "--rate", "4000",
                           "--duration", "1", "--prefix", "sim-", "--area", "45.0,14.0,5", "--seed", "7"],
                          env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: stack.query("SELECT count(DISTINCT marker_id) FROM positions")[0][0] >= MARKERS, 90,
             "every simulated marker in history")
    return workers[0]


@pytest.fixture
def page(stack, worker, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.errors, page.asked = [], []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("request", lambda request: page.asked.append(request.url))
    stack.sign_in(page, worker, "/map")
    page.wait_for_function(f"() => window.tracker && window.tracker.markers.size === {MARKERS}", timeout=30_000)
    yield page
    page.close()


def test_the_list_search_and_a_click_lead_to_the_right_marker(page):
    assert page.evaluate("() => window.tracker.list.shown().length") == MARKERS
    assert page.locator(".tracker-list-shown").inner_text() == "1,000 markers"
    page.fill(".tracker-list-search", "sim-0004")
    assert page.evaluate("() => window.tracker.list.shown()") == [f"sim-{i:05d}" for i in range(40, 50)]
    page.locator(".tracker-list-row", has_text="sim-00042").locator(".tracker-list-id").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert popup.inner_text().startswith("marker: sim-00042")
    assert page.evaluate("""() => { const map = window.tracker.map, m = window.tracker.markers.get('sim-00042');
        const p = map.latLngToContainerPoint([m.lat, m.lon]), size = map.getSize();
        return Math.abs(p.x - size.x / 2) <= 1 && Math.abs(p.y - size.y / 2) <= 1; }""")
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)  # the popup's fade-in
    page.screenshot(path=str(ARTIFACTS / "map-panel.png"))
    assert page.errors == []


def test_follow_moves_the_view_and_a_produced_position_arrives_within_2_s_without_polling(stack, page, figures):
    page.evaluate("() => window.tracker.focus('sim-00123')")
    page.locator(".leaflet-popup-content button.tracker-follow").click()
    assert page.evaluate("() => window.tracker.following()") == "sim-00123"
    assert page.evaluate("() => decodeURIComponent(location.hash)").endswith("/sim-00123")

    sent = time.monotonic()
    stack.send([fix("sim-00123", 45.0321, 14.0654)])
    page.wait_for_function("""() => { const m = window.tracker.markers.get('sim-00123');
        return Math.abs(m.lat - 45.0321) < 1e-9 && Math.abs(m.lon - 14.0654) < 1e-9; }""", timeout=10_000, polling=20)
    arrived = time.monotonic() - sent
    figures.append(("live map: produce to page", f"{arrived:.2f} s"))
    assert arrived <= 2.0
    page.wait_for_function("""() => { const map = window.tracker.map, p = map.latLngToContainerPoint([45.0321, 14.0654]),
        size = map.getSize(); return Math.abs(p.x - size.x / 2) <= 1 && Math.abs(p.y - size.y / 2) <= 1; }""",
                           timeout=5_000)
    assert not any("/api/markers.geojson" in url for url in page.asked)
    assert any(url.endswith("/api/live?layout=columns") for url in page.asked)  # the compact layout
    assert page.errors == []
