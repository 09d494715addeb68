"""The events agent's batch step, with the table in memory and the broker captured: events
are acknowledged before the state is stored, a replay after a crash raises the same events,
and the offline check follows the clock it is given."""
import asyncio
from types import SimpleNamespace

import orjson
import pytest

import agents.events as events_agent
from agents.events import EventsStage
from tables.events_state import EventsStateWriter, decode, events_state
from tracker.stream import batches
from tracker.geofences.model import GeofenceIndex, parse_feature
from tracker.positions.model import read_fix
from tests.unit import tables

S = 1_000_000
NOW_US = 1_900_000_000 * S
DEPOT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [14.0, 45.0]},
         "properties": {"name": "depot", "radius": 200}}
INSIDE, OUTSIDE = 45.0, 46.0
EVENTS_TOPIC = events_agent.settings.events_topic
CHANGELOG = events_state.changelog_topic.get_topic_name()


class Broker:
    """Stands in for the producer: keeps what was sent per topic, and can fail a topic once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, bool]] = []  # topic, key, value, state stored already
        self.fail_topic: str | None = None

    async def send_many(self, topic, partition, records):
        if topic == self.fail_topic:
            self.fail_topic = None
            raise RuntimeError("the worker dies here")
        self.sent.extend((topic, key, value, key in tables.contents(events_state)) for key, value in records)
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=len(self.sent)))
        return [(future, len(records))]

    def events(self) -> list[dict]:
        return [orjson.loads(value) for topic, _, value, _ in self.sent if topic == EVENTS_TOPIC]


@pytest.fixture()
def broker(monkeypatch):
    tables.clear(events_state)
    monkeypatch.setattr(events_agent.geofences, "index", GeofenceIndex([parse_feature(DEPOT, 1)]))
    loaded = asyncio.Event()
    loaded.set()
    monkeypatch.setattr(events_agent.geofences, "loaded", loaded)
    return Broker()


def stage(broker) -> EventsStage:
    return EventsStage(EventsStateWriter(broker.send_many))


def fix(marker_id: str, seconds: int, lat: float, received_s: int = 0) -> list:
    raw = orjson.dumps({"marker_id": marker_id, "lat": lat, "lon": 14.0, "time": 1_800_000_000 + seconds})
    return read_fix(raw, NOW_US) + [NOW_US + received_s * S]


def slices(*fixes) -> dict[int, list[list]]:
    """The fixes of one batch record of partition 2, as the agent decodes them."""
    return {2: batches.decode(next(batches.encode(list(fixes))))}


async def test_events_are_acknowledged_before_the_state_is_stored(broker):
    raised = await stage(broker).apply(slices(fix("van", 0, OUTSIDE), fix("van", 10, INSIDE)))
    assert raised == 1
    kinds = [(topic, stored) for topic, _, _, stored in broker.sent]
    assert kinds == [(EVENTS_TOPIC, False), (CHANGELOG, False)]
    assert broker.events()[0]["type"] == "geofence_enter" and broker.events()[0]["time"].endswith("Z")
    assert decode(tables.contents(events_state)[b"van"]).inside == [1]


async def test_a_crash_before_the_state_is_stored_replays_the_same_events_and_no_more(broker):
    batch = slices(fix("van", 0, OUTSIDE), fix("van", 10, INSIDE), fix("van", 20, OUTSIDE))
    broker.fail_topic = CHANGELOG
    with pytest.raises(RuntimeError):
        await stage(broker).apply(batch)
    first = [e["id"] for e in broker.events()]
    assert len(first) == 2 and not tables.contents(events_state)  # sent, but no state stored
    await stage(broker).apply(batch)  # the restarted worker reads the batch again
    assert [e["id"] for e in broker.events()] == first * 2  # the same ids: the sinks keep one each
    await stage(broker).apply(batch)  # once stored, a replay raises nothing
    assert len(broker.events()) == 4


async def test_a_silent_marker_goes_offline_once_by_the_clock_and_back_online_with_its_next_fix(broker):
    current = stage(broker)
    await current.apply(slices(fix("van", 0, OUTSIDE, received_s=0), fix("car", 0, OUTSIDE, received_s=500)))
    after = events_agent.settings.offline_after
    assert await current.check_offline([2], now_us=NOW_US + int(after * S) - S) == 0
    assert await current.check_offline([2], now_us=NOW_US + int(after * S) + S) == 1  # the van, not the car
    assert await current.check_offline([2], now_us=NOW_US + int(after * S) + 2 * S) == 0  # once
    assert [e["type"] for e in broker.events()] == ["offline"] and broker.events()[0]["marker_id"] == "van"
    await current.apply(slices(fix("van", 900, OUTSIDE, received_s=int(after) + 5)))
    assert [e["type"] for e in broker.events()] == ["offline", "online"]


async def test_a_marker_first_heard_after_the_timer_looked_goes_offline_too(broker):
    current = stage(broker)
    after = int(events_agent.settings.offline_after * S)
    assert await current.check_offline([2], now_us=NOW_US) == 0  # nobody yet
    await current.apply(slices(fix("van", 0, OUTSIDE)))
    assert await current.check_offline([2], now_us=NOW_US + after + S) == 1
    assert [e["marker_id"] for e in broker.events()] == ["van"]
