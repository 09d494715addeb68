"""The live feed's bounds on a real worker: a stream ends once its token is revoked or its
group taken away (a fix sent after that never arrives on it); an account holds a bounded
number of streams, and a worker too, each answered with Retry-After beyond."""
import time

import orjson
import pytest

from tests.integration.test_live import Feed
from tracker.testing import wait_for

PER_ACCOUNT, PER_WORKER = 3, 6


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker(TRACKER_LIVE_MAX_PER_ACCOUNT=str(PER_ACCOUNT), TRACKER_LIVE_MAX_VIEWERS=str(PER_WORKER),
                          TRACKER_LIVE_INTERVAL="0.5").start()
    worker.wait_ready()
    return worker


def send(stack, marker: str, t: int) -> None:
    stack.send([(marker.encode(), orjson.dumps({"marker_id": marker, "lat": 45.0, "lon": 14.0, "time": t}))])


def test_a_revoked_token_ends_its_stream(stack, worker):
    token = stack.user("live-revoked", "viewer", ["lr-*"])
    feed = Feed(worker, token)
    try:
        wait_for(lambda: "snapshot" in feed.events, 10, "the snapshot")
        t = int(time.time())
        send(stack, "lr-1", t)
        wait_for(lambda: ("lr-1", t * 1000) in feed.seen, 20, "a fix on the feed while the token is valid")
        stack.query("UPDATE api_tokens SET revoked_at = now() WHERE user_id = "
                    "(SELECT user_id FROM users WHERE name = 'live-revoked') RETURNING 1")
        wait_for(lambda: feed.closed, 12, "the stream ended after the revocation")
        send(stack, "lr-1", t + 1)
        time.sleep(2)
        assert ("lr-1", (t + 1) * 1000) not in feed.seen
    finally:
        feed.close()


def test_a_group_taken_away_ends_the_stream(stack, worker):
    token = stack.user("live-group", "viewer", ["lg-*"])
    feed = Feed(worker, token)
    try:
        wait_for(lambda: "snapshot" in feed.events, 10, "the snapshot")
        stack.query("DELETE FROM group_members WHERE user_id = (SELECT user_id FROM users WHERE name = 'live-group') "
                    "RETURNING 1")
        wait_for(lambda: feed.closed, 12, "the stream ended once the group was taken away")
    finally:
        feed.close()


def test_an_account_and_a_worker_hold_a_bounded_number_of_streams(stack, worker):
    many = stack.user("live-many", "viewer", ["lm-*"])
    feeds = [Feed(worker, many) for _ in range(PER_ACCOUNT)]
    try:
        status, headers, body = worker.request("GET", "/api/live", token=many)
        assert status == 429 and headers["Retry-After"] and body["error"] == "too_many_streams", body
        others = [stack.user(f"live-other-{n}", "viewer", ["lm-*"]) for n in range(PER_WORKER - PER_ACCOUNT)]
        feeds += [Feed(worker, token) for token in others]
        status, headers, body = worker.request("GET", "/api/live", token=stack.admin_token)
        assert status == 503 and headers["Retry-After"] and body["error"] == "busy", body
    finally:
        for feed in feeds:
            feed.close()
    wait_for(lambda: _opens(worker, many), 5, "room again once the streams closed")


def _opens(worker, token: str) -> bool:
    try:
        feed = Feed(worker, token)
    except AssertionError:
        return False
    feed.close()
    return True
