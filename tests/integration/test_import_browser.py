"""Track files imported from the browser, in Chromium on a real worker: a GPX lands its
points; a file with bad points says how many were skipped and why; a file that is no track
says so in words; the upload's rules hold over HTTP."""
import gpxpy
import orjson
import pytest

from tests.integration.test_admin_browser import watch
from tests.integration.test_import_journeys import GPX_DIR
from tests.integration.test_map_browser import ARTIFACTS
from tracker.testing import wait_for

HIKE = "cerknicko-jezero.gpx"
BAD_GPX = """<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
<trkpt lat="45.0" lon="14.0"><time>2026-03-01T10:00:00Z</time></trkpt>
<trkpt lat="95.0" lon="14.0"><time>2026-03-01T10:00:10Z</time></trkpt>
<trkpt lat="45.001" lon="14.001"><time>2026-03-01T10:00:20Z</time></trkpt>
<trkpt lat="45.002" lon="14.002"><time>2026-03-01T10:00:30Z</time></trkpt>
</trkseg></trk></gpx>"""


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker


def stored(stack, marker: str) -> int:
    return stack.query("SELECT count(*) FROM positions WHERE marker_id = %s", marker)[0][0]


def import_file(page, path, marker: str) -> str:
    page.locator("#import-file").set_input_files(str(path))
    page.get_by_label("As the marker").fill(marker)
    page.get_by_role("button", name="Import the file").click()
    page.wait_for_function("() => ['done', 'failed'].includes(document.body.dataset.importState)", timeout=120_000)
    return page.evaluate("() => document.body.dataset.importState")


def test_an_uploaded_gpx_lands_its_points(stack, worker, browser):
    path = GPX_DIR / HIKE
    if not path.exists():
        pytest.fail(f"the shared GPX tracks are expected in {GPX_DIR}")
    points = sum(len(segment.points) for track in gpxpy.parse(path.read_text()).tracks for segment in track.segments)
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/import")
    assert import_file(page, path, "uploaded-hike") == "done"
    assert page.locator("#import-status").inner_text() == f"Imported {points:,} points as uploaded-hike; 0 skipped."
    assert page.evaluate("() => [document.getElementById('import-progress').value, "
                         "document.getElementById('import-progress').max]") == [1, 1]
    wait_for(lambda: stored(stack, "uploaded-hike") == points, 60, "the uploaded points in history")
    page.locator("#list tr", has_text="uploaded-hike").wait_for()
    page.screenshot(path=str(ARTIFACTS / "admin-import.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("link", name="See uploaded-hike's track").click()
    page.wait_for_function("() => window.historyView && window.historyView.drawn", timeout=30_000)
    assert page.evaluate("() => window.historyView.tracks[0].points") == points
    assert errors == []
    page.close()


def test_skipped_points_and_a_file_that_is_no_track_are_told_in_words(stack, worker, browser, tmp_path):
    bad = tmp_path / "with-a-bad-point.gpx"
    bad.write_text(BAD_GPX)
    junk = tmp_path / "notes.csv"
    junk.write_text("hello\nthis is no track\n")
    page = browser.new_page(viewport={"width": 800, "height": 900})
    errors = watch(page)
    stack.sign_in(page, worker, "/admin/import")
    assert import_file(page, bad, "uploaded-bad") == "done"
    assert page.locator("#import-status").inner_text() == "Imported 3 points as uploaded-bad; 1 skipped."
    reasons = page.get_by_role("region", name="Points skipped in with-a-bad-point.gpx")
    assert "lat" in reasons.locator("tbody th").first.inner_text() and "point 2" in reasons.inner_text()
    wait_for(lambda: stored(stack, "uploaded-bad") == 3, 60, "the three good points in history")

    page.reload()
    assert import_file(page, junk, "uploaded-junk") == "failed"
    alert = page.get_by_role("alert")
    assert "notes.csv" in alert.inner_text() and "tracker-import-" not in alert.inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-import-failed.png"), full_page=True)
    assert stored(stack, "uploaded-junk") == 0
    assert errors == []
    page.close()


def test_the_upload_s_rules(stack, worker):
    def create(token=None):
        kwargs = {} if token is None else {"token": token}
        return worker.request("POST", "/api/imports", orjson.dumps({"marker_id": "rules", "filename": "x.gpx"}),
                              headers={"Content-Type": "application/json"}, **kwargs)

    status, _, job = create()
    assert status == 201 and job["state"] == "waiting"
    status, _, error = worker.request("PUT", job["upload"], BAD_GPX.encode(), headers={"Content-Type": "text/plain"})
    assert status == 415
    status, _, accepted = worker.request("PUT", job["upload"], BAD_GPX.encode(),
                                         headers={"Content-Type": "application/octet-stream"})
    assert status == 202 and accepted["state"] in ("reading", "sending", "done")
    assert worker.request("PUT", job["upload"], BAD_GPX.encode(),
                          headers={"Content-Type": "application/octet-stream"})[0] == 409
    done = wait_for(lambda: (lambda j: j if j["state"] == "done" else None)(worker.get(f"/api/imports/{job['id']}")[1]),
                    60, "the import to finish")
    assert (done["sent"], done["skipped"], done["files"][0]["reasons"][0]["count"]) == (3, 1, 1)
    viewer = stack.user("import-viewer", "viewer", ["rules"])
    assert create(viewer)[0] == 403 and worker.get("/api/imports", token=viewer)[0] == 403
    status, _, error = worker.request("POST", "/api/imports", orjson.dumps(
        {"marker_id": "rules", "filename": "x.csv", "start": "2026-01-01T00:00:00Z"}), headers={"Content-Type": "application/json"})
    assert status == 400 and "together" in error["message"]
    assert any(e["action"] == "import.add" for e in worker.get("/api/audit")[1])
