"""The live map in headless Chromium (the ``browser`` fixture of tests/conftest.py): 1,000
markers, an escaped popup, a marker that moves, the geofence layer and the events panel."""
import time
from datetime import datetime, timedelta, timezone
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
    assert page.url.split("#")[0] == map_worker.url + "/map"
    page.wait_for_function(f"() => window.tracker && window.tracker.markers.size === {MARKERS}",
                           timeout=30_000)
    figures.append((f"map: load and draw {MARKERS:,} markers", f"{time.monotonic() - started:.2f} s"))

    # Every marker is drawn, inside the view the page fitted to them.
    page.wait_for_function(f"() => window.tracker.layer.drawnIds().length === {MARKERS}", timeout=10_000)
    assert page.evaluate("""() => Array.from(window.tracker.markers.values()).every(
        m => window.tracker.map.getBounds().contains([m.lat, m.lon]))""")

    # The popup shows what the device sent as text: no element is created from it.
    page.evaluate("() => { window.tracker.openPopup('hostile'); }")
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
        """() => { const p = window.tracker.markers.get('map-0007');
                   return Math.abs(p.lat - 46.5) < 1e-9 && Math.abs(p.lon - 15.5) < 1e-9; }""",
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
    # The control's buttons are drawn without the icon font its stylesheet asks a CDN for.
    icons = page.evaluate("""() => ['play', 'forward', 'backward'].map(name => getComputedStyle(
        document.querySelector('a.timecontrol-' + name), '::before').backgroundImage)""")
    assert len(icons) == 3 and all(icon.startswith('url("data:image/svg+xml') for icon in icons), icons
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
    asked = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: asked.append(request.url))
    page.goto(map_worker.url + share["path"])
    page.wait_for_function("() => window.tracker && window.tracker.updates > 0", timeout=30_000)
    drawn = page.evaluate("() => Array.from(window.tracker.markers.keys())")
    assert drawn == ["map-0003"] and errors == []
    # The link holder has no account: no geofences, no events, not even asked for (the map
    # would have asked for them with its first markers).
    assert not [url for url in asked if "/api/events" in url or "/api/geofences" in url]
    assert page.locator(".tracker-events").count() == 0 and page.locator(".leaflet-control-layers").count() == 0
    page.close()


DEPOT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [13.5, 44.5]},
         "properties": {"name": "Depot", "radius": 800, "speed_limit": 25}}
YARD = {"type": "Feature", "properties": {"name": HOSTILE}, "geometry": {
    "type": "Polygon", "coordinates": [[[13.0, 44.0], [13.2, 44.0], [13.2, 44.2], [13.0, 44.2], [13.0, 44.0]]]}}


def insert_event(stack, record: dict) -> None:
    position = record["position"]
    stack.ensure_partitions("events", datetime.fromisoformat(record["time"]))
    stack.query("INSERT INTO events (event_id, marker_id, type, event_time, lat, lon, event) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING event_id",
                record["id"], record["marker_id"], record["type"], record["time"], position["lat"],
                position["lon"], orjson.dumps(record).decode())


def test_the_live_map_draws_geofences_and_lists_events_that_lead_to_their_marker(stack, map_worker, browser):
    ids = []
    for feature in (DEPOT, YARD):  # away from the markers: they raise no event of their own
        status, _, stored = map_worker.request("POST", "/api/geofences", orjson.dumps(feature),
                                               headers={"Content-Type": "application/json"})
        assert status == 201, stored
        ids.append(stored["id"])
    now = datetime.now(timezone.utc).replace(microsecond=0)

    def record(n: int, marker_id: str, kind: str, **fields) -> dict:  # n seconds ago
        return {"id": f"map-test-{n}", "marker_id": marker_id, "type": kind,
                "time": (now - timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
                "position": {"lat": 44.1, "lon": 13.1}, **fields}

    events = [  # oldest first, as they happened; each drawn elsewhere than its marker is now
        record(5, "map-0005", "geofence_enter", geofence_id=ids[0], geofence_name="Depot"),
        record(4, "map-0005", "overspeed", speed=31.24, limit=25),
        record(3, "map-0006", "geofence_exit", geofence_id=ids[1], geofence_name=HOSTILE, late=True),
        record(2, "map-0006", "low_battery", battery=15),
        record(1, "map-0005", "offline"),
    ]
    for event in events:
        insert_event(stack, event)
    said = ["entered Depot", "speeding 31.2 m/s (limit 25)", f"left {HOSTILE} (late)", "battery 15 %", "offline"]

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors, dialogs = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    stack.sign_in(page, map_worker, "/map")
    page.wait_for_function(f"() => window.tracker && window.tracker.markers.size >= {MARKERS}", timeout=30_000)

    # The geofence layer: a circle and a polygon, named, on by default; off and on again.
    page.wait_for_function("() => window.tracker.geofences.getLayers().length === 2", timeout=30_000)
    shapes = page.evaluate("""() => window.tracker.geofences.getLayers().map(layer => ({
        circle: layer instanceof L.Circle, radius: layer instanceof L.Circle ? layer.getRadius() : null,
        drawn: window.tracker.map.hasLayer(layer), name: layer.getTooltip().getContent().textContent}))""")
    assert sorted(shapes, key=lambda shape: shape["circle"]) == [
        {"circle": False, "radius": None, "drawn": True, "name": HOSTILE},
        {"circle": True, "radius": 800, "drawn": True, "name": "Depot, speed limit 25 m/s"}]
    page.hover(".leaflet-control-layers")
    page.get_by_label("Geofences").uncheck()
    assert page.evaluate("() => window.tracker.geofences.getLayers().every(l => !window.tracker.map.hasLayer(l))")
    page.get_by_label("Geofences").check()
    assert page.evaluate("() => window.tracker.geofences.getLayers().every(l => window.tracker.map.hasLayer(l))")
    page.mouse.move(640, 400)  # off the layer control: it folds

    # The panel: newest first, each row as text, the marker id a link to its track.
    page.wait_for_function("n => document.querySelectorAll('.tracker-event').length >= n", arg=len(events),
                           timeout=30_000)
    rows = page.evaluate("""() => Array.from(document.querySelectorAll('.tracker-event')).map(row => ({
        time: row.querySelector('time').dateTime, marker: row.querySelector('a').textContent,
        href: row.querySelector('a').getAttribute('href'), text: row.querySelector('.tracker-event-text').textContent}))""")
    times = [row["time"] for row in rows]
    assert times == sorted(times, reverse=True)
    ours = [row for row in rows if row["marker"] in ("map-0005", "map-0006")]
    assert ours == [{"time": event["time"], "marker": event["marker_id"], "href": f"/map/{event['marker_id']}",
                     "text": text} for event, text in reversed(list(zip(events, said)))]
    assert page.locator(".tracker-events img").count() == 0

    # A row centres the map on its marker, where the marker is now.
    at = page.evaluate("() => { const m = window.tracker.markers.get('map-0006'); return {lat: m.lat, lng: m.lon}; }")
    page.locator(".tracker-event").filter(has_text="map-0006").locator(".tracker-event-text",
                                                                        has_text="battery 15 %").click()
    page.wait_for_function("""at => { const map = window.tracker.map, p = map.latLngToContainerPoint(at),
        size = map.getSize(); return Math.abs(p.x - size.x / 2) <= 2 && Math.abs(p.y - size.y / 2) <= 2; }""",
        arg=at, timeout=10_000)
    page.locator(".leaflet-popup-content", has_text="map-0006").wait_for()
    page.screenshot(path=str(ARTIFACTS / "map-events.png"))

    # The marker id leads to its track page.
    with page.expect_navigation():
        page.locator(".tracker-event").filter(has_text="map-0005").filter(has_text="offline").locator("a").click()
    assert page.url == map_worker.url + "/map/map-0005"
    assert errors == [] and dialogs == []
    page.close()

