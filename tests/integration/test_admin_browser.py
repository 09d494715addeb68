"""The management pages in headless Chromium, as their users work with them: an admin adds a
phone and reads its settings from QR codes, the phone reports with them, a webhook gets a
test event, a viewer sees only its own pages; every page at 360 px wide."""
import asyncio
import threading
import urllib.parse
import urllib.request

import numpy
import orjson
import pytest
import zxingcpp
from aiohttp import web as aioweb

from tracker.testing import serve_http, wait_for
from tracker.webhooks.model import SIGNATURE_HEADER, verify
from tests.integration.test_map_browser import ARTIFACTS

PAGES = ("devices", "users", "groups", "geofences", "import", "tokens", "webhooks", "gateways", "shares", "audit")
ADMIN_ONLY = ("devices", "users", "groups", "geofences", "import", "webhooks", "gateways", "audit")

READ_IMAGE = """async selector => {
    const img = document.querySelector(selector);
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth * 2; canvas.height = img.naturalHeight * 2;
    const context = canvas.getContext('2d');
    context.imageSmoothingEnabled = false;
    context.fillStyle = '#fff'; context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(img, 0, 0, canvas.width, canvas.height);
    const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const gray = new Array(canvas.width * canvas.height);
    for (let i = 0; i < gray.length; i++) gray[i] = rgba[i * 4];
    return {width: canvas.width, height: canvas.height, gray};
}"""


def scanned(page, selector: str) -> str:
    """What a phone's camera reads from the QR code the page shows."""
    image = page.evaluate(READ_IMAGE, selector)
    pixels = numpy.array(image["gray"], dtype=numpy.uint8).reshape(image["height"], image["width"])
    texts = {found.text for found in zxingcpp.read_barcodes(pixels)}  # a code may be read twice over
    assert len(texts) == 1, f"{selector}: read {texts}"
    return texts.pop()


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker


@pytest.fixture
def receiver():
    """A webhook receiver on the loopback: the requests it got, as (headers, body)."""
    got, ready = [], threading.Event()
    loop = asyncio.new_event_loop()

    async def handle(request):
        got.append((dict(request.headers), await request.read()))
        return aioweb.Response(text="ok")

    async def start():
        app = aioweb.Application()
        app.router.add_post("/hook", handle)
        runner, url = await serve_http(app)
        state.update(runner=runner, url=url)
        ready.set()

    state = {}
    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    yield state["url"] + "/hook", got
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def watch(page) -> list[str]:
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    return errors


def test_an_admin_adds_a_phone_whose_qr_codes_configure_it_and_its_fix_reaches_the_map(stack, worker, browser):
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/devices")
    assert page.title() == "Devices: GPS tracker"
    page.get_by_label("Device id (its marker id)").fill("qr-phone")
    page.get_by_label("Name").fill("Ann's <b>phone</b>")
    page.get_by_role("button", name="Add the device").click()
    page.locator("img[data-qr=traccar]").wait_for()

    shown = dict(zip(page.locator("#shown-once dt").all_inner_texts(), page.locator("#shown-once dd").all_inner_texts()))
    secret = shown["Secret"]
    traccar = urllib.parse.urlsplit(scanned(page, "img[data-qr=traccar]"))
    assert f"{traccar.scheme}://{traccar.netloc}{traccar.path}" == shown["Server URL"] == \
        f"{worker.url}/ingest/osmand/{secret}"
    assert urllib.parse.parse_qs(traccar.query)["id"] == ["qr-phone"]
    owntracks = scanned(page, "img[data-qr=owntracks]")
    import base64
    configuration = orjson.loads(base64.b64decode(urllib.parse.unquote(owntracks.split("inline=", 1)[1])))
    assert (configuration["url"], configuration["username"], configuration["password"]) == \
        (shown["URL"], "qr-phone", secret) == (f"{worker.url}/ingest/owntracks", "qr-phone", secret)
    page.screenshot(path=str(ARTIFACTS / "admin-device-settings.png"), full_page=True)

    # The phone reports with what the code told it; its fix shows on the map and in the list.
    query = urllib.parse.urlencode({"id": "qr-phone", "lat": 46.05, "lon": 14.5})
    with urllib.request.urlopen(f"{shown['Server URL']}?{query}", data=b"", timeout=10) as answer:
        assert answer.status == 200
    page.locator("table", has_text="qr-phone").wait_for()
    row = page.locator("tr", has_text="qr-phone")
    assert "Ann's <b>phone</b>" in row.inner_text() and row.locator("b").count() == 0
    page.wait_for_function("() => !document.querySelector('#list tr th[scope=row]').parentElement"
                           ".children[2].textContent.includes('—')", timeout=30_000)  # the last fix, without a reload
    page.get_by_role("link", name="Live map").click()
    page.wait_for_function("() => window.tracker && window.tracker.markers.has('qr-phone')", timeout=30_000)
    assert page.evaluate("() => window.tracker.markers.get('qr-phone').lat") == pytest.approx(46.05)
    assert errors == []
    page.close()


def test_errors_from_the_api_are_shown_in_words_and_forms_work_with_the_keyboard(stack, worker, browser):
    page = browser.new_page(viewport={"width": 800, "height": 700})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/devices")
    page.get_by_label("Device id (its marker id)").fill("no spaces allowed")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "a device id is" in alert.inner_text().lower()

    page.goto(worker.url + "/admin/users")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "users-name"
    page.keyboard.type("kb-user")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # viewer -> admin
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # empty password: the tracker makes one
    page.locator("#shown-once dd").nth(1).wait_for()
    assert len(page.locator("#shown-once dd").nth(1).inner_text()) >= 8
    page.locator("tr", has_text="kb-user").wait_for()
    assert "admin" in page.locator("tr", has_text="kb-user").inner_text()
    assert errors == []
    page.close()


def test_a_webhook_gets_a_test_event_from_its_page(stack, worker, browser, receiver):
    url, got = receiver
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/webhooks")
    page.get_by_label("URL (https://…)").fill(url)
    page.get_by_role("button", name="Add the webhook").click()
    secret = page.locator("#shown-once dd").nth(1)
    secret.wait_for()
    secret = secret.inner_text()
    page.locator("tr", has_text=url).get_by_role("button", name="Send a test event").click()
    page.locator("#deliveries td", has_text="delivered").wait_for(timeout=30_000)
    headers, body = got[0]
    assert orjson.loads(body)["type"] == "test" and verify(secret, body, headers[SIGNATURE_HEADER])
    page.screenshot(path=str(ARTIFACTS / "webhook-test-event.png"), full_page=True)
    assert errors == []
    page.close()


def test_every_page_fits_a_phone_screen_has_a_title_and_headings(stack, worker, browser):
    worker.request("POST", "/api/groups", orjson.dumps({"name": "fleet", "markers": ["truck-*"]}),
                   headers={"Content-Type": "application/json"})
    worker.request("POST", "/api/gateways", orjson.dumps({"name": "traccar-1"}), headers={"Content-Type": "application/json"})
    worker.request("POST", "/api/shares", orjson.dumps({"marker_id": "qr-phone"}), headers={"Content-Type": "application/json"})
    page = browser.new_page(viewport={"width": 360, "height": 740})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/devices")
    for name in PAGES:
        page.goto(f"{worker.url}/admin/{name}")
        page.wait_for_function("() => Number(document.body.dataset.loaded || 0) > 0", timeout=10_000)
        assert page.title().endswith(": GPS tracker") and page.locator("h1").count() == 1
        assert page.locator("h2").count() >= 1
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, name
        page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
    for path, name in (("/history?markers=qr-phone", "history"), ("/reports?markers=qr-phone&kind=stops", "reports")):
        page.goto(worker.url + path)
        page.wait_for_function("() => Number(document.body.dataset.loaded || 0) > 0", timeout=10_000)
        assert page.locator("h1").count() == 1 and page.locator("h2").count() >= 1
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, name
        page.screenshot(path=str(ARTIFACTS / f"{name}-360px.png"), full_page=True)
    assert errors == []
    page.close()


def test_a_viewer_sees_neither_the_admin_pages_nor_links_to_them(stack, worker, browser):
    stack.user("page-viewer", "viewer", ["qr-*"], password="page-viewer-password")
    page = browser.new_page(viewport={"width": 800, "height": 700})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/tokens", user="page-viewer", password="page-viewer-password")
    links = page.locator("nav a").all_inner_texts()
    assert links == ["Live map", "History", "Reports", "API tokens", "Share links"]
    page.get_by_role("button", name="Make the token").click()
    page.locator("#shown-once dd").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr').length === 2")  # its own two
    assert page.locator("#list tbody tr", has_text="page-viewer").count() == 2
    for name in ADMIN_ONLY:
        answer = page.goto(f"{worker.url}/admin/{name}")
        assert answer.status == 403, name
        assert "only an admin" in page.inner_text("body")
    page.goto(f"{worker.url}/admin/shares")
    page.get_by_label("Marker id").fill("truck-1")  # not one of its markers
    page.get_by_role("button", name="Make the link").click()
    assert "not found" in page.get_by_role("alert").inner_text().lower()
    assert errors == []
    page.close()
