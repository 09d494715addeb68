"""A marker never moves back through its changelog: a worker that wakes from a pause can
find a changelog send still queued in its producer, which the broker then appends after the
newer values the partitions' interim owner wrote. The ``latest`` changelog then ends with an
older fix for those markers, a stage's state changelog with an older state. A worker
recovering from it, from where it stopped or from the start, keeps the newer value, and its
next write to the partition puts the newer value at the changelog's end again, the record
compaction keeps."""
import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tables import journeys_state
from tracker.positions.geo import distance_m
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
    return {m: value for m, value in stack.last_values(stack.changelog_topic).items() if m in MARKERS}


ZIGZAG = [f"zigzag-{i}" for i in range(8)]
#: second -> (lat, lon): there and back a little further, so the odometer after the third fix
#: tells whether the state after the second was kept (two legs) or an older one (one leg)
LEGS = {30: (45.0, 14.0), 40: (45.001, 14.001), 50: (45.0, 14.002)}


def zigzag(second: int) -> list[tuple[bytes, bytes]]:
    lat, lon = LEGS[second]
    return [(m.encode(), orjson.dumps({"marker_id": m, "lat": lat, "lon": lon + i, "time": T0 + second}))
            for i, m in enumerate(ZIGZAG)]


async def _resend(settings, topic: str, records) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, key=r.key, value=r.value, partition=r.partition)
                               for r in records])
    finally:
        await producer.stop()


def served(worker, second: int) -> bool:
    for marker_id in ZIGZAG:
        status, body = worker.get(f"/api/markers/{marker_id}", timeout=5)
        if status != 200 or int(body["time"][17:19]) != second:
            return False
    return True


def test_an_old_state_appended_to_the_changelog_late_never_takes_a_marker_back(stack, figures):
    worker = stack.worker().start()
    worker.wait_ready()
    topic = f"{stack.name}-journeys-state-changelog"
    stack.send(zigzag(30))
    wait_for(lambda: served(worker, 30), 60, "the first fixes served")
    stack.send(zigzag(40))
    wait_for(lambda: served(worker, 40), 60, "the second fixes served")
    states = wait_for(lambda: (found := [r for r in stack.records(topic)
                                         if r.key.decode() in ZIGZAG]) and len(found) >= 2 * len(ZIGZAG) and found,
                      30, "two states of every marker in the changelog")
    worker.stop()

    first = {}
    for record in states:
        first.setdefault(record.key, record)
    run_sync(_resend(stack.settings, topic, first.values()))  # each marker's first state, appended late

    worker.start().wait_ready()
    stack.send(zigzag(50))
    wait_for(lambda: served(worker, 50), 60, "the third fixes served")
    two_legs = distance_m(*LEGS[30], *LEGS[40]) + distance_m(*LEGS[40], *LEGS[50])
    odometers = {m: worker.get(f"/api/markers/{m}")[1]["odometer"] for m in ZIGZAG}
    figures.append(("odometer after an old state was appended to the changelog",
                    f"{sorted(set(odometers.values()))} m; two legs {two_legs:.1f} m"))
    assert all(abs(value - two_legs) < 1.0 for value in odometers.values()), odometers
    last = {r.key: journeys_state.decode(r.value) for r in stack.records(topic)
            if r.key.decode() in ZIGZAG}
    assert all(abs(state.odometer - two_legs) < 1.0 for state in last.values())
