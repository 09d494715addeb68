"""Journeys on a real worker, Kafka and Postgres: trips and stops found live equal those
`tracker journeys rebuild` finds in history, late fixes make the day recompute to the same
result as a rebuild, spikes are flagged, and the API serves trips, stops, summaries and GPX."""
import csv
import io
import math
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg
import pytest

from tracker.journeys import rebuild as rebuilding
from tracker.journeys.records import RULES
from tracker.testing import run_sync, wait_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DAY = (datetime.now(timezone.utc) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
T0 = int(DAY.timestamp()) + 6 * 3600  # 06:00 UTC, three days ago
LAT0, LON0 = 45.0, 14.0


def at(x_m: float, y_m: float = 0.0) -> tuple[float, float]:
    return LAT0 + y_m / 111_195.0, LON0 + x_m / (111_195.0 * math.cos(math.radians(LAT0)))


class Day:
    """A marker's fixes, 10 s apart, along a line: waits, drives, a spike, a gap."""

    def __init__(self, marker_id: str, offset_m: float = 0.0) -> None:
        self.marker_id, self.t, self.x, self.y = marker_id, T0, 0.0, offset_m
        self.fixes: list[dict] = []

    def fix(self, **extra) -> None:
        lat, lon = at(self.x, self.y)
        self.fixes.append({"marker_id": self.marker_id, "time": self.t, "lat": lat, "lon": lon, **extra})

    def wait(self, seconds: int) -> "Day":
        for _ in range(seconds // 10):
            self.t += 10
            self.fix(speed=0.0)
        return self

    def drive(self, metres: float, speed: float = 15.0) -> "Day":
        """East, or west for negative metres."""
        for _ in range(round(abs(metres) / (speed * 10))):
            self.t += 10
            self.x += math.copysign(speed * 10, metres)
            self.fix()
        return self

    def spike(self) -> "Day":
        self.t += 10
        lat, lon = at(self.x + 30_000, self.y)
        self.fixes.append({"marker_id": self.marker_id, "time": self.t, "lat": lat, "lon": lon})
        return self

    def records(self):
        return [(f["marker_id"].encode(), orjson.dumps(f)) for f in self.fixes]


def a_day(marker_id: str, offset_m: float = 0.0) -> Day:
    day = Day(marker_id, offset_m)
    day.fix(speed=0.0)
    day.wait(600).drive(6_000).wait(900).drive(3_000).spike().drive(3_000).wait(400).drive(2_000)
    day.gap = (day.t, day.x)  # the last fix before 30 minutes without fixes
    day.t += 1_800
    day.wait(300).drive(4_000).wait(1_200).drive(1_500)
    return day


def journeys(stack, marker_id: str) -> dict[str, list[tuple]]:
    return {
        "trips": stack.query("SELECT start_time, end_time, round(distance_m::numeric, 3), round(max_speed::numeric, 3) "
                             "FROM trips WHERE marker_id = %s ORDER BY start_time", marker_id),
        "stops": stack.query("SELECT start_time, end_time, lat, lon FROM stops WHERE marker_id = %s "
                             "ORDER BY start_time", marker_id),
        "spikes": stack.query("SELECT fix_time FROM positions WHERE marker_id = %s AND spike ORDER BY fix_time",
                              marker_id),
    }


def settled(stack) -> bool:
    topic = stack.settings.journeys_topic
    # in the order the stages hand over: the agent sends the journeys records before it commits
    return (stack.caught_up("-intake", stack.settings.topic) and stack.caught_up("", stack.settings.batches_topic)
            and stack.caught_up("-journeys", topic) and stack.caught_up("-history", stack.settings.batches_topic)
            and not stack.query("SELECT 1 FROM journeys_dirty"))


def rebuild(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracker.cli", "journeys", "rebuild", *args],
                          env=stack.env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker


@pytest.fixture(scope="module")
def driven(stack, worker):
    """Three markers' days, sent in time order, written by the journeys sink."""
    days = [a_day(f"car-{i}", offset_m=i * 50.0) for i in range(3)]
    records = sorted((r for day in days for r in day.records()), key=lambda r: orjson.loads(r[1])["time"])
    stack.send(records)
    total = sum(len(day.fixes) for day in days)
    wait_for(lambda: stack.history_count() >= total, 60, "the history rows")
    # each marker's last trip ends IDLE_GRACE_SECONDS after its last fix was sent (its time
    # is long past), once the idle timer finds the marker's partition caught up
    wait_for(lambda: all(len(journeys(stack, day.marker_id)["trips"]) >= 5 for day in days) and settled(stack),
             60, "every marker's trips in Postgres")
    return days


def test_live_trips_and_stops_equal_a_rebuild_from_history(stack, driven):
    live = {day.marker_id: journeys(stack, day.marker_id) for day in driven}
    trips = live["car-0"]["trips"]
    assert len(trips) == 5, trips
    # the second: 3 km + 3 km, the spike left out; the third ends at the gap; the last
    # ends at the last fix (the marker fell silent)
    assert [float(t[2]) for t in trips] == pytest.approx([6_000, 6_000, 1_950, 4_050, 1_500], rel=0.01)
    assert len(live["car-0"]["spikes"]) == 1
    assert len(live["car-0"]["stops"]) == 5

    done = rebuild(stack)
    assert done.returncode == 0, done.stderr
    assert "fixes/s" in done.stdout and "rebuild:" in done.stderr
    assert {day.marker_id: journeys(stack, day.marker_id) for day in driven} == live


def test_stale_days_of_many_markers_are_recomputed_together_as_a_rebuild_finds_them(stack, driven, monkeypatch):
    """The sink's timer recomputes many markers' stale days at once: trips and stops deleted
    from them come back as they were, whether a range fits the one query or is read on
    its own, and a marker's two days are taken as one range."""
    live = {day.marker_id: journeys(stack, day.marker_id) for day in driven}
    second_half = DAY + timedelta(hours=7)
    for table in ("trips", "stops"):
        stack.query(f"DELETE FROM {table} WHERE marker_id = 'car-0' OR (marker_id = 'car-2' AND start_time >= %s) "
                    "RETURNING 1", second_half)
    stack.query("UPDATE positions SET spike = false WHERE marker_id = 'car-0' AND spike RETURNING 1")
    assert journeys(stack, "car-0") != live["car-0"] and journeys(stack, "car-2") != live["car-2"]

    monkeypatch.setattr(rebuilding, "RANGE_FIXES", 300)  # car-0's day is longer; car-2's range from 07:00 is not
    read_alone = []
    one_by_one = rebuilding.recompute

    async def recompute(conn, marker_id, *args, **kwargs):
        read_alone.append(marker_id)
        return await one_by_one(conn, marker_id, *args, **kwargs)

    monkeypatch.setattr(rebuilding, "recompute", recompute)
    ranges = [("car-0", DAY, DAY + timedelta(days=1)), ("car-2", second_half, DAY + timedelta(days=1)),
              ("car-0", DAY + timedelta(days=1), DAY + timedelta(days=2))]

    async def recompute_days():
        async with await psycopg.AsyncConnection.connect(stack.settings.database_url) as conn:
            async with conn.transaction():
                return await rebuilding.recompute_days(conn, ranges, RULES)

    done = run_sync(recompute_days())
    assert read_alone == ["car-0"]
    assert done.trips > 5 and done.spikes >= 1
    assert {day.marker_id: journeys(stack, day.marker_id) for day in driven} == live


def test_late_fixes_in_a_finished_day_recompute_it_as_a_rebuild_would(stack, driven):
    """The fixes of the 30 minutes the tracker was offline arrive the next day: it drove
    4.5 km away, stopped 7 minutes, and drove back."""
    before = journeys(stack, "car-1")
    gap_t, gap_x = driven[1].gap
    late = Day("car-1", offset_m=50.0)
    late.t, late.x = gap_t, gap_x
    late.wait(100).drive(4_500).wait(420).drive(-4_500).wait(500)
    assert late.t < gap_t + 1_800
    stack.send(late.records())
    wait_for(lambda: len(journeys(stack, "car-1")["trips"]) > len(before["trips"]) and settled(stack), 60,
             "the recomputed day")
    recomputed = journeys(stack, "car-1")
    distances = [float(t[2]) for t in recomputed["trips"]]
    assert distances == pytest.approx([6_000, 6_000, 1_950 + 4_500, 4_500, 4_050, 1_500], rel=0.01)
    done = rebuild(stack, "--marker", "car-1", "--from", DAY.date().isoformat(), "--to", DAY.date().isoformat())
    assert done.returncode == 0, done.stderr
    assert journeys(stack, "car-1") == recomputed
    done = rebuild(stack, "--marker", "car-1")
    assert done.returncode == 0, done.stderr
    assert journeys(stack, "car-1") == recomputed


def test_latest_has_the_odometer_and_whether_it_moves(stack, driven, worker):
    position = worker.get("/api/markers/car-0")[1]
    assert position["odometer"] == pytest.approx(6_000 + 3_000 + 3_000 + 1_950 + 4_050 + 1_500, rel=0.005)
    assert position["moving"] is True  # its newest fix moved


def test_trips_stops_and_summary_over_http(stack, driven, worker):
    frm, to = int((DAY - timedelta(days=1)).timestamp()), int((DAY + timedelta(days=2)).timestamp())
    status, body = worker.get(f"/api/markers/car-0/trips?from={frm}&to={to}")
    assert status == 200 and len(body["trips"]) == 5
    trip = body["trips"][0]
    assert trip["distance_m"] == pytest.approx(6_000, rel=0.01) and trip["gpx"].endswith(".gpx")
    assert trip["start_time"].endswith("Z") and trip["duration_s"] == pytest.approx(400, abs=1)

    status, gpx = worker.get(trip["gpx"])
    assert status == 200
    points = ElementTree.fromstring(gpx).findall(".//{http://www.topografix.com/GPX/1/1}trkpt")
    assert len(points) == 41  # from the departure to the arrival, 10 s apart

    status, body = worker.get(f"/api/markers/car-0/stops?from={frm}&to={to}")
    assert status == 200 and [round(s["duration_s"]) for s in body["stops"]] == [600, 900, 400, 1_800 + 300, 1_200]

    status, body = worker.get(f"/api/markers/car-0/summary?from={frm}&to={to}&by=day")
    assert status == 200 and len(body["periods"]) == 1
    day = body["periods"][0]
    assert day["period"] == DAY.date().isoformat() and day["trips"] == 5
    assert day["distance_m"] == pytest.approx(sum(t["distance_m"] for t in worker.get(
        f"/api/markers/car-0/trips?from={frm}&to={to}")[1]["trips"]))
    assert day["driving_s"] + day["stopped_s"] <= 24 * 3600
    assert day["average_speed"] == pytest.approx(15.0, rel=0.05)

    status, raw = worker.get(f"/api/markers/car-0/summary?from={frm}&to={to}&format=csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode() if isinstance(raw, bytes) else raw)))
    assert rows[0]["trips"] == "5"

    status, body = worker.get("/api/markers/car-0/summary?tz=Mars/Olympus")
    assert status == 400 and "time zone" in body["message"]


def test_a_viewer_sees_only_the_journeys_of_its_markers(stack, driven, worker):
    token = stack.user("journeys-viewer", grants=["car-1"])
    assert worker.get("/api/markers/car-1/trips", token=token)[0] == 200
    assert worker.get("/api/markers/car-0/trips", token=token)[0] == 404
    trip_id = worker.get("/api/markers/car-0/trips?from=2000-01-01")[1]["trips"][0]["id"]
    assert worker.get(f"/api/trips/{trip_id}.gpx", token=token)[0] == 404
    assert worker.get("/api/markers/car-0/trips", token=None)[0] == 401


def test_the_track_page_lists_the_days_trips_and_stops_and_zooms_to_one(stack, driven, worker, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    stack.sign_in(page, worker, f"/map/car-0?day={DAY.date().isoformat()}")
    page.locator("#journeys li.trip").first.wait_for()
    assert page.locator("#journeys li.trip").count() == 5
    assert page.locator("#journeys li.stop").count() == 5
    assert page.locator("#journeys input[type=date]").input_value() == DAY.date().isoformat()
    map_name = page.evaluate("() => Object.keys(window).find(k => k.startsWith('map_'))")
    whole = page.evaluate(f"() => {map_name}.getZoom()")
    page.locator("#journeys li.stop").nth(1).click()
    page.wait_for_function(f"() => {map_name}.getZoom() > {whole}")
    centre = page.evaluate(f"() => {map_name}.getCenter()")
    stop = worker.get(f"/api/markers/car-0/stops?from={int(DAY.timestamp())}")[1]["stops"][1]
    assert centre["lat"] == pytest.approx(stop["lat"], abs=0.003) and centre["lng"] == pytest.approx(stop["lon"], abs=0.003)
    page.screenshot(path=str(ARTIFACTS / "track-journeys.png"))
    page.goto(f"{worker.url}/map/car-0?day={(DAY - timedelta(days=1)).date().isoformat()}")
    assert page.locator("#journeys li.trip").count() == 0
    assert errors == []
    page.close()


def test_history_delete_removes_a_marker_everywhere_and_keeps_what_it_sends_after(stack, driven, worker):
    assert worker.get("/api/markers/car-2")[0] == 200
    done = subprocess.run([sys.executable, "-m", "tracker.cli", "history", "erase", "--marker", "car-2"],
                          env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "positions" in done.stdout
    for table in ("positions", "trips", "stops", "events", "journeys_dirty"):
        assert stack.query(f"SELECT count(*) FROM {table} WHERE marker_id = 'car-2'")[0][0] == 0, table
    wait_for(lambda: worker.get("/api/markers/car-2")[0] == 404, 30, "car-2 gone from latest")
    listed = worker.get("/api/markers")[1]
    assert "car-2" not in {p["marker_id"] for p in (listed["markers"] if isinstance(listed, dict) else listed)}
    assert "car-1" in {p["marker_id"] for p in (listed["markers"] if isinstance(listed, dict) else listed)}

    lat, lon = at(0.0)
    stack.send([(b"car-2", orjson.dumps({"marker_id": "car-2", "time": T0 + 86_400, "lat": lat, "lon": lon}))])
    wait_for(lambda: worker.get("/api/markers/car-2")[0] == 200, 30, "car-2 back with its new fix")
    assert worker.get("/api/markers/car-2")[1]["odometer"] == 0  # a fresh motion state
    wait_for(lambda: stack.query("SELECT count(*) FROM positions WHERE marker_id = 'car-2'")[0][0] == 1, 30,
             "only the new fix in history")

    bad = subprocess.run([sys.executable, "-m", "tracker.cli", "history", "erase", "--marker", "car/2"],
                         env=stack.env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
