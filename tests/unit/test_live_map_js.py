"""The live map's script in headless Chromium, without a worker: the page is built as
``GET /map`` builds it, and the browser is answered from here. Marker ids are whatever a
device chose, including the names of JavaScript's own object members."""
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from tracker.position import MARKER_ID_PATTERN

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


def live_map_html() -> str:
    from web import assets
    from web.map import base_map, live_markers, render

    if assets.missing():
        pytest.fail("the map's JavaScript is missing: run `python -m web.assets fetch` (make install)")
    fmap = base_map("Live map")
    live_markers(SOURCE, refresh_seconds=0.2, stale_after=300).add_to(fmap)
    return render(fmap)


class Server:
    """Answers the page's requests: the map, its vendored assets and ``body`` as the markers."""

    def __init__(self, html: str, body: bytes) -> None:
        self.html = html
        self.body = body

    def __call__(self, route) -> None:
        url = urlsplit(route.request.url)
        if url.netloc != urlsplit(ORIGIN).netloc:
            route.abort()  # map tiles: not needed to draw markers
        elif url.path == "/map":
            route.fulfill(status=200, content_type="text/html", body=self.html)
        elif url.path == SOURCE:
            route.fulfill(status=200, content_type="application/geo+json", body=self.body)
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


DRAWN = """() => {
    const drawn = [];
    window.tracker.map.eachLayer(layer => { if (layer instanceof L.CircleMarker) drawn.push(layer); });
    return drawn.length;
}"""


def test_every_marker_is_drawn_whatever_its_id(live_map):
    page, _ = live_map
    assert all(MARKER_ID_PATTERN.fullmatch(marker_id) for marker_id in MEMBER_NAMES)
    wait_for_refresh(page, 0)
    assert page.evaluate("() => window.tracker.markers instanceof Map")
    assert page.evaluate("() => window.tracker.markers.size") == MARKERS
    assert page.evaluate(DRAWN) == MARKERS
    assert page.evaluate("""names => names.every(id => window.tracker.markers.has(id)
        && window.tracker.map.hasLayer(window.tracker.markers.get(id).layer))""", MEMBER_NAMES)
    assert page.evaluate("() => ({}).layer === undefined && ({}).props === undefined")
    assert page.evaluate("() => document.querySelector('.tracker-status').textContent").startswith("1000 markers")


def test_refreshes_keep_move_and_remove_those_markers(live_map):
    page, server = live_map
    updates = wait_for_refresh(page, 0)
    server.body = collection(IDS, moved={"__proto__": (46.5, 15.5), "constructor": (44.5, 13.5)})
    page.wait_for_function("""() => {
        const p = window.tracker.markers.get('__proto__').layer.getLatLng();
        const c = window.tracker.markers.get('constructor').layer.getLatLng();
        return p.lat === 46.5 && p.lng === 15.5 && c.lat === 44.5 && c.lng === 13.5;
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
