"""Webhooks on a real worker, broker and database, with a local HTTP receiver.

Events are produced straight to the stack's events topic (as the events agent would), for
webhooks that want all of them, some types or markers, one that answers 500 three times
first, one that always answers 500 and one that never answers. Each wanted event must
arrive once, signed; the failing one's must end on the events DLQ with the reason; the
one that never answers must not slow the others; a replay must deliver nothing again.
"""
import asyncio
import hashlib
import hmac
import threading
import time
from collections import Counter

import orjson
import pytest

from tracker.events import model as events

from tracker.webhooks import store as webhook_store
from tracker.stream.producer import positions_producer
from tracker.testing import run_sync, serve_http, wait_for
from tracker.webhooks.model import parse_webhook

MARKERS = ("van-1", "van-2", "car-1", "bus-1")
EVENTS = [
    {"id": events.event_id(MARKERS[n % 4], kind, 1_790_000_000_000_000 + n, n), "marker_id": MARKERS[n % 4],
     "type": kind, "time_us": 1_790_000_000_000_000 + n * 1_000_000, "position": {"lat": 48.85, "lon": 2.35 + n / 1000}}
    for n, kind in enumerate(events.TYPES * 4)
]
RECORDS = [events.record_of(event) for event in EVENTS]
#: Every event is for one of these webhooks (path: types, markers); ``warm-*`` markers only reach /all and /hang.
HOOKS = {
    "/all": ([], []),
    "/flaky": ([], ["van-*", "car-1", "bus-1"]),
    "/picky": (["geofence_enter", "geofence_exit"], ["van-*", "car-1"]),
    "/dead": (["low_battery"], ["van-*", "car-1", "bus-1"]),
    "/hang": ([], []),
    "/reopen": (["offline"], ["crash-*"]),
}
FLAKY_FAILURES = 3
MAX_ATTEMPTS = 4


def wanted(path: str) -> set[str]:
    types, markers = HOOKS[path]

    def named(marker_id: str) -> bool:
        return not markers or any(m == marker_id or (m.endswith("*") and marker_id.startswith(m[:-1]))
                                  for m in markers)

    return {r["id"] for r in RECORDS if (not types or r["type"] in types) and named(r["marker_id"])}


class WebhookReceiver:
    """An HTTP server on a thread of its own: /hang never answers, /dead always answers 500,
    so do the paths in ``closed`` (until taken out), and a path in ``failures`` to its first
    calls; everything else 200."""

    def __init__(self, failures: dict[str, int], closed: set[str]) -> None:
        self.failures = failures
        self.closed = closed
        self.requests: list[dict] = []
        self._calls: Counter = Counter()
        self._lock = threading.Lock()

    def start(self) -> "WebhookReceiver":
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        assert ready.wait(10), "the receiver did not start"
        return self

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import web

        async def handle(request):
            body = await request.read()
            with self._lock:
                self._calls[request.path] += 1
                call = self._calls[request.path]
            if request.path == "/hang":
                await asyncio.sleep(3600)
            refused = request.path == "/dead" or request.path in self.closed
            status = 500 if refused or call <= self.failures.get(request.path, 0) else 200
            with self._lock:
                self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body,
                                      "status": status, "at": time.time()})
            return web.Response(status=status, text="refused" if status == 500 else "ok")

        async def setup():
            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            self.runner, self.url = await serve_http(app, 0.2)

        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(setup())
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        async def shutdown():
            await self.runner.cleanup()
            hanging = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in hanging:
                task.cancel()
            await asyncio.gather(*hanging, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def delivered(self, path: str) -> list[dict]:
        """The requests to ``path`` answered 200, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r["path"] == path and r["status"] == 200]

    def calls(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]


def events_topic(stack) -> str:
    return f"{stack.name}.events"


def produce(stack, records: list[dict]) -> dict[str, float]:
    """The records on the stack's events topic, keyed by marker id; event id -> time sent."""
    async def send() -> dict[str, float]:
        producer = positions_producer(stack.settings)
        await producer.start()
        sent = {}
        try:
            for record in records:
                sent[record["id"]] = time.time()
                await producer.send_and_wait(events_topic(stack), key=record["marker_id"].encode(),
                                             value=orjson.dumps(record))
        finally:
            await producer.stop()
        return sent

    return run_sync(send())


@pytest.fixture(scope="module")
def receiver():
    receiver = WebhookReceiver({"/flaky": FLAKY_FAILURES}, {"/reopen"}).start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def hooks(stack, receiver):
    """The webhooks, stored before the worker starts (so its first load has them): path -> Webhook."""
    import psycopg

    from tracker.storage.schema import create_schema

    async def add():
        async with await psycopg.AsyncConnection.connect(stack.settings.database_url, autocommit=True) as conn:
            await create_schema(conn)
            return {path: await webhook_store.add(conn, parse_webhook(
                {"url": receiver.url + path, "types": types, "markers": markers},
                stack.settings.webhook_allow_private), None)
                for path, (types, markers) in HOOKS.items()}

    return run_sync(add())


def worker_env(stack) -> dict[str, str]:
    return {"TRACKER_EVENTS_TOPIC": events_topic(stack), "TRACKER_WEBHOOK_RETRY_SECONDS": "0.1",
            "TRACKER_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS), "TRACKER_WEBHOOK_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def worker(stack, hooks, receiver):
    worker = stack.worker(**worker_env(stack)).start()
    worker.wait_ready()
    # The notifier joins its group beside the others: once a first event has come through,
    # what follows measures delivery, not the join.
    warm = {"id": "warm-up", "marker_id": "warm-0", "type": "online", "time": "2026-11-27T00:00:00Z",
            "position": {"lat": 0.0, "lon": 0.0}}
    produce(stack, [warm])
    wait_for(lambda: receiver.delivered("/all"), 60, "the warm-up event at /all")
    return worker


@pytest.fixture(scope="module")
def delivered(stack, worker, receiver):
    """The events produced (event id -> time sent), once every healthy webhook has them all."""
    sent = produce(stack, RECORDS)
    for path in ("/all", "/flaky", "/picky"):
        wait_for(lambda: {r["headers"]["X-Tracker-Delivery"] for r in receiver.delivered(path)} >= wanted(path),
                 30, f"every wanted event at {path}")
    time.sleep(1.5)  # a second delivery, if any, would arrive now
    return sent


def test_every_wanted_event_arrives_exactly_once_with_a_valid_signature(hooks, receiver, delivered):
    by_id = {r["id"]: r for r in RECORDS}
    assert wanted("/picky") and wanted("/picky") < wanted("/flaky") <= wanted("/all")
    for path in ("/all", "/flaky", "/picky"):
        requests = [r for r in receiver.delivered(path) if r["headers"]["X-Tracker-Delivery"] != "warm-up"]
        ids = [r["headers"]["X-Tracker-Delivery"] for r in requests]
        assert sorted(ids) == sorted(wanted(path)), path  # each once, nothing else
        secret = hooks[path].secret.encode()
        for request in requests:
            event_id = request["headers"]["X-Tracker-Delivery"]
            expected = "sha256=" + hmac.new(secret, request["body"], hashlib.sha256).hexdigest()
            assert request["headers"]["X-Tracker-Signature"] == expected, path
            assert orjson.loads(request["body"]) == by_id[event_id]
            assert request["headers"]["X-Tracker-Event"] == by_id[event_id]["type"]
            assert request["headers"]["Content-Type"] == "application/json"


def test_a_receiver_that_fails_its_first_calls_gets_them_again_until_they_succeed(receiver, delivered):
    calls = receiver.calls("/flaky")
    failed = [r["headers"]["X-Tracker-Delivery"] for r in calls if r["status"] == 500]
    assert len(failed) == FLAKY_FAILURES and len(calls) == len(wanted("/flaky")) + FLAKY_FAILURES
    retried = [r for r in receiver.delivered("/flaky") if r["headers"]["X-Tracker-Delivery"] in failed]
    assert sorted(r["headers"]["X-Tracker-Delivery"] for r in retried) == sorted(failed)
    assert {r["headers"]["X-Tracker-Attempt"] for r in retried} == {"2"}


def test_a_receiver_that_never_answers_does_not_delay_the_others(receiver, delivered, figures):
    lags = sorted(r["at"] - delivered[r["headers"]["X-Tracker-Delivery"]] for r in receiver.delivered("/all")
                  if r["headers"]["X-Tracker-Delivery"] in delivered)
    assert len(lags) == len(RECORDS)
    figures.append(("webhook, produce to 2xx beside a dead endpoint", f"median {lags[len(lags) // 2] * 1000:.0f} ms, "
                                                                       f"max {lags[-1] * 1000:.0f} ms"))
    assert lags[-1] < 0.5, f"produce to webhook: median {lags[len(lags) // 2]:.3f} s, max {lags[-1]:.3f} s"


def test_after_the_last_attempt_the_event_is_on_the_dlq_with_the_reason(stack, hooks, receiver, delivered):
    dead = hooks["/dead"]
    wait_for(lambda: stack.query("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s "
                                 "AND status = 'failed'", dead.webhook_id)[0][0] == len(wanted("/dead")),
             30, "the failed deliveries")
    letters = stack.read_topic(f"{events_topic(stack)}.dlq", expect=10**6, timeout=2)
    letters = [letter for letter in letters if letter["webhook_id"] == dead.webhook_id]
    assert sorted(letter["event"]["id"] for letter in letters) == sorted(wanted("/dead"))  # each once
    for letter in letters:
        assert letter["reason"] == f"webhook {dead.webhook_id} ({dead.url}) failed {MAX_ATTEMPTS} attempts; " \
                                   "last: HTTP 500"
        assert (letter["url"], letter["attempts"], letter["last_status"], letter["last_error"]) == \
            (dead.url, MAX_ATTEMPTS, 500, "HTTP 500")  # the status, never the body
    assert len(receiver.calls("/dead")) == MAX_ATTEMPTS * len(wanted("/dead"))


def test_the_deliveries_api_shows_each_delivery_and_its_attempts(stack, worker, hooks, delivered):
    def deliveries(path: str, query: str = "") -> list[dict]:
        status, body = worker.get(f"/api/webhooks/{hooks[path].webhook_id}/deliveries{query}")
        assert status == 200, body
        return body["deliveries"]

    flaky = deliveries("/flaky", "?limit=1000")
    assert {d["status"] for d in flaky} == {"delivered"} and {d["event_id"] for d in flaky} == wanted("/flaky")
    assert sorted(d["attempts"] for d in flaky) == [1] * (len(flaky) - FLAKY_FAILURES) + [2] * FLAKY_FAILURES
    first = next(d for d in flaky if d["attempts"] == 2)
    assert first["last_status"] == 200 and first["delivered_at"] and first["next_attempt_at"] is None
    assert first["type"] in events.TYPES and first["marker_id"] in MARKERS and first["event"]["id"] == first["event_id"]

    wait_for(lambda: len(deliveries("/dead", "?status=failed")) == len(wanted("/dead")), 30, "the failed deliveries")
    for failed in deliveries("/dead", "?status=failed"):
        assert (failed["attempts"], failed["last_status"], failed["last_error"]) == \
            (MAX_ATTEMPTS, 500, "HTTP 500")
    assert deliveries("/dead", "?status=delivered") == []
    assert len(deliveries("/all", "?limit=2")) == 2
    status, item = worker.get(f"/api/webhooks/{hooks['/flaky'].webhook_id}")
    assert status == 200 and item["deliveries"] == {"pending": 0, "delivered": len(wanted("/flaky")), "failed": 0}
    assert "secret" not in item
    hang = deliveries("/hang", "?limit=1000")
    assert hang and all(d["status"] in ("pending", "failed") for d in hang)
    assert worker.get(f"/api/webhooks/{hooks['/all'].webhook_id}/deliveries?status=lost")[0] == 400
    assert worker.get("/api/webhooks/99999/deliveries")[0] == 404


def test_events_read_again_are_not_delivered_again(stack, worker, receiver, delivered):
    before = {path: len(receiver.calls(path)) for path in ("/all", "/flaky", "/picky")}
    produce(stack, RECORDS)  # as a replay after a crash would read them
    wait_for(lambda: stack.caught_up("-notifier", events_topic(stack)), 30, "the notifier to read the replay")
    time.sleep(1.0)
    assert {path: len(receiver.calls(path)) for path in before} == before


def test_admins_manage_webhooks_over_http_and_a_new_one_applies_without_a_restart(stack, worker, receiver, hooks):
    json = {"Content-Type": "application/json"}
    viewer = stack.user("hook-viewer", "viewer", ["van-1"])
    body = orjson.dumps({"url": receiver.url + "/late", "types": ["overspeed"], "markers": ["late-*"]})
    assert worker.request("POST", "/api/webhooks", body, token=viewer, headers=json)[0] == 403
    assert worker.request("POST", "/api/webhooks", body, token=None, headers=json)[0] == 401
    assert worker.get("/api/webhooks", token=viewer)[0] == 403
    for bad, says in ((b"{}", "url"), (orjson.dumps({"url": "ftp://x/"}), "http"),
                      (orjson.dumps({"url": "http://x/", "types": ["nope"]}), "'nope' is not one of"),
                      (orjson.dumps({"url": "http://x/", "markers": ["a b"]}), "not a marker id")):
        status, _, answer = worker.request("POST", "/api/webhooks", bad, headers=json)
        assert status == 400 and answer["error"] == "bad_webhook" and says in answer["message"], answer

    status, _, created = worker.request("POST", "/api/webhooks", body, headers=json)
    assert status == 201 and len(created["secret"]) >= 40, created
    assert (created["url"], created["types"], created["markers"], created["created_by"]) == \
        (receiver.url + "/late", ["overspeed"], ["late-*"], "admin")
    listed = worker.get("/api/webhooks")[1]
    assert [h["id"] for h in listed] == sorted(h.webhook_id for h in hooks.values()) + [created["id"]]
    assert all("secret" not in h for h in listed)

    # Within a few seconds every worker's notifier has it.
    started, n = time.monotonic(), 0
    while not receiver.delivered("/late"):
        assert time.monotonic() - started < 15, "the new webhook got nothing"
        produce(stack, [{"id": f"late-{n}", "marker_id": "late-1", "type": "overspeed", "time": "2026-11-27T00:00:00Z",
                         "position": {"lat": 0.0, "lon": 0.0}, "speed": 40.0, "limit": 30.0}])
        n += 1
        time.sleep(0.5)
    received = orjson.loads(receiver.delivered("/late")[0]["body"])
    assert received["marker_id"] == "late-1" and receiver.delivered("/late")[0]["headers"]["X-Tracker-Signature"] == \
        "sha256=" + hmac.new(created["secret"].encode(), receiver.delivered("/late")[0]["body"],
                             hashlib.sha256).hexdigest()

    assert worker.request("DELETE", f"/api/webhooks/{created['id']}", token=viewer)[0] == 403
    assert worker.request("DELETE", f"/api/webhooks/{created['id']}")[0] == 204
    assert worker.get(f"/api/webhooks/{created['id']}")[0] == 404
    assert worker.request("DELETE", f"/api/webhooks/{created['id']}")[0] == 404
    assert stack.query("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s", created["id"])[0][0] == 0


def test_retries_pending_when_a_worker_is_killed_are_made_by_the_next_one_and_nothing_twice(stack, worker, receiver,
                                                                                            hooks, delivered):
    """Last: it kills the module's worker."""
    reopen = hooks["/reopen"].webhook_id
    crashes = [{"id": f"crash-{n}", "marker_id": f"crash-{n}", "type": "offline", "time": "2026-11-27T00:00:00Z",
                "position": {"lat": 0.0, "lon": 0.0}} for n in range(3)]

    def attempts() -> list[tuple[str, str, int]]:
        return stack.query("SELECT event_id, status, attempts FROM webhook_deliveries WHERE webhook_id = %s "
                           "ORDER BY event_id", reopen)

    produce(stack, crashes)
    wait_for(lambda: len(attempts()) == 3 and all(n >= 1 for _, _, n in attempts()), 10,
             "a first failed attempt of each", interval=0.02)
    worker.kill()
    assert all(status == "pending" and n < MAX_ATTEMPTS for _, status, n in attempts()), attempts()
    # As if LEASE_SECONDS had passed: the dead worker's leases have run out.
    stack.query("UPDATE webhook_deliveries SET lease_until = now() WHERE lease_owner IS NOT NULL RETURNING 1")
    receiver.closed.discard("/reopen")

    stack.worker(**worker_env(stack)).start().wait_ready()
    wait_for(lambda: {r["headers"]["X-Tracker-Delivery"] for r in receiver.delivered("/reopen")} == {
        c["id"] for c in crashes}, 30, "the pending retries made by the next worker")
    time.sleep(1.5)
    assert sorted(r["headers"]["X-Tracker-Delivery"] for r in receiver.delivered("/reopen")) == \
        [c["id"] for c in crashes]
    assert [status for _, status, _ in attempts()] == ["delivered"] * 3
    for path in ("/all", "/flaky", "/picky"):  # the tail read again by the next worker: nothing twice
        ids = [r["headers"]["X-Tracker-Delivery"] for r in receiver.delivered(path)]
        assert len(ids) == len(set(ids)), path
