"""Webhooks reach only the outside, on a worker without ``TRACKER_WEBHOOK_ALLOW_PRIVATE``:
the API refuses loopback, unspecified, link-local, private and local names, and URLs with
credentials; a webhook stored before (when its network was allowed) is refused again at
delivery, its host resolved; URLs are answered without their query."""
import orjson
import pytest

from tests.integration.test_webhooks import events_topic, produce
from tracker.testing import run_sync, wait_for
from tracker.webhooks import store as webhook_store
from tracker.webhooks.destinations import REFUSED_ERROR
from tracker.webhooks.model import parse_webhook

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def worker(stack, receiver):
    import psycopg

    from tracker.storage.schema import create_schema

    port = receiver.url.rsplit(":", 1)[1]

    async def add():  # as if added while loopback was allowed
        async with await psycopg.AsyncConnection.connect(stack.settings.database_url, autocommit=True) as conn:
            await create_schema(conn)
            allowed = stack.settings.webhook_allow_private
            return [await webhook_store.add(conn, parse_webhook({"url": url}, allowed), None)
                    for url in (receiver.url + "/literal", f"http://localhost:{port}/named")]

    stack.hooks = run_sync(add())
    worker = stack.worker(TRACKER_EVENTS_TOPIC=events_topic(stack), TRACKER_WEBHOOK_ALLOW_PRIVATE="",
                          TRACKER_WEBHOOK_RETRY_SECONDS="60").start()
    worker.wait_ready()
    return worker


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:6066/api", "http://127.1/", "http://0x7f000001/", "http://0.0.0.0:5432/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:6066/", "http://[::ffff:7f00:1]/", "http://localhost/",
    "http://10.0.0.7/", "http://192.168.1.1/", "http://100.64.0.1/", "http://[fd00::1]/", "http://[fe80::1]/",
    "https://someone:s3cret@hooks.example.org/in",
])
def test_the_api_refuses_a_webhook_to_anything_but_the_outside(worker, url):
    status, _, answer = worker.request("POST", "/api/webhooks", orjson.dumps({"url": url}), headers=JSON)
    assert status == 400 and answer["error"] == "bad_webhook", (url, answer)
    assert "s3cret" not in answer["message"]


def test_a_url_is_answered_without_its_query(worker, stack):
    url = "https://93.184.215.14/hooks/in?token=s3cret"
    status, _, created = worker.request("POST", "/api/webhooks", orjson.dumps({"url": url}), headers=JSON)
    assert status == 201 and created["url"] == "https://93.184.215.14/hooks/in?…", created
    listed = worker.get("/api/webhooks")[1]
    assert "s3cret" not in orjson.dumps(listed).decode() and "s3cret" not in str(worker.get(f"/api/webhooks/{created['id']}")[1])
    assert worker.request("DELETE", f"/api/webhooks/{created['id']}")[0] == 204


def test_a_stored_webhook_to_loopback_is_refused_at_delivery_even_by_name(worker, stack, receiver):
    event = {"id": "dest-1", "marker_id": "van-1", "type": "online", "time": "2026-11-27T00:00:00Z",
             "position": {"lat": 0.0, "lon": 0.0}}

    def errors():
        rows = stack.query("SELECT webhook_id, attempts, last_error, last_status FROM webhook_deliveries "
                           "WHERE event_id = 'dest-1' AND attempts > 0 ORDER BY webhook_id")
        return rows if len(rows) == 2 else None

    produce(stack, [event])
    rows = wait_for(errors, 60, "both deliveries attempted")
    assert [(row[2], row[3]) for row in rows] == [(REFUSED_ERROR, None)] * 2
    assert not receiver.calls("/literal") and not receiver.calls("/named")
