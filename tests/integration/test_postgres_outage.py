"""Postgres stopped: the live path goes on (``latest``, the DLQ, the map, a phone that
reported before), history waits in Kafka, and once Postgres is back every position is
written exactly once."""
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from tests.integration import dataset
from tracker.accounts.devices import Registry
from tracker.testing import ROOT, run_sync, wait_for

SERVICES = str(ROOT / "scripts" / "services")
PHONE = "outage-phone"
#: How long the phone goes on reporting once Postgres is stopped.
PHONE_OUTAGE_SECONDS = 30.0
BEFORE = dataset.build(markers=50, in_order=10, duplicates=0, late=0, malformed=0, extra_duplicates=0,
                       seed=31, prefix="pg-")
DURING = dataset.build(markers=50, in_order=20, duplicates=2, late=2, malformed=5, extra_duplicates=0,
                       seed=32, prefix="pg-")


class Phone:
    """A Traccar Client with its device secret; remembers the fix time of every report the
    worker acknowledged with 200."""

    def __init__(self, worker, secret: str) -> None:
        self.worker = worker
        self.secret = secret
        self.stored: set[tuple[str, int]] = set()
        self.refused: list[tuple[int, object]] = []

    def report(self) -> int:
        millis = int(time.time() * 1000)
        status, _, body = self.worker.request(
            "GET", f"/ingest/osmand/{self.secret}?id={PHONE}&lat=45.5&lon=14.5&timestamp={millis}", token=None)
        if status == 200:
            self.stored.add((PHONE, millis))
        else:
            self.refused.append((status, body))
        return status

    def report_until(self, deadline: float) -> int:
        """Report every half second until ``deadline`` (monotonic); the number of reports."""
        reports = 0
        while time.monotonic() < deadline:
            self.report()
            reports += 1
            time.sleep(0.5)
        return reports


def register(stack, device_id: str) -> str:
    async def add() -> str:
        registry = await Registry.connect(stack.settings.database_url)
        try:
            return await registry.add(device_id, device_id)
        finally:
            await registry.close()

    return run_sync(add())


def test_latest_keeps_moving_while_postgres_is_stopped(stack, figures):
    worker = stack.worker().start()
    worker.wait_ready()
    phone = Phone(worker, register(stack, PHONE))
    stack.send(BEFORE.records)
    wait_for(lambda: stack.history_count() >= len(BEFORE.expected_rows), 60, "the first positions in Postgres")
    newcomer = stack.user("newcomer", "admin")
    stranger = register(stack, "never-reported")
    assert worker.get("/api/markers")[0] == 200  # the admin's token is known from before the outage
    assert phone.report() == 200  # and the phone's secret

    subprocess.run([SERVICES, "stop-postgres"], check=True, capture_output=True)
    reporting = ThreadPoolExecutor(1)
    try:
        sent_at = time.monotonic()
        phone_reports = reporting.submit(phone.report_until, sent_at + PHONE_OUTAGE_SECONDS)
        stack.send(DURING.records)

        def latest_is_current():
            for marker_id in DURING.marker_ids:
                status, body = worker.get(f"/api/markers/{marker_id}")
                if status != 200 or body["lat"] != DURING.expected_latest[marker_id]["lat"]:
                    return False
            return True

        wait_for(latest_is_current, 30, "latest to show the positions sent while Postgres is down")
        figures.append(("postgres down: latest current after", f"{time.monotonic() - sent_at:.1f} s"))
        letters = stack.read_topic(stack.settings.dlq_topic, expect=len(DURING.malformed))
        assert len({(l["source"]["partition"], l["source"]["offset"]) for l in letters}) == len(DURING.malformed)
        status, health = worker.get("/health")
        assert status == 200 and health["checks"]["postgres"] is False, health
        assert health["state"].startswith("degraded")
        status, body = worker.get(f"/api/markers/{DURING.marker_ids[0]}/history")
        assert status == 503 and body["error"] == "history_unavailable"
        status, body = worker.get("/api/markers", token=newcomer)  # never seen: cannot be checked now
        assert status == 503 and body["error"] == "accounts_unavailable"
        status, _, body = worker.request("GET", f"/ingest/osmand/{stranger}?id=never-reported&lat=1&lon=2",
                                         token=None)
        assert status == 503 and body["error"] == "registry_unavailable"  # a secret never seen
        reports = phone_reports.result(timeout=PHONE_OUTAGE_SECONDS + 30)
        assert phone.refused == [] and reports >= 20, (reports, phone.refused[:3])
        figures.append(("postgres down: phone reports answered 200", f"{reports} in {PHONE_OUTAGE_SECONDS:.0f} s"))
    finally:
        reporting.shutdown(wait=True)
        subprocess.run([SERVICES, "start-postgres"], check=True, capture_output=True)
    restarted = time.monotonic()

    expected = BEFORE.expected_rows | DURING.expected_rows | phone.stored
    wait_for(lambda: stack.history_count() >= len(expected), 60, "history to catch up")
    figures.append(("postgres down: history caught up after restart", f"{time.monotonic() - restarted:.1f} s"))
    time.sleep(1.0)  # a surplus row, if any, would arrive now
    rows = stack.query("SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions")
    assert len(rows) == len(set(rows)), "duplicate rows in the history"
    assert set(rows) == expected
