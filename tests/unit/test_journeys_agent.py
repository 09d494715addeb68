"""The journeys stage's batch step, with the table in memory and the broker captured: finished
trips and stops are acknowledged before the state is stored, ``latest`` gets the odometer,
a batch cut anywhere gives the same records as one batch, and late fixes ask for a recompute."""
import asyncio
import math
from types import SimpleNamespace

import orjson
import pytest

import agents.journeys as journeys_agent
from agents.journeys import JourneysStage
from tables.journeys_state import JourneysStateWriter, decode, journeys_state
from tracker.journeys import motion, records
from tracker.journeys.records import RULES
from tests.unit import tables

S = 1_000_000
T0 = 1_800_000_000 * S
TOPIC = journeys_agent.settings.journeys_topic
CHANGELOG = journeys_state.changelog_topic.get_topic_name()


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, bool]] = []  # topic, key, value, state stored already

    async def send_many(self, topic, partition, records):
        self.sent.extend((topic, key, value, key in tables.contents(journeys_state)) for key, value in records)
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(self.sent)))
        return [(future, len(records))]

    def records(self) -> list[dict]:
        return [orjson.loads(value) for topic, _, value, _ in self.sent if topic == TOPIC]


@pytest.fixture()
def broker():
    tables.clear(journeys_state)
    return Broker()


def stage(broker) -> JourneysStage:
    return JourneysStage(JourneysStateWriter(broker.send_many))


def fix(marker_id: str, seconds: float, x_m: float, speed=None) -> list:
    lon = 14.0 + x_m / (111_195.0 * math.cos(math.radians(45.0)))
    return [marker_id, T0 + round(seconds * S), 45.0, lon, speed, None, None, None, None, None, None, T0]


def day_trip(marker_id: str) -> list[list]:
    """Still 400 s, drive 4 km in 200 s, still 400 s, drive 2 km."""
    fixes, t, x = [], 0, 0.0
    for _ in range(40):
        fixes.append(fix(marker_id, t, x, 0.0)); t += 10
    for _ in range(20):
        x += 200; fixes.append(fix(marker_id, t, x)); t += 10
    for _ in range(40):
        fixes.append(fix(marker_id, t, x, 0.0)); t += 10
    for _ in range(10):
        x += 200; fixes.append(fix(marker_id, t, x)); t += 10
    return fixes


async def run(stage_, fixes, partition=3):
    annotations, finished = stage_.compute({partition: fixes})
    await stage_.publish(finished)
    return annotations


async def test_records_are_acknowledged_before_the_state_and_latest_gets_the_odometer(broker):
    annotations = await run(stage(broker), day_trip("van"))
    kinds = [r["kind"] for r in broker.records()]
    assert kinds == ["stop", "trip", "stop"]
    assert [(topic, stored) for topic, _, _, stored in broker.sent] == [(TOPIC, False)] * 3 + [(CHANGELOG, False)]
    trip = broker.records()[1]
    assert trip["distance_m"] == pytest.approx(4_000, rel=1e-3) and trip["marker_id"] == "van"
    odometer, moving = annotations[3]["van"]
    assert odometer == pytest.approx(6_000, rel=1e-3) and moving is True
    assert decode(tables.contents(journeys_state)[b"van"]).odometer == odometer


async def test_a_stream_cut_into_batches_gives_what_one_model_run_gives(broker):
    fixes = day_trip("van") + day_trip("bus")
    fixes.sort(key=lambda f: f[1])
    current = stage(broker)
    for start in range(0, len(fixes), 7):
        await run(current, fixes[start:start + 7])
    expected = []
    for marker_id in ("van", "bus"):
        _, out = motion.run([(f[1], f[2], f[3], f[4]) for f in fixes if f[0] == marker_id], RULES)
        expected += [(marker_id, item.start_us) for item in out]
    assert sorted((r["marker_id"], r["start_us"]) for r in broker.records()) == sorted(expected)


async def test_a_replayed_batch_sends_the_same_records_again_and_nothing_new(broker):
    fixes = day_trip("van")
    first = stage(broker)
    await run(first, fixes)
    sent = broker.records()
    broker.sent.clear()
    await run(stage(broker), fixes)  # a new worker: the state is read back from the store
    assert [r for r in broker.records() if r["kind"] != "dirty"] == []
    assert {r["kind"] for r in broker.records()} <= {"dirty"}
    assert sent


async def test_a_fix_older_than_the_open_trip_marks_its_day_and_one_inside_waits_for_the_end(broker):
    current = stage(broker)
    fixes = day_trip("van")
    await run(current, fixes)
    broker.sent.clear()
    await run(current, [fix("van", 5, 0.0, 0.0)])  # long before the open trip
    assert [(r["kind"], r["wait_for_us"]) for r in broker.records()] == [("dirty", T0 + 5 * S)]
    broker.sent.clear()
    last = fixes[-1][1]
    await run(current, [fix("van", (last - T0) / S - 5, 5_900)])  # inside the open trip
    assert broker.records() == []
    t = (last - T0) / S
    for i in range(1, 40):  # it stops: the trip ends, and its day is marked
        await run(current, [fix("van", t + 10 * i, 6_000, 0.0)])
    kinds = [r["kind"] for r in broker.records()]
    assert kinds == ["trip", "dirty"]
    assert broker.records()[1]["day"] == "2027-01-15"


async def test_a_silent_marker_has_its_trip_ended_by_the_timer(broker):
    current = stage(broker)
    fixes = day_trip("van")
    heard = fixes[-1][1] + 3_600 * S  # sent an hour late (a device that was offline, an import)
    for f in fixes:
        f[11] = heard
    await run(current, fixes)
    broker.sent.clear()
    grace = round(journeys_agent.IDLE_GRACE_SECONDS * S)
    assert current.end_idle_trips([3], heard + grace - S) == {}  # the sending may not be over
    await current.publish(current.end_idle_trips([3], heard + grace + S))
    trips = [r for r in broker.records() if r["kind"] == "trip"]
    assert len(trips) == 1 and trips[0]["distance_m"] == pytest.approx(2_000, rel=1e-3)
    assert trips[0]["end_us"] == fixes[-1][1]
    assert decode(tables.contents(journeys_state)[b"van"]).trip_open is False
    assert current.end_idle_trips([3], heard + 10_000 * S) == {}  # once


async def test_a_late_fix_inside_a_trip_the_timer_ends_marks_its_day_after_the_newest_fix(broker):
    current = stage(broker)
    fixes = day_trip("van")
    for f in fixes:
        f[11] = fixes[-1][1]
    await run(current, fixes)
    late = fix("van", (fixes[-1][1] - T0) / S - 5, 5_900)
    late[11] = fixes[-1][1]
    await run(current, [late])
    broker.sent.clear()
    await current.publish(current.end_idle_trips([3], fixes[-1][1] + round((RULES.gap_seconds + 1) * S)))
    dirty = [r for r in broker.records() if r["kind"] == "dirty"]
    assert [r["wait_for_us"] for r in dirty] == [fixes[-1][1]]  # a fix history holds, not the clock


async def test_a_fix_older_than_a_new_markers_first_trip_waits_for_that_trip_to_end(broker):
    """A phone's queued fixes arriving out of order at its start: nothing finished can be
    stale, so the first trip is recomputed once, when it ends, from the late fix on."""
    current = stage(broker)
    fixes = [fix("van", 10 * i, 200.0 * i) for i in range(1, 21)]
    for f in fixes:
        f[11] = fixes[-1][1]
    await run(current, fixes)
    late = fix("van", 5, 100.0)
    late[11] = fixes[-1][1]
    await run(current, [late])
    assert [r for r in broker.records() if r["kind"] == "dirty"] == []
    broker.sent.clear()
    await current.publish(current.end_idle_trips([3], fixes[-1][1] + round((RULES.gap_seconds + 1) * S)))
    dirty = [r for r in broker.records() if r["kind"] == "dirty"]
    assert [(r["day"], r["wait_for_us"]) for r in dirty] == [(records.day_of(late[1]).isoformat(), fixes[-1][1])]


async def test_a_live_marker_keeps_its_trip_open_until_the_gap_has_passed(broker):
    current = stage(broker)
    fixes = day_trip("van")
    for f in fixes:
        f[11] = f[1]  # heard as it happened
    await run(current, fixes)
    last = fixes[-1][1]
    assert current.end_idle_trips([3], last + round((RULES.gap_seconds - 1) * S)) == {}
    assert current.end_idle_trips([3], last + round((RULES.gap_seconds + 1) * S)) != {}


async def test_a_trip_opened_after_the_timer_first_looked_is_ended_too(broker):
    current = stage(broker)
    fixes = day_trip("van")
    for f in fixes:
        f[11] = f[1]
    assert current.end_idle_trips([3], fixes[0][1]) == {}  # the timer looked before the van drove
    await run(current, fixes)
    broker.sent.clear()
    await current.publish(current.end_idle_trips([3], fixes[-1][1] + round((RULES.gap_seconds + 1) * S)))
    assert [r["kind"] for r in broker.records()] == ["trip"]
    await run(current, [fix("van", (fixes[-1][1] - T0) / S + 2_000, 6_000, 0.0)])  # back, still
    assert current.end_idle_trips([3], fixes[-1][1] + 10_000 * S) == {}  # no trip open any more
