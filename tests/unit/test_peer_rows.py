"""A peer worker's rows are used only when each has exactly the shape of a position."""
import dataclasses

import aiohttp
import orjson
import pytest

from tracker.settings import settings
from tracker.testing import serve_http
from web.cluster import PARTITIONS_HEADER, PeerNotReady, PeerUnavailable, _ask_rows, valid_position

ROW = {"marker_id": "car-1", "lat": 45.5, "lon": 14.25, "time": "2026-11-28T07:00:00Z", "speed": 3.5,
       "heading": None, "altitude": None, "accuracy": 5.0, "battery": 80.0, "source": "osmand",
       "attributes": None, "received_at": "2026-11-28T07:00:01.5Z"}


NOW_ROW = {**ROW, "odometer": 1200.5, "moving": True, "name": "Van 3"}


def test_a_position_is_accepted():
    assert valid_position(NOW_ROW)


def test_the_rows_of_earlier_peers_are_accepted_during_an_upgrade():
    """Before the display name; before the journeys stage."""
    assert valid_position({key: value for key, value in NOW_ROW.items() if key != "name"})
    assert valid_position(ROW)


def test_a_marker_id_stored_before_the_first_character_rule_still_passes():
    """A legacy id such as ``-old`` must not make every cluster-wide list a 503."""
    assert valid_position({**ROW, "marker_id": "-old"})


@pytest.mark.parametrize("change", [
    {"marker_id": "<script>"}, {"marker_id": 7}, {"lat": 91}, {"lon": "14"}, {"lat": float("nan")},
    {"time": "yesterday"}, {"received_at": None}, {"speed": "fast"}, {"battery": True}, {"source": 5},
    {"attributes": [1]}, {"extra": 1}, {"name": 3}, {"moving": "yes"},
])
def test_anything_else_is_refused(change):
    assert not valid_position({**NOW_ROW, **change})


@pytest.mark.parametrize("row", [None, [], "html", {"marker_id": "car-1"}])
def test_non_rows_are_refused(row):
    assert not valid_position(row)


class FakePeer:
    """A worker's HTTP port that answers whatever the test says, and records what it was sent."""

    def __init__(self, status: int, content_type: str, body: bytes, headers: dict | None = None) -> None:
        self.answer = (status, content_type, body)
        self.headers = headers or {}
        self.seen_headers = []

    async def __aenter__(self):
        from aiohttp import web

        async def handle(request):
            self.seen_headers.append(dict(request.headers))
            status, content_type, body = self.answer
            return web.Response(status=status, body=body, content_type=content_type, headers=self.headers)

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        self.runner, self.url = await serve_http(app)
        return self

    async def __aexit__(self, *exc_info):
        await self.runner.cleanup()


@pytest.mark.parametrize("status, content_type, body", [
    (200, "text/html", b"<html><body>[{}]</body></html>"),
    (200, "application/json", b"<html>"),
    (200, "application/json", orjson.dumps([{**ROW, "marker_id": "<img src=x>"}])),
    (200, "application/json", orjson.dumps({"rows": [ROW]})),
    (500, "application/json", orjson.dumps([ROW])),
])
async def test_a_peer_answering_anything_but_positions_is_unavailable_and_never_relayed(status, content_type, body):
    async with FakePeer(status, content_type, body) as peer, aiohttp.ClientSession() as session:
        with pytest.raises(PeerUnavailable):
            await _ask_rows(session, peer.url, [("scope", "local")])


async def test_a_peer_is_asked_with_the_cluster_secret_and_its_rows_are_used(monkeypatch):
    monkeypatch.setattr("web.cluster.settings", dataclasses.replace(settings, cluster_secret="s3cret"))
    async with FakePeer(200, "application/json", orjson.dumps([ROW]), {PARTITIONS_HEADER: "1,6"}) as peer, \
            aiohttp.ClientSession() as session:
        scan = await _ask_rows(session, peer.url, [("scope", "local")])
    assert scan.positions == [ROW] and scan.covered == {1, 6}
    (headers,) = peer.seen_headers
    assert headers["X-Tracker-Cluster"] == "s3cret"
    assert "Authorization" not in headers and "Cookie" not in headers


async def test_a_peer_of_an_earlier_version_answers_for_every_partition_it_holds():
    async with FakePeer(200, "application/json", orjson.dumps([ROW])) as peer, aiohttp.ClientSession() as session:
        scan = await _ask_rows(session, peer.url, [("scope", "local")])
    assert scan.covered == set(range(settings.topic_partitions))


async def test_a_peer_that_is_not_ready_says_so():
    async with FakePeer(503, "application/json", b'{"error": "not_ready"}') as peer, \
            aiohttp.ClientSession() as session:
        with pytest.raises(PeerNotReady):
            await _ask_rows(session, peer.url, [("scope", "local")])


async def test_a_failed_shared_answer_is_not_kept_for_the_next_caller():
    from web.cluster import SharedAnswers

    answers, calls = SharedAnswers(), []

    async def failing():
        calls.append(1)
        raise PeerUnavailable("down")

    async def working():
        calls.append(1)
        return ["rows"]

    with pytest.raises(PeerUnavailable):
        await answers.get(("k",), failing)
    assert await answers.get(("k",), working) == ["rows"]  # asked again, not the cached failure
    assert await answers.get(("k",), failing) == ["rows"]  # a success is shared for a second
    assert len(calls) == 2


def test_a_starting_worker_that_cannot_place_a_marker_yet_says_its_partition_has_no_owner(monkeypatch):
    """Before its producer has the changelog's metadata, Faust's router raises TypeError: the
    read falls back as during a rebalance (KeyError), rather than answering 500."""
    from tracker.app import app
    from web import cluster

    def unplaced(table, key):
        raise TypeError("'NoneType' object is not iterable")

    monkeypatch.setattr(app.router, "key_store", unplaced)
    with pytest.raises(KeyError):
        cluster.owner_of("truck-1")
