"""The live map's script in headless Chromium, without a worker: the page is built as
``GET /map`` builds it, and the browser is answered from here. Marker ids are whatever a
device chose, including the names of JavaScript's own object members."""
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from tracker.positions.model import MARKER_ID_PATTERN

ORIGIN = "http://tracker.test"
SOURCE = "/markers.geojson"
STATIC = (Path(__file__).resolve().parents[2] / "web" / "static").resolve()
MEMBER_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"]
MARKERS = 1_000
IDS = MEMBER_NAMES + [f"phone-{i:04d}" for i in range(MARKERS - len(MEMBER_NAMES))]


def feature(marker_id: str, lat: float, lon: float) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"marker_id": marker_id, "time": datetime.now(timezone.utc).isoformat(),
                           "speed": 5.0, "heading": 90, "battery": 80, "source": "test"}}


def collection(ids: list[str], moved: dict[str, tuple[float, float]] | None = None) -> bytes:
    moved = moved or {}
    features = [feature(marker_id, *moved.get(marker_id, (45.0 + (i % 40) * 0.01, 14.0 + (i // 40) * 0.01)))
                for i, marker_id in enumerate(ids)]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def live_map_html(refresh_seconds: float = 0.2, **options) -> str:
    from web import assets
    from web.map import base_map, live_markers, render

    if assets.missing():
        pytest.fail("the map's JavaScript is missing: run `python -m web.assets fetch` (make install)")
    fmap = base_map("Live map")
    live_markers(SOURCE, refresh_seconds=refresh_seconds, stale_after=300, **options).add_to(fmap)
    return render(fmap)


class Server:
    """Answers the page's requests: the map (with the workers' security headers), its
    vendored assets, ``body`` as the markers, and ``answers[path]`` = (status, body)."""

    def __init__(self, html: str, body: bytes) -> None:
        from web.headers import PAGE_HEADERS

        self.html = html
        self.body = body
        self.headers = PAGE_HEADERS
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.asked: list[str] = []

    def __call__(self, route) -> None:
        url = urlsplit(route.request.url)
        if url.netloc == urlsplit(ORIGIN).netloc:
            self.asked.append(url.path)
        if url.netloc != urlsplit(ORIGIN).netloc:
            route.abort()  # map tiles: not needed to draw markers
        elif url.path == "/map":
            route.fulfill(status=200, content_type="text/html", body=self.html, headers=self.headers)
        elif url.path == SOURCE:
            route.fulfill(status=200, content_type="application/geo+json", body=self.body)
        elif url.path in self.answers:
            status, body = self.answers[url.path]
            route.fulfill(status=status, content_type="application/json", body=body)
        elif url.path.startswith("/static/") and self._static(url.path).is_file():
            route.fulfill(status=200, path=str(self._static(url.path)))
        else:
            route.fulfill(status=404, body="not found")

    @staticmethod
    def _static(path: str) -> Path:
        target = (STATIC / path.removeprefix("/static/")).resolve()
        return target if target.is_relative_to(STATIC) else STATIC


@pytest.fixture
def live_map(browser):
    server = Server(live_map_html(), collection(IDS))
    page = browser.new_page(viewport={"width": 1024, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", server)
    page.goto(ORIGIN + "/map")
    yield page, server
    page.close()
    assert errors == []


def wait_for_refresh(page, after: int) -> int:
    """Wait for a refresh after the ``after``-th; fail with the status line if one failed."""
    page.wait_for_function(
        """after => window.tracker && (window.tracker.updates > after
               || document.querySelector('.tracker-status').textContent.includes('failed'))""",
        arg=after, timeout=15_000)
    status = page.evaluate("() => document.querySelector('.tracker-status').textContent")
    assert "failed" not in status, status
    return page.evaluate("() => window.tracker.updates")


DRAWN = "() => window.tracker.layer.drawnIds().length"


def test_every_marker_is_drawn_whatever_its_id(live_map):
    page, _ = live_map
    assert all(MARKER_ID_PATTERN.fullmatch(marker_id) for marker_id in MEMBER_NAMES)
    wait_for_refresh(page, 0)
    assert page.evaluate("() => window.tracker.markers instanceof Map")
    assert page.evaluate("() => window.tracker.markers.size") == MARKERS
    assert page.evaluate(DRAWN) == MARKERS
    assert page.evaluate("""names => names.every(id => window.tracker.markers.has(id)
        && window.tracker.layer.drawnIds().includes(id))""", MEMBER_NAMES)
    assert page.evaluate("() => ({}).lat === undefined && ({}).id === undefined")
    assert page.evaluate("() => document.querySelector('.tracker-status').textContent").startswith("1000 markers")


def test_refreshes_keep_move_and_remove_those_markers(live_map):
    page, server = live_map
    updates = wait_for_refresh(page, 0)
    server.body = collection(IDS, moved={"__proto__": (45.305, 14.205), "constructor": (45.055, 14.055)})
    page.wait_for_function("""() => {
        const p = window.tracker.markers.get('__proto__'), c = window.tracker.markers.get('constructor');
        return p.lat === 45.305 && p.lon === 14.205 && c.lat === 45.055 && c.lon === 14.055;
    }""", timeout=15_000)
    updates = wait_for_refresh(page, updates)
    assert page.evaluate("() => window.tracker.markers.size") == MARKERS
    assert page.evaluate(DRAWN) == MARKERS

    server.body = collection([marker_id for marker_id in IDS if marker_id not in ("toString", "__proto__")])
    page.wait_for_function(f"() => window.tracker.markers.size === {MARKERS - 2}", timeout=15_000)
    wait_for_refresh(page, updates)
    assert page.evaluate(DRAWN) == MARKERS - 2
    assert page.evaluate("() => !window.tracker.markers.has('toString') && !window.tracker.markers.has('__proto__')")
    assert page.evaluate("() => window.tracker.markers.has('constructor')")


# --- /map's geofence layer and events panel (opt-in: a share link's page has neither) ---

GEOFENCES = "/geofences"
EVENTS = "/events"
HOSTILE = "<img src=x onerror=alert(1)>"


def geofences_body() -> bytes:
    square = [[[14.0, 45.0], [14.1, 45.0], [14.1, 45.1], [14.0, 45.1], [14.0, 45.0]]]
    return orjson.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": 1, "geometry": {"type": "Point", "coordinates": [14.2, 45.2]},
         "properties": {"name": "Depot", "markers": [], "radius": 500.0, "speed_limit": 8.0}},
        {"type": "Feature", "id": 2, "geometry": {"type": "Polygon", "coordinates": square},
         "properties": {"name": HOSTILE, "markers": []}},
        {"type": "Feature", "id": 3, "geometry": {"type": "MultiPolygon", "coordinates": [square]},
         "properties": {"name": "Islands", "markers": ["phone-"]}},
    ]})


def event(n: int, marker_id: str, kind: str, **fields) -> dict:
    return {"id": f"e{n}", "marker_id": marker_id, "type": kind, "time": f"2026-01-01T10:00:{n:02d}Z",
            "position": {"lat": 45.0, "lon": 14.0}, **fields}


EVENT_RECORDS = [  # as /api/events answers: newest first
    event(9, "phone-0001", "online"),
    event(8, "__proto__", "geofence_enter", geofence_id=2, geofence_name=HOSTILE),
    event(7, "constructor", "overspeed", speed=31.24, limit=25),
    event(6, "phone-0002", "geofence_exit", geofence_id=1, geofence_name="Depot", late=True),
    event(5, "phone-0003", "low_battery", battery=15),
    event(4, "phone-0001", "offline"),
]


def open_page(browser, server: Server, viewport=(1024, 700)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.route("**/*", server)
    page.goto(ORIGIN + "/map")
    return page, problems


@pytest.fixture
def full_map(browser):
    server = Server(live_map_html(geofences=GEOFENCES, events=EVENTS, geofence_refresh_seconds=0.3), collection(IDS))
    server.answers[GEOFENCES] = (200, geofences_body())
    server.answers[EVENTS] = (200, orjson.dumps({"events": EVENT_RECORDS}))
    page, problems = open_page(browser, server)
    yield page, server
    page.close()
    assert problems == []


def wait_for_events(page, after: int = 0) -> int:
    page.wait_for_function("after => window.tracker && window.tracker.eventUpdates > after", arg=after,
                           timeout=15_000)
    return page.evaluate("() => window.tracker.eventUpdates")


#: Whether the map's centre is within a pixel or two of ``at`` (a pan moves by whole pixels).
CENTRED_ON = """at => { const map = window.tracker.map, p = map.latLngToContainerPoint(at), size = map.getSize();
    return Math.abs(p.x - size.x / 2) <= 2 && Math.abs(p.y - size.y / 2) <= 2; }"""


def rows(page) -> list[dict]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.tracker-event')).map(row => ({
        time: row.querySelector('time').dateTime, marker: row.querySelector('a').textContent,
        href: row.querySelector('a').getAttribute('href'), text: row.querySelector('.tracker-event-text').textContent}))""")


def test_a_page_without_the_options_asks_for_neither(live_map):
    page, server = live_map
    wait_for_refresh(page, 0)
    page.wait_for_timeout(300)
    assert not any(path.startswith(("/api/events", "/api/geofences")) for path in server.asked)
    assert page.locator(".tracker-events").count() == 0
    assert page.locator(".leaflet-control-layers").count() == 0


def test_each_event_reads_as_a_sentence(full_map):
    page, _ = full_map
    said = page.evaluate("records => records.map(e => window.tracker.describeEvent(e))", [
        event(1, "a", "geofence_enter", geofence_id=3, geofence_name="Depot"),
        event(1, "a", "geofence_exit", geofence_id=3, geofence_name="Depot"),
        event(1, "a", "geofence_exit", geofence_id=3),
        event(1, "a", "overspeed", speed=31.2, limit=25),
        event(1, "a", "overspeed", speed=30, limit=22.5, late=True),
        event(1, "a", "low_battery", battery=15),
        event(1, "a", "low_battery", battery=9.5),
        event(1, "a", "offline"),
        event(1, "a", "online"),
        event(1, "a", "geofence_enter", geofence_id=3, geofence_name="Depot", late=True),
        event(1, "a", "something_new"),
        event(1, "a", "alarm", alarm="sos"),
        event(1, "a", "alarm"),
    ])
    assert said == ["entered Depot", "left Depot", "left geofence 3", "speeding 31.2 m/s (limit 25)",
                    "speeding 30.0 m/s (limit 22.5) (late)", "battery 15 %", "battery 9.5 %", "offline",
                    "back online", "entered Depot (late)", "something_new", "ALARM sos", "ALARM"]


def test_the_panel_lists_events_newest_first_as_text_and_leads_to_the_marker(full_map):
    page, server = full_map
    wait_for_refresh(page, 0)
    wait_for_events(page)
    assert rows(page) == [
        {"time": e["time"], "marker": e["marker_id"], "href": f"/map/{e['marker_id']}", "text": text}
        for e, text in zip(EVENT_RECORDS, ["back online", f"entered {HOSTILE}", "speeding 31.2 m/s (limit 25)",
                                           "left Depot (late)", "battery 15 %", "offline"])
    ]
    assert page.locator(".tracker-events img").count() == 0
    assert page.locator(".tracker-events-toggle").inner_text().startswith("Events (6)")

    # Out of order from the server: still newest first. An unchanged answer keeps the rows.
    server.answers[EVENTS] = (200, orjson.dumps({"events": [event(10, "gone-1", "online")] + EVENT_RECORDS[::-1]}))
    page.wait_for_function("() => document.querySelectorAll('.tracker-event').length === 7", timeout=15_000)
    assert [row["time"][-3:-1] for row in rows(page)] == ["10", "09", "08", "07", "06", "05", "04"]
    page.evaluate("() => { document.querySelector('.tracker-event').marked = true; }")
    wait_for_events(page, wait_for_events(page))
    assert page.evaluate("() => document.querySelector('.tracker-event').marked === true")

    # A row centres the map on its marker where it is now (constructor: see collection()).
    at = page.evaluate("() => { const m = window.tracker.markers.get('constructor'); return {lat: m.lat, lng: m.lon}; }")
    page.locator(".tracker-event-text", has_text="speeding").click()
    page.wait_for_function(CENTRED_ON, arg=at, timeout=5_000)
    assert page.evaluate("() => window.tracker.map.getZoom()") >= 14
    page.locator(".leaflet-popup-content", has_text="constructor").wait_for()

    # A marker not on the map: its event's position.
    page.locator(".tracker-event", has_text="gone-1").locator("time").click()
    page.wait_for_function(CENTRED_ON, arg={"lat": 45.0, "lng": 14.0}, timeout=5_000)
    assert page.url == ORIGIN + "/map"


def test_events_that_cannot_be_had_leave_a_notice_and_the_map_working(full_map):
    page, server = full_map
    wait_for_events(page)
    server.answers[EVENTS] = (404, b'{"error": "not_found"}')
    page.wait_for_function("() => document.querySelector('.tracker-events-notice').textContent.includes('not available')",
                           timeout=15_000)
    assert len(rows(page)) == len(EVENT_RECORDS)  # what it had stays listed
    server.answers[EVENTS] = (500, b"oops")
    page.wait_for_function("() => document.querySelector('.tracker-events-notice').textContent.includes('HTTP 500')",
                           timeout=15_000)
    server.answers[EVENTS] = (200, b"not json")
    page.wait_for_function("() => document.querySelector('.tracker-events-notice').textContent.includes('could not be read')",
                           timeout=15_000)
    wait_for_refresh(page, wait_for_refresh(page, 0))  # the markers go on refreshing
    server.answers[EVENTS] = (200, b'{"events": []}')
    page.wait_for_function("() => document.querySelector('.tracker-events-notice').textContent === 'no events yet'",
                           timeout=15_000)
    assert rows(page) == []


GEOFENCE_SHAPES = """() => window.tracker.geofences.getLayers().map(layer => ({
    id: layer.geofenceId, circle: layer instanceof L.Circle, polygon: layer instanceof L.Polygon,
    radius: layer instanceof L.Circle ? layer.getRadius() : null, drawn: window.tracker.map.hasLayer(layer),
    tooltip: layer.getTooltip().getContent().textContent}))"""


def test_geofences_are_drawn_under_the_markers_and_can_be_hidden(full_map):
    page, server = full_map
    page.wait_for_function("() => window.tracker.geofenceUpdates > 0", timeout=15_000)
    shapes = sorted(page.evaluate(GEOFENCE_SHAPES), key=lambda shape: shape["id"])
    assert shapes == [
        {"id": 1, "circle": True, "polygon": False, "radius": 500.0, "drawn": True,
         "tooltip": "Depot, speed limit 8 m/s"},
        {"id": 2, "circle": False, "polygon": True, "radius": None, "drawn": True, "tooltip": HOSTILE},
        {"id": 3, "circle": False, "polygon": True, "radius": None, "drawn": True, "tooltip": "Islands"},
    ]
    # Under the markers' canvas, so a marker on a geofence stays on top.
    wait_for_refresh(page, 0)
    assert page.evaluate("""() => { const map = window.tracker.map, z = pane => Number(getComputedStyle(pane).zIndex);
        return window.tracker.geofences.getLayers().every(l => map.getPane('overlayPane').contains(l._renderer._container))
            && z(map.getPane('trackerMarkers')) > z(map.getPane('overlayPane'))
            && map.getPane('trackerMarkers').contains(document.querySelector('canvas.tracker-markers')); }""")

    # Switched off in the layer control: not drawn, and not fetched while hidden.
    page.hover(".leaflet-control-layers")
    page.get_by_label("Geofences").uncheck()
    assert page.evaluate(GEOFENCE_SHAPES) and not any(s["drawn"] for s in page.evaluate(GEOFENCE_SHAPES))
    asked = server.asked.count(GEOFENCES)
    page.wait_for_timeout(1_000)
    assert server.asked.count(GEOFENCES) == asked
    # Back on: drawn again, and the set that changed meanwhile is fetched.
    server.answers[GEOFENCES] = (200, orjson.dumps({"type": "FeatureCollection",
                                                    "features": orjson.loads(geofences_body())["features"][:1]}))
    page.get_by_label("Geofences").check()
    page.wait_for_function("() => window.tracker.geofences.getLayers().length === 1", timeout=15_000)
    assert [s["drawn"] for s in page.evaluate(GEOFENCE_SHAPES)] == [True]


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@pytest.mark.parametrize("viewport", [(360, 640), (640, 360), (1280, 800)])
def test_the_panel_folds_and_keeps_clear_of_the_map_controls(browser, viewport):
    server = Server(live_map_html(geofences=GEOFENCES, events=EVENTS), collection(IDS[:10]))
    server.answers[GEOFENCES] = (200, geofences_body())
    server.answers[EVENTS] = (200, orjson.dumps({"events": EVENT_RECORDS * 9}))
    page, problems = open_page(browser, server, viewport)
    wait_for_refresh(page, 0)
    wait_for_events(page)
    panel = page.locator(".tracker-events")
    small = viewport[0] <= 600 or viewport[1] <= 500
    assert page.locator(".tracker-events-list").is_visible() is not small  # small screens: folded
    for _ in range(2):
        page.click(".tracker-events-toggle")
        controls = [page.locator(selector).bounding_box() for selector in
                    (".leaflet-control-zoom", ".leaflet-control-layers", ".leaflet-control-attribution",
                     ".tracker-status")]
        box = panel.bounding_box()
        assert box["x"] >= 0 and box["y"] + box["height"] <= viewport[1], box
        assert not any(boxes_overlap(box, control) for control in controls), (box, controls)
    page.close()
    assert problems == []


def test_a_marker_heard_lately_is_not_offline_whatever_the_age_of_its_fix(full_map):
    """A parked phone's heartbeats: its fix is an hour old, its last report a second."""
    page, _ = full_map
    statuses = page.evaluate("""() => [
        window.tracker.statusOf({t: Date.now() - 3600e3, speed: 0}),
        window.tracker.statusOf({t: Date.now() - 3600e3, heard: Date.now() - 1000, speed: 0})]""")
    assert statuses == ["offline", "stopped"]
