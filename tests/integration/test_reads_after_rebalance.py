"""Reads never go back: a worker that was stopped past its session timeout, and so lost its
partitions, answers for them either with the newest fix or 503 ``not_ready`` (with
Retry-After) once it runs again, never with the fix it held before; a list it answers
while it cannot speak for some partitions says which (``X-Tracker-Partial``)."""
import os
import signal
import time

import orjson
import pytest

from tracker.positions.intake import partition_of
from tracker.testing import wait_for

MARKERS = [f"van-{i}" for i in range(24)]
T0 = int(time.time()) - 600


def fixes(t: int) -> list[tuple[bytes, bytes]]:
    return [(m.encode(), orjson.dumps({"marker_id": m, "lat": 45.0, "lon": 14.0 + i * 1e-3, "time": t}))
            for i, m in enumerate(MARKERS)]


def seconds(worker, marker_id: str) -> tuple[int, int | None]:
    """(status, the second of the fix time served); status 0 when no answer came in time (a
    request forwarded to the stopped worker waits for it)."""
    try:
        status, body = worker.get(f"/api/markers/{marker_id}", timeout=3)
    except OSError:
        return 0, None
    if status != 200:
        return status, None
    return 200, int(body["time"][17:19])  # the second of the fix time: T0 + 0 or T0 + 30


@pytest.fixture(scope="module")
def workers(stack):
    first, second = stack.worker().start(), stack.worker().start()
    for worker in (first, second):
        worker.wait_ready()
    yield first, second
    for worker in (first, second):
        if worker.proc and worker.proc.poll() is None:
            os.kill(worker.proc.pid, signal.SIGCONT)


def test_a_worker_stopped_past_its_session_timeout_never_serves_what_it_held_before(stack, workers, figures):
    first, second = workers
    stack.send(fixes(T0 - T0 % 60))  # second 0
    wait_for(lambda: all(seconds(second, m) == (200, 0) for m in MARKERS), 60, "the first fixes on both workers")
    status, body = first.get("/health")
    mine = set(body["partitions"])
    theirs = [m for m in MARKERS if partition_of(m.encode(), stack.settings.topic_partitions) in mine]
    assert theirs, "the first worker owns none of the markers' partitions"

    os.kill(first.proc.pid, signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        # past the session timeout the group gives the stopped worker's partitions to the other
        stack.send(fixes(T0 - T0 % 60 + 30))  # second 30
        wait_for(lambda: all(seconds(second, m) == (200, 30) for m in MARKERS), 90,
                 "the newer fixes served by the worker that took the partitions over")
        time.sleep(max(0.0, 12 - (time.monotonic() - stopped)))
    finally:
        os.kill(first.proc.pid, signal.SIGCONT)

    answers = {"newest": 0, "not_ready": 0, "stale": 0}
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        for marker_id in theirs:
            status, second_of_fix = seconds(first, marker_id)
            if status in (0, 503):
                answers["not_ready"] += 1
            elif second_of_fix == 30:
                answers["newest"] += 1
            else:
                answers["stale"] += 1
    figures.append(("reads after SIGSTOP past the session timeout", f"{answers}"))
    assert answers["stale"] == 0, answers
    wait_for(lambda: all(seconds(first, m) == (200, 30) for m in MARKERS), 60, "every marker current on the first worker")


def test_a_list_missing_partitions_says_which(stack, workers):
    first, second = workers
    second.kill()
    deadline = time.monotonic() + 30
    partial_seen = False
    while time.monotonic() < deadline:
        status, headers, body = first.request("GET", "/api/markers", timeout=5)
        if status != 200:
            continue
        listed = {row["marker_id"] for row in body}
        if headers.get("X-Tracker-Partial") == "true":
            partial_seen = True
            missing = {int(p) for p in headers["X-Tracker-Missing-Partitions"].split(",")}
            assert all(partition_of(m.encode(), stack.settings.topic_partitions) in missing
                       for m in set(MARKERS) - listed)
        else:
            assert listed >= set(MARKERS), "a shorter list that says it is complete"
            if partial_seen:
                break
        time.sleep(0.2)
