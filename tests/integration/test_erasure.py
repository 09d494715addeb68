"""``tracker history erase`` on a real worker, Kafka and Postgres: it deletes the marker's
history, the webhook deliveries of its events and its share links, counts what it removed
(the rows of fixes on their way, which the history sink deletes, included), and lists where
copies remain in Kafka and until when."""
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from tracker.stream import batches
from tracker.stream.producer import positions_producer
from tracker.testing import run_sync, wait_for

TRACKER = str(Path(sys.executable).with_name("tracker"))
KEPT = 111
ON_THEIR_WAY = 20
JSON = {"Content-Type": "application/json"}
START = datetime.now(timezone.utc) - timedelta(hours=3)


def fix(marker: str, n: int) -> bytes:
    return orjson.dumps({"marker_id": marker, "lat": 45 + n * 1e-4, "lon": 14.0,
                         "time": (START + timedelta(seconds=n)).isoformat()})


@pytest.fixture(scope="module")
def erased(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    stack.send([(marker.encode(), fix(marker, n)) for n in range(KEPT) for marker in ("er-1", "er-2")])
    wait_for(lambda: stack.history_count() == 2 * KEPT, 90, "the history of both markers")
    status, _, share = worker.request("POST", "/api/shares", orjson.dumps({"marker_id": "er-1"}), headers=JSON)
    assert status == 201 and worker.request("GET", share["path"], token=None)[0] == 200
    status, _, hook = worker.request("POST", "/api/webhooks", orjson.dumps({"url": "http://127.0.0.1:9/hook"}),
                                     headers=JSON)
    assert status == 201
    for n, marker in enumerate(("er-1", "er-1", "er-1", "er-2")):
        event = {"id": f"ev-{n}", "marker_id": marker, "type": "online", "time": START.isoformat(),
                 "position": {"lat": 45.0, "lon": 14.0}}
        stack.query("INSERT INTO webhook_deliveries (webhook_id, event_id, event, status) VALUES (%s, %s, %s, "
                    "'failed') RETURNING 1", hook["id"], event["id"], orjson.dumps(event).decode())
    worker.stop()
    run_sync(_on_their_way(stack))  # read by the intake, not yet by the history sink
    command = subprocess.Popen([TRACKER, "history", "erase", "--marker", "er-1", "--wait", "120"], env=stack.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the command's deletes are committed before the history sink writes what is on its way
    wait_for(lambda: stack.query("SELECT 1 FROM erasures WHERE marker_id = 'er-1'"), 60, "the erase command's deletes")
    worker.start()
    out, err = command.communicate(timeout=180)
    assert command.returncode == 0, err
    return worker, share, hook, out


async def _on_their_way(stack) -> None:
    received = int(time.time() * 1e6)
    fixes = [["er-1", int((START + timedelta(seconds=KEPT + n)).timestamp() * 1e6), 45.0, 14.0, None, None, None,
              None, None, "test", None, received] for n in range(ON_THEIR_WAY)]
    producer = positions_producer(stack.settings)
    await producer.start()
    try:
        for value in batches.encode(fixes):
            await producer.send_and_wait(stack.settings.batches_topic, key=b"er-1", value=value)
    finally:
        await producer.stop()


def rows(out: str, name: str) -> int:
    return int(re.search(rf"^{re.escape(name)}\s+([\d,]+)", out, re.M).group(1).replace(",", ""))


def test_it_says_what_it_removed_the_history_sinks_share_included(stack, erased):
    _, _, _, out = erased
    assert rows(out, "positions") == KEPT
    assert rows(out, "(history sink)") == ON_THEIR_WAY
    assert rows(out, "webhook_deliveries") == 3 and rows(out, "shares (revoked)") == 1
    assert stack.query("SELECT count(*) FROM positions WHERE marker_id = 'er-1'")[0][0] == 0
    assert stack.query("SELECT count(*) FROM positions WHERE marker_id = 'er-2'")[0][0] == KEPT


def test_its_webhook_deliveries_and_share_links_are_gone(stack, erased):
    worker, share, hook, _ = erased
    deliveries = worker.get(f"/api/webhooks/{hook['id']}/deliveries")[1]["deliveries"]
    assert [d["marker_id"] for d in deliveries] == ["er-2"]
    assert worker.request("GET", share["path"], token=None)[0] == 404


def test_it_lists_where_copies_remain_and_until_when(stack, erased):
    _, _, _, out = erased
    listed = out.split("copies that remain, until at the latest:", 1)[1]
    for topic in (stack.settings.topic, stack.settings.batches_topic, stack.settings.events_topic,
                  f"{stack.name}-latest-changelog"):
        assert re.search(rf"^  {re.escape(topic)}\s+(\d{{4}}-\d\d-\d\d \d\d:\d\d UTC|no bound)", listed, re.M), topic
    positions_line = next(line for line in listed.splitlines() if line.strip().startswith(stack.settings.topic + " "))
    until = datetime.strptime(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", positions_line).group(0), "%Y-%m-%d %H:%M")
    assert until > datetime.now() and "retention.ms" in positions_line
    changelog = next(line for line in listed.splitlines() if "latest-changelog" in line)
    assert "retention.ms" in changelog or "compacted" in changelog  # as the broker has it
