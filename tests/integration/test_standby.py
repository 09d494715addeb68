"""Standby replicas that are right: with ``TRACKER_STANDBY_REPLICAS=1``, a worker that takes
over killed workers' partitions from its standby copies serves, for every marker, the value
the changelog holds last. faust-streaming used to drop the standby records queued when its
recovery resumed the flow at its end: a worker that joins reads its standby partitions
from the start, and then silently lacked those keys."""
import time

import orjson
import pytest

from tests.integration.test_crash import send_steadily
from tracker.testing import wait_for

MARKERS = 400
ROUNDS = 60


def records() -> list[tuple[bytes, bytes]]:
    start = int(time.time()) - 3600
    return [(f"sb-{m:03d}".encode(), orjson.dumps({"marker_id": f"sb-{m:03d}", "lat": 45.0 + r * 1e-4,
                                                     "lon": 14.0 + m * 1e-3, "time": start + r}))
            for r in range(ROUNDS) for m in range(MARKERS)]


@pytest.fixture(scope="module")
def workers(stack):
    started = [stack.worker(TRACKER_STANDBY_REPLICAS="1").start() for _ in range(2)]
    for worker in started:
        worker.wait_ready()
    return started


def test_a_promoted_standby_serves_what_the_changelog_holds_for_every_marker(stack, workers, figures):
    first, second = workers
    producer = send_steadily(stack, records(), per_second=4_000)
    producer.join(180)
    stack.wait_pipeline_committed(180)
    third = stack.worker(TRACKER_STANDBY_REPLICAS="1").start()  # its standbys start from nothing
    third.wait_ready()
    time.sleep(5)  # its standby copies catch up with the changelogs

    first.kill()
    second.kill()
    killed = time.monotonic()

    def all_served():
        status, headers, body = third.request("GET", "/api/markers", timeout=10)
        return status == 200 and headers.get("X-Tracker-Partial") is None and len(body) == MARKERS and body

    served = wait_for(all_served, 180, "every marker served by the remaining worker")
    figures.append(("standby: every marker served again after two kill -9", f"{time.monotonic() - killed:.1f} s"))
    changelog = stack.last_values(stack.changelog_topic)
    wrong = [row["marker_id"] for row in served
             if changelog[row["marker_id"]][1] != _micros(row["time"])]
    assert wrong == [], f"{len(wrong)} markers differ from the changelog: {wrong[:5]}"


def _micros(iso: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(iso).timestamp() * 1_000_000)
