"""The live feed's hub without a broker: ticks hold only what changed, a reconnecting client
gets what it missed (or a snapshot when that is gone), a viewer sees only what it may,
viewers who see the same markers share one encoding, and one that stops reading is dropped
at a bound (its queue and its connection's buffer) instead of growing memory."""
import asyncio
import zlib

import orjson
import pytest

from tracker.positions import live_hub
from tracker.positions.live_hub import GZIP_HEADER, LiveHub, Viewer
from tracker.settings import settings


class Record:
    def __init__(self, marker_id, fix):
        self.key = marker_id.encode()
        self.value = None if fix is None else orjson.dumps(fix)


def fix(marker_id, t_ms, lat=45.0, lon=14.0, attributes=None):
    return [marker_id, t_ms * 1000, lat, lon, 3.0, 90.0, None, None, 80.0, None, attributes, t_ms * 1000, 120.0, True]


def test_a_row_carries_the_devices_name_from_its_attributes():
    from tracker.positions.live_hub import row_of

    assert row_of(fix("a", 1, attributes={"device": "Pixel", "tid": "px"}))[9] == "Pixel"
    assert row_of(fix("a", 1, attributes={"name": "Van 3", "device": "Pixel"}))[9] == "Van 3"
    assert row_of(fix("a", 1, attributes={"name": 12}))[9] is None
    assert row_of(fix("a", 1))[9] is None


def everything(marker_id, lat, lon):
    return True


def data(message) -> dict:
    return orjson.loads(message.plain.split(b"data: ", 1)[1])


@pytest.fixture()
def hub():
    return LiveHub(settings, "changelog", 1.0)


def test_a_tick_holds_only_the_markers_that_changed(hub):
    viewer = Viewer(everything)
    hub._take([Record("a", fix("a", 1)), Record("b", fix("b", 1))])
    hub.tick()
    hub.subscribe(viewer)
    hub._take([Record("a", fix("a", 2, lat=46.0)), Record("a", fix("a", 1))])  # the older one is ignored
    hub.tick()
    message = viewer.queue.popleft()
    assert message.plain.startswith(b"id: 2\nevent: update\n")
    assert data(message) == {"m": [["a", 46.0, 14.0, 2, 3.0, 90.0, 80.0, True, None, None, 2]], "r": []}
    hub._take([Record("b", None)])
    hub.tick()
    assert data(viewer.queue.popleft()) == {"m": [], "r": ["b"]}


def test_a_client_that_reconnects_gets_what_it_missed_or_a_snapshot(hub, monkeypatch):
    for t in range(1, 4):
        hub._take([Record(f"m{t}", fix(f"m{t}", t))])
        hub.tick()
    assert sorted(hub.missed(1)) == ["m2", "m3"]
    assert hub.missed(3) == {}
    monkeypatch.setattr(live_hub, "KEPT_SECONDS", -1)
    hub._take([Record("m4", fix("m4", 4))])
    hub.tick()
    assert hub.missed(1) is None  # forgotten: the caller sends a snapshot
    assert sorted(r[0] for r in data(hub.snapshot(everything))["m"]) == ["m1", "m2", "m3", "m4"]


def test_a_viewer_sees_only_the_markers_it_may(hub):
    viewer = Viewer(lambda marker_id, lat, lon: marker_id.startswith("van"))
    hub.subscribe(viewer)
    hub._take([Record("van-1", fix("van-1", 1)), Record("car-1", fix("car-1", 1))])
    hub.tick()
    assert [r[0] for r in data(viewer.queue.popleft())["m"]] == ["van-1"]
    hub._take([Record("car-1", fix("car-1", 2))])
    hub.tick()
    assert not viewer.queue  # nothing for it: no message at all


def test_a_viewer_that_stops_reading_is_dropped_at_the_bound(hub, monkeypatch):
    monkeypatch.setattr(live_hub, "CLIENT_BUFFER_BYTES", 10_000)
    viewer = Viewer(everything)
    hub.subscribe(viewer)
    for t in range(1, 200):
        hub._take([Record(f"m{i}", fix(f"m{i}", t)) for i in range(5)])
        hub.tick()
        assert viewer.queued_bytes <= 10_000
    assert viewer.dropped and not viewer.queue


class Changelog:
    """The hub's consumer as ``caught_up`` asks it: the broker's end of each partition now."""

    def __init__(self, ends):
        self.ends = ends
        self.asked = 0

    async def end_offsets(self, partitions):
        self.asked += 1
        return {tp: self.ends.get(tp, 0) for tp in partitions}  # the others are empty


class Read:
    def __init__(self, offset):
        self.offset = offset


async def test_the_hub_answers_only_once_it_has_read_as_far_as_the_changelog_went_when_asked(hub):
    from aiokafka import TopicPartition

    p0, p1 = TopicPartition("changelog", 0), TopicPartition("changelog", 1)
    hub._consumer = changelog = Changelog({p0: 10, p1: 4})
    hub._read_to = {p0: 0, p1: 0}
    assert not await hub.caught_up([0]), "nothing read at all yet"
    hub.loaded.set()
    hub._take([Record("a", fix("a", 1))])
    hub._note_progress({p0: [Read(9)]})
    assert await hub.caught_up([0]) and not await hub.caught_up([1], timeout=0.05)
    assert not await hub.caught_up(timeout=0.05), "a list needs every partition"
    changelog.ends[p0] = 12  # a worker wrote more since: the hub must read it before answering
    waiting = asyncio.ensure_future(hub.caught_up([0], timeout=2.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    hub._note_progress({p0: [Read(11)]})
    assert await waiting and hub.values["a"] == orjson.dumps(fix("a", 1))
    asked = changelog.asked
    hub._note_progress({p1: [Read(3)]})
    assert await hub.caught_up() and changelog.asked == asked + 1, "the broker is asked at every request"


def test_a_tombstone_removes_the_markers_value(hub):
    hub._take([Record("a", fix("a", 1))])
    hub._take([Record("a", None)])
    assert "a" not in hub.values


def test_viewers_who_see_the_same_markers_share_one_encoding(hub, monkeypatch):
    calls = []
    encode = live_hub.encode_update
    monkeypatch.setattr(live_hub, "encode_update", lambda *args, **kwargs: calls.append(1) or encode(*args, **kwargs))
    vans = lambda marker_id, lat, lon: marker_id.startswith("van")  # noqa: E731
    same = [Viewer(vans, scope_key="vans", account=n) for n in range(500)]
    other = Viewer(everything, scope_key="all", account="admin")
    for viewer in (*same, other):
        hub.subscribe(viewer)
    hub._take([Record("van-1", fix("van-1", 1)), Record("car-1", fix("car-1", 1))])
    hub.tick()
    assert len(calls) == 2  # once per scope, not once per viewer
    assert all(viewer.queue[0] is same[0].queue[0] for viewer in same)
    assert sorted(r[0] for r in data(other.queue[0])["m"]) == ["car-1", "van-1"]
    assert same[0].queue[0].gzipped() is same[1].queue[0].gzipped()  # gzipped once too
    for viewer in same:
        hub.unsubscribe(viewer)
    assert set(hub.scopes) == {"all"} and hub.viewers_of(3) == 0 and hub.viewers_of("admin") == 1


def test_a_snapshot_is_shared_by_the_viewers_of_a_scope_until_the_next_tick(hub):
    hub._loading = {}  # every partition read
    hub._take([Record("a", fix("a", 1))])
    hub.tick()
    hub.subscribe(Viewer(everything, scope_key="all"))
    first = hub.snapshot(everything, "all")
    assert hub.snapshot(everything, "all") is first
    hub._take([Record("b", fix("b", 1))])
    hub.tick()
    assert sorted(r[0] for r in data(hub.snapshot(everything, "all"))["m"]) == ["a", "b"]


def test_the_bound_counts_what_the_connection_has_not_sent_and_a_dropped_viewer_is_closed(hub, monkeypatch):
    monkeypatch.setattr(live_hub, "CLIENT_BUFFER_BYTES", 10_000)
    closed = []
    viewer = Viewer(everything, buffered=lambda: 9_990, on_drop=lambda: closed.append(True))
    hub.subscribe(viewer)
    hub._take([Record("a", fix("a", 1))])
    hub.tick()
    assert viewer.dropped and not viewer.queue and closed == [True]


def test_gzipped_messages_follow_one_header_in_any_order():
    hub = LiveHub(settings, "changelog", 1.0)
    viewer = Viewer(everything)
    hub.subscribe(viewer)
    for t in range(1, 4):
        hub._take([Record(f"m{t}", fix(f"m{t}", t))])
        hub.tick()
    messages = list(viewer.queue)
    for order in (messages, messages[1:]):  # a viewer that joined later starts anywhere
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        stream = inflate.decompress(GZIP_HEADER) + b"".join(inflate.decompress(m.gzipped()) for m in order)
        assert stream == b"".join(m.plain for m in order)


def test_the_columns_layout_holds_the_rows_values_field_by_field_and_gzips_smaller(hub, monkeypatch):
    monkeypatch.setattr(live_hub.time, "time", lambda: 1_800_000_000.5)
    fixes = [fix(f"m{i:05d}", 1_800_000_000_000 - i, lat=45 + i * 1e-4, attributes={"name": "Bus"} if i == 3 else None)
             for i in range(2_000)]
    hub._take([Record(f[0], f) for f in fixes])
    hub.tick()
    rows, columns = (hub.snapshot(everything, ("all", layout), columns=layout) for layout in (False, True))
    body = data(columns)
    assert body["t"] == 1_800_000_000_500 and body["r"] == []
    c = body["c"]
    assert sorted(c) == ["age", "battery", "heading", "heard", "id", "lat", "lon", "moving", "name", "speed"]  # no source
    assert c["id"][:2] == ["m00000", "m00001"] and c["age"][:2] == [500, 501] and c["heard"][:2] == [0, 0]
    assert c["speed"][0] == 3 and c["heading"][0] == 90 and c["moving"][0] is True and c["name"][3] == "Bus"
    rebuilt = [[c["id"][i], c["lat"][i], c["lon"][i], body["t"] - c["age"][i], c["speed"][i], c["heading"][i],
                c["battery"][i], c["moving"][i], None, c["name"][i], body["t"] - c["age"][i] + c["heard"][i]]
               for i in range(len(c["id"]))]
    assert rebuilt == data(rows)["m"]
    assert len(columns.gzipped()) < 0.8 * len(rows.gzipped())


def test_a_columns_update_without_rows_still_has_its_columns(hub):
    viewer = Viewer(everything, "columns", columns=True)
    hub.subscribe(viewer)
    hub._take([Record("a", fix("a", 1))])
    hub.tick()
    hub._take([Record("a", None)])
    hub.tick()
    viewer.queue.popleft()
    assert data(viewer.queue.popleft())["c"] == {"id": [], "lat": [], "lon": [], "age": [], "heard": []}
