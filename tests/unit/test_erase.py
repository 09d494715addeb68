"""Erase records of the batches topic (``tracker history erase``): applied in their place in
the stream, they remove a marker from ``latest`` and, for its whole history, its motion
state, tombstones first on the changelogs; fixes after them are kept."""
from types import SimpleNamespace

import pytest

from agents.latest import steps
from tables import erase as tables_erase
from tables.journeys_state import JourneysStateWriter, journeys_state
from tables.changelog import Sent
from tables.latest import LatestWriter, latest
from tests.unit.test_latest import Changelog, fix
from tracker.stream import batches
from tests.unit import tables


@pytest.fixture(autouse=True)
def empty_tables():
    tables.clear(latest)
    tables.clear(journeys_state)


def records(*values: bytes, partition: int = 3):
    return [SimpleNamespace(message=SimpleNamespace(partition=partition, offset=i, value=value))
            for i, value in enumerate(values)]


async def test_an_erase_record_cuts_the_batch_where_it_stands():
    before = next(batches.encode([fix("anna", 100), fix("bob", 100)]))
    after = next(batches.encode([fix("anna", 200)]))
    found = steps({3: [before, batches.encode_erase("anna", None, None), after]})
    assert [(sorted(f), sorted(g)) for f, g, _ in found] == [([3], [3]), ([3], [])]
    assert [x[0] for x in found[0][0][3]] == ["anna", "bob"] and found[0][1][3][0]["marker_id"] == "anna"
    assert [x[0] for x in found[1][0][3]] == ["anna"]


async def test_the_whole_history_removes_latest_and_the_state_changelog_first():
    changelog = Changelog()
    writer = LatestWriter(changelog.send_many)
    items = writer.changes(3, [fix("anna", 100), fix("bob", 100)])
    writer.commit(3, items, Sent(0, 0))
    states = JourneysStateWriter(changelog.send_many)
    states.commit(3, [(b"anna", b"[1]")], Sent(0, 0))
    cache = {"anna": object()}
    removed = await tables_erase.erase({3: [{"marker_id": "anna", "from_us": None, "to_us": None}]}, writer,
                                         [(states, cache)])
    assert removed == 2
    assert b"anna" not in tables.contents(latest) and b"bob" in tables.contents(latest)
    assert b"anna" not in tables.contents(journeys_state) and cache == {}
    tombstones = [(key, value) for _, key, value in changelog.sent[-2:]]
    assert tombstones == [(b"anna", None), (b"anna", None)]


async def test_a_range_removes_latest_only_when_its_fix_is_in_it_and_keeps_the_state():
    changelog = Changelog()
    writer = LatestWriter(changelog.send_many)
    writer.commit(3, writer.changes(3, [fix("anna", 1_000), fix("bob", 5_000)]), Sent(0, 1))
    states = JourneysStateWriter(changelog.send_many)
    states.commit(3, [(b"anna", b"[1]")], Sent(0, 0))
    ranged = [{"marker_id": m, "from_us": 0, "to_us": 2_000 * 1_000_000} for m in ("anna", "bob")]
    await tables_erase.erase({3: ranged}, writer, [(states, {})])
    assert b"anna" not in tables.contents(latest) and b"bob" in tables.contents(latest)
    assert b"anna" in tables.contents(journeys_state)


def test_how_long_a_record_may_stay_follows_the_topics_settings():
    from datetime import datetime, timezone

    from tracker.stream.copies import bound

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    until, why = bound({"cleanup.policy": "delete", "retention.ms": "3600000", "segment.ms": "7200000"}, now)
    assert until == datetime(2026, 1, 1, 3, tzinfo=timezone.utc) and why == "segment.ms 2 h + retention.ms 1 h"
    assert bound({"cleanup.policy": "compact", "segment.ms": "3600000"}, now)[0] is None
    until, why = bound({"cleanup.policy": "compact", "segment.ms": "3600000", "max.compaction.lag.ms": "3600000"}, now)
    assert until == datetime(2026, 1, 1, 2, tzinfo=timezone.utc) and why.startswith("compacted")
    assert bound({"cleanup.policy": "delete", "retention.ms": "-1"}, now) == (None, "retention.ms -1: kept forever")
    until, _ = bound({"cleanup.policy": "compact,delete", "retention.ms": "3600000", "segment.ms": "3600000",
                      "max.compaction.lag.ms": "60000"}, now)
    assert until == datetime(2026, 1, 1, 1, 1, tzinfo=timezone.utc)
