"""The live map's marker list, follow, view in the URL, clusters and push feed, in headless
Chromium without a worker (the page as ``GET /map`` builds it, answered from here)."""
import time

import orjson
import pytest

from tests.unit.test_live_map_js import ORIGIN, SOURCE, Server, live_map_html
from tracker.positions.live_hub import columns_of

LIVE = "/live"
NOW_MS = lambda: int(time.time() * 1000)  # noqa: E731


def marker(i: int, **extra) -> dict:
    return {"marker_id": f"car-{i:04d}", "lat": 45.0 + (i % 40) * 0.01, "lon": 14.0 + (i // 40) * 0.01,
            "age": 5, "speed": 1.0, "moving": False, **extra}


def fleet(count: int = 1_000) -> list[dict]:
    """car-0000 … : every 10th moving, every 50th stale (400 s), every 100th offline (700 s);
    car-0007 has a name."""
    cars = []
    for i in range(count):
        extra = {}
        if i % 10 == 3:
            extra.update(moving=True, speed=12.0)
        if i % 50 == 1:
            extra.update(age=400)
        if i % 100 == 2:
            extra.update(age=700)
        if i == 7:
            extra.update(name="Delivery van")
        cars.append(marker(i, **extra))
    return cars


def geojson(cars: list[dict]) -> bytes:
    now = time.time()
    return orjson.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
         "properties": {"marker_id": c["marker_id"], "speed": c["speed"], "moving": c["moving"], "name": c.get("name"),
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - c["age"])) + "Z"}}
        for c in cars]})


def open_map(browser, server: Server, path: str = "/map", viewport=(1280, 800)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.route("**/*", server)
    page.goto(ORIGIN + path)
    return page, problems


@pytest.fixture
def listed(browser):
    server = Server(live_map_html(marker_list=True, keep_view=True, track_links=True), geojson(fleet()))
    page, problems = open_map(browser, server)
    page.wait_for_function("() => window.tracker && window.tracker.updates > 0", timeout=15_000)
    yield page, server
    page.close()
    assert problems == []


def shown(page) -> list[str]:
    return page.evaluate("() => window.tracker.list.shown()")


def centred_on(page, marker_id: str) -> bool:
    return page.evaluate("""id => { const map = window.tracker.map, m = window.tracker.markers.get(id);
        const p = map.latLngToContainerPoint([m.lat, m.lon]), size = map.getSize();
        return Math.abs(p.x - size.x / 2) <= 1 && Math.abs(p.y - size.y / 2) <= 1; }""", marker_id)


def test_the_list_shows_every_marker_only_rendering_the_rows_in_view(listed):
    page, _ = listed
    assert shown(page) == [f"car-{i:04d}" for i in range(1_000)]
    assert page.locator(".tracker-list-shown").inner_text() == "1,000 markers"
    assert 10 <= page.locator(".tracker-list-row").count() <= 60
    first = page.locator(".tracker-list-row").first
    assert first.locator(".tracker-list-id").inner_text() == "car-0000"
    assert first.locator("a").get_attribute("href") == "/map/car-0000"
    counts = page.locator(".tracker-list-count").all_inner_texts()
    assert [c.strip() for c in counts] == ["moving 100", "stopped 870", "stale 20", "offline 10"]
    page.locator(".tracker-list-scroll").evaluate("el => { el.scrollTop = 26 * 500; }")
    page.wait_for_function("() => document.querySelector('.tracker-list-row .tracker-list-id').textContent === 'car-0500'",
                           timeout=5_000)


def test_search_narrows_by_id_or_name_and_counts_filter_by_status(listed):
    page, _ = listed
    page.fill(".tracker-list-search", "car-001")
    assert shown(page) == [f"car-{i:04d}" for i in range(10, 20)]
    assert page.locator(".tracker-list-shown").inner_text() == "10 of 1,000 markers"
    page.fill(".tracker-list-search", "VAN")
    assert shown(page) == ["car-0007"]
    assert page.locator(".tracker-list-row .tracker-list-name").inner_text() == "Delivery van"
    page.fill(".tracker-list-search", "")
    page.locator(".tracker-list-count[data-status=offline]").click()
    assert shown(page) == [f"car-{i:04d}" for i in range(2, 1_000, 100)]
    assert page.locator(".tracker-list-row .tracker-dot").evaluate_all(
        "dots => dots.map(d => d.dataset.status)") == ["offline"] * 10
    page.locator(".tracker-list-count[data-status=offline]").click()
    assert len(shown(page)) == 1_000


def test_sort_by_newest_fix_puts_the_offline_markers_last(listed):
    page, _ = listed
    page.select_option(".tracker-list-sort", "time")
    order = shown(page)
    assert order[-10:] == sorted(f"car-{i:04d}" for i in range(2, 1_000, 100)) or \
        set(order[-10:]) == {f"car-{i:04d}" for i in range(2, 1_000, 100)}


def test_a_row_opens_its_markers_popup_and_follow_keeps_it_centred(listed):
    page, server = listed
    page.fill(".tracker-list-search", "car-0123")
    page.locator(".tracker-list-row", has_text="car-0123").locator(".tracker-list-id").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "car-0123" in popup.inner_text()
    assert page.evaluate("() => window.tracker.popupId()") == "car-0123"
    assert centred_on(page, "car-0123")

    popup.locator("button.tracker-follow").click()
    assert page.evaluate("() => window.tracker.following()") == "car-0123"
    assert page.locator(".tracker-list-following").inner_text().startswith("following car-0123")
    assert page.evaluate("() => decodeURIComponent(location.hash)").endswith("/car-0123")
    cars = fleet()
    cars[123].update(lat=45.2345, lon=14.3456)
    server.body = geojson(cars)
    page.wait_for_function("""() => { const m = window.tracker.markers.get('car-0123');
        return m.lat === 45.2345 && m.lon === 14.3456; }""", timeout=15_000)
    assert centred_on(page, "car-0123")
    assert "car-0123" in popup.inner_text()

    page.locator(".tracker-list-following button").click()
    assert page.evaluate("() => window.tracker.following()") is None
    assert not page.evaluate("() => location.hash").endswith("/car-0123")


def test_the_url_keeps_the_view_and_the_followed_marker(browser):
    server = Server(live_map_html(marker_list=True, keep_view=True), geojson(fleet(200)))
    page, problems = open_map(browser, server, "/map#13/45.1/14.02")
    page.wait_for_function("() => window.tracker && window.tracker.updates > 0", timeout=15_000)
    view = page.evaluate("() => [window.tracker.map.getZoom(), window.tracker.map.getCenter()]")
    assert view[0] == 13 and abs(view[1]["lat"] - 45.1) < 1e-9 and abs(view[1]["lng"] - 14.02) < 1e-9  # not refitted
    page.evaluate("() => window.tracker.map.setView([45.2, 14.03], 15)")
    page.wait_for_function("() => location.hash === '#15/45.20000/14.03000'", timeout=5_000)
    page.close()

    page, problems2 = open_map(browser, server, "/map#12/45/14/car-0042")
    page.wait_for_function("() => window.tracker && window.tracker.following() === 'car-0042'", timeout=15_000)
    assert page.evaluate("() => window.tracker.map.getZoom()") == 12
    assert centred_on(page, "car-0042")
    page.close()
    assert problems == [] and problems2 == []


def test_100_000_markers_are_clustered_and_drawn_one_by_one_when_few_are_in_view(browser):
    cars = [marker(i, lat=40 + (i % 300) * 0.02, lon=5 + (i // 300) * 0.03) for i in range(100_000)]
    server = Server(live_map_html(refresh_seconds=600, marker_list=True), geojson(cars))
    del cars
    page, problems = open_map(browser, server)
    page.wait_for_function("() => window.tracker && window.tracker.markers.size === 100000", timeout=60_000)
    page.wait_for_function("() => window.tracker.layer.mode === 'clusters' && window.tracker.layer._clusters", timeout=30_000)
    assert 0 < page.evaluate("() => window.tracker.layer._clusters.data.length / 4") < 3_000
    assert "/static/tracker/cluster_worker.js" in " ".join(server.asked)
    page.evaluate("() => window.tracker.map.setView([41, 6], 14, {animate: false})")
    page.wait_for_function("() => window.tracker.layer.mode === 'dots'", timeout=10_000)
    drawn = page.evaluate("() => window.tracker.layer.drawnIds().length")
    assert 0 < drawn <= 3_000
    page.close()
    assert problems == []


def sse(*messages: tuple[str, dict]) -> bytes:
    return b"retry: 60000\n\n" + b"".join(
        f"id: {n}\nevent: {kind}\ndata: ".encode() + orjson.dumps(body) + b"\n\n" for n, (kind, body) in enumerate(messages))


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_the_page_draws_from_the_push_feed_without_polling(browser, layout):
    now = NOW_MS()
    rows = [[f"car-{i}", 45.0 + i * 0.01, 14.0, now, 3.0, 90, 80, True, None, None, now + 20] for i in range(5)]
    server = Server(live_map_html(live=LIVE, marker_list=True), geojson([]))
    server.streams = {}
    original = server.__call__

    def message(rows: list, removed: list) -> dict:
        if layout == "rows":
            return {"m": rows, "r": removed}
        return {"t": now + 5_000, "c": columns_of(rows, now + 5_000), "r": removed}  # as the hub encodes them

    def answer(route):
        if route.request.url.endswith(LIVE):
            server.asked.append(LIVE)
            route.fulfill(status=200, content_type="text/event-stream", body=sse(
                ("snapshot", message(rows, [])),
                ("update", message([["car-1", 45.5, 14.5, now + 1000, 3.0, 90, 80, True, None, "Bus", now + 1500]],
                                   ["car-4"]))))
        else:
            original(route)

    page = browser.new_page(viewport={"width": 1024, "height": 700})
    page.route("**/*", answer)
    page.goto(ORIGIN + "/map")
    page.wait_for_function("() => window.tracker && window.tracker.markers.size === 4", timeout=15_000)
    assert page.evaluate("""() => { const m = window.tracker.markers.get('car-1');
        return [m.lat, m.lon, m.name, m.t, m.heard, m.speed, m.source]; }""") == [45.5, 14.5, "Bus", now + 1000,
                                                                                now + 1500, 3, None]
    assert page.locator(".tracker-list-shown").inner_text() == "4 markers"
    page.wait_for_timeout(500)
    assert SOURCE not in server.asked and page.locator(".tracker-fallback").count() == 0
    page.close()


def test_a_feed_that_cannot_be_had_falls_back_to_polling_with_a_notice(browser):
    server = Server(live_map_html(live=LIVE), geojson(fleet(10)))
    server.answers[LIVE] = (503, b'{"error": "not_ready"}')
    page, problems = open_map(browser, server)
    page.wait_for_function("() => window.tracker && window.tracker.markers.size === 10", timeout=15_000)
    assert "refreshing every" in page.locator(".tracker-fallback").inner_text()
    assert SOURCE in server.asked
    page.close()
