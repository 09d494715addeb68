"""A marker never moves back through its changelog: a worker that wakes from a pause can
find a changelog send still queued in its producer, which the broker then appends after the
newer values the partitions' interim owner wrote. The ``latest`` changelog then ends with an
older fix for those markers. A worker recovering from it, from where it stopped or from the
start, keeps the newer fix, and its next write to the partition puts the newer fix at the
changelog's end again, the record compaction keeps."""
import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.test_standby import _last_values
from tracker.positions.intake import partition_of
from tracker.testing import run_sync, wait_for

T0 = int(time.time()) - 600
T0 -= T0 % 60
MARKERS = [f"paused-{i}" for i in range(16)]
OTHERS = [f"other-{i}" for i in range(64)]


def fixes(markers: list[str], second: int) -> list[tuple[bytes, bytes]]:
    return [(m.encode(), orjson.dumps({"marker_id": m, "lat": 45.0, "lon": 14.0 + i * 1e-3, "time": T0 + second}))
            for i, m in enumerate(markers)]


def every_answer(worker) -> dict[str, int] | None:
    """marker -> the second of the fix time served, once the worker answers for every marker."""
    found = answers(worker)
    return None if None in found.values() else found


def answers(worker) -> dict[str, int | None]:
    """marker -> the second of the fix time served (None: not 200)."""
    found = {}
    for marker_id in MARKERS:
        status, body = worker.get(f"/api/markers/{marker_id}", timeout=5)
        found[marker_id] = int(body["time"][17:19]) if status == 200 else None
    return found


async def _append(settings, topic: str, values: dict[str, list]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await asyncio.gather(*[
            await producer.send(topic, key=marker_id.encode(), value=orjson.dumps(value),
                                partition=partition_of(marker_id.encode(), settings.topic_partitions))
            for marker_id, value in values.items()])
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def worker(stack):
    return stack.worker().start()


def test_an_old_fix_appended_to_the_changelog_late_never_moves_a_marker_back(stack, worker, figures):
    worker.wait_ready()
    stack.send(fixes(MARKERS, 40))
    wait_for(lambda: set(answers(worker).values()) == {40}, 60, "the fixes at second 40 served")
    worker.stop()

    newest = _last_values_of(stack)
    old = {m: [*value[:1], (T0 + 10) * 1_000_000, 44.0, *value[3:]] for m, value in newest.items()}
    run_sync(_append(stack.settings, stack.changelog_topic, old))
    assert {value[1] for value in _last_values_of(stack).values()} == {(T0 + 10) * 1_000_000}

    worker.start().wait_ready()  # recovers from where it stopped: the old fixes come last
    served_again = wait_for(lambda: every_answer(worker), 60, "the restarted worker serving every marker")
    worker.stop()
    fresh = stack.worker().start()  # its own, empty store: recovers every partition from the start
    fresh.wait_ready()
    served_fresh = wait_for(lambda: every_answer(fresh), 60, "a new worker serving every marker")
    figures.append(("seconds of the fixes served after an old fix was appended to the changelog",
                    f"restarted {sorted(set(served_again.values()))}, new {sorted(set(served_fresh.values()))}"))
    assert set(served_again.values()) == {40} and set(served_fresh.values()) == {40}

    stack.send(fixes(OTHERS, 50))  # a write to every partition
    wait_for(lambda: {value[1] for value in _last_values_of(stack).values()} == {(T0 + 40) * 1_000_000}, 60,
             "the changelog's newest record of every marker its newest fix again")


def _last_values_of(stack) -> dict[str, list]:
    return {m: value for m, value in run_sync(_last_values(stack.settings, stack.changelog_topic)).items()
            if m in MARKERS}
