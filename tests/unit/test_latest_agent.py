"""The ``latest`` agent only moves a marker forward in fix time (run with agent.test_context())."""
import orjson
import pytest

from agents.latest import track_latest
from tracker.intake import partition_of
from tables.latest import latest
from tracker.app import app


@pytest.fixture()
def memory_app():
    app.finalize()
    app.flow_control.resume()
    latest.data.clear()
    return app


def fix(time: str, lat: float = 45.0, marker_id: str = "m1") -> bytes:
    return orjson.dumps({"marker_id": marker_id, "lat": lat, "lon": 14.0, "time": time})


async def test_newer_fix_replaces_older(memory_app):
    async with track_latest.test_context() as agent:
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:00Z", lat=1))
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=2))
    assert latest[b"m1"]["lat"] == 2


async def test_late_fix_never_moves_marker_back(memory_app):
    async with track_latest.test_context() as agent:
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=2))
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:00Z", lat=1))
    assert latest[b"m1"]["lat"] == 2
    assert latest[b"m1"]["time"] == "2026-01-01T10:00:05Z"


async def test_duplicate_fix_time_keeps_the_first(memory_app):
    async with track_latest.test_context() as agent:
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=2))
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=3))
    assert latest[b"m1"]["lat"] == 2


async def test_time_zones_compare_as_instants(memory_app):
    async with track_latest.test_context() as agent:
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=2))
        # 11:00:01+01:00 is 10:00:01Z: earlier, although it sorts later as text.
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T11:00:01+01:00", lat=3))
    assert latest[b"m1"]["lat"] == 2


async def test_markers_are_independent(memory_app):
    async with track_latest.test_context() as agent:
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=2))
        await agent.put(key=b"m2", partition=partition_of(b"m2"), value=fix("2026-01-01T09:00:00Z", lat=7, marker_id="m2"))
    assert latest[b"m1"]["lat"] == 2
    assert latest[b"m2"]["lat"] == 7


async def test_invalid_and_misrouted_records_leave_the_table_alone(memory_app):
    async with track_latest.test_context() as agent:
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:05Z", lat=2))
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=b"{broken")
        await agent.put(key=b"m1", partition=partition_of(b"m1"), value=fix("2026-01-01T10:00:09Z", lat=95))
        # Keyed by another marker: it sits in the wrong partition and is re-sent by validate.
        await agent.put(key=b"m2", partition=partition_of(b"m2"), value=fix("2026-01-01T10:00:09Z", lat=3))
        # The right key in another partition than Kafka's partitioner picks: also re-sent.
        await agent.put(key=b"m1", partition=partition_of(b"m1") + 1, value=fix("2026-01-01T10:00:09Z", lat=4))
    assert latest[b"m1"]["lat"] == 2
    assert b"m2" not in latest
