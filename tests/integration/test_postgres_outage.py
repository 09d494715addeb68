"""Postgres stopped: the live path goes on (``latest``, the DLQ, the map), history waits in
Kafka, and once Postgres is back every position is written exactly once."""
import subprocess
import time

from tests.integration import dataset
from tracker.testing import ROOT, wait_for

SERVICES = str(ROOT / "scripts" / "services")
BEFORE = dataset.build(markers=50, in_order=10, duplicates=0, late=0, malformed=0, extra_duplicates=0,
                       seed=31, prefix="pg-")
DURING = dataset.build(markers=50, in_order=20, duplicates=2, late=2, malformed=5, extra_duplicates=0,
                       seed=32, prefix="pg-")


def test_latest_keeps_moving_while_postgres_is_stopped(stack, figures):
    worker = stack.worker().start()
    worker.wait_ready()
    stack.send(BEFORE.records)
    wait_for(lambda: stack.history_count() >= len(BEFORE.expected_rows), 60, "the first positions in Postgres")
    newcomer = stack.user("newcomer", "admin")
    assert worker.get("/api/markers")[0] == 200  # the admin's token is known from before the outage

    subprocess.run([SERVICES, "stop-postgres"], check=True, capture_output=True)
    try:
        sent_at = time.monotonic()
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
    finally:
        subprocess.run([SERVICES, "start-postgres"], check=True, capture_output=True)
    restarted = time.monotonic()

    expected = BEFORE.expected_rows | DURING.expected_rows
    wait_for(lambda: stack.history_count() >= len(expected), 60, "history to catch up")
    figures.append(("postgres down: history caught up after restart", f"{time.monotonic() - restarted:.1f} s"))
    time.sleep(1.0)  # a surplus row, if any, would arrive now
    rows = stack.query("SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions")
    assert len(rows) == len(set(rows)), "duplicate rows in the history"
    assert set(rows) == expected
