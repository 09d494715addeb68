"""A Traccar server as a gateway, on a real worker: positions forwarded as Traccar's JSON with
a gateway token land in history under the tracker's uniqueId; without a token, or with one
of no gateway, 401 and nothing reaches Kafka; a gateway confined to a prefix is refused
other ids; a fix without GPS lock is accepted but stored nowhere; ``tracker gateways``."""
import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.unit.test_traccar_forward import sample
from tracker.testing import wait_for

TRACKER = str(Path(sys.executable).with_name("tracker"))


def cli(stack, *args):
    return subprocess.run([TRACKER, "gateways", *args], env=stack.env, capture_output=True, text=True, timeout=60)


def token_of(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout.rsplit(" ", 1)[1].strip()


@pytest.fixture(scope="module")
def gateway(stack):
    worker = stack.worker().start()
    worker.wait_ready()
    return worker, token_of(cli(stack, "add", "traccar-main")), token_of(cli(stack, "add", "fleet-a", "--prefix", "A-"))


def post(worker, body, token=None):
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(worker.url + "/ingest/traccar", data=json.dumps(body).encode(), method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def fix(unique_id: str, minutes_ago: int, **changes) -> dict:
    at = (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).astimezone(timezone(timedelta(hours=2)))
    return sample(device__uniqueId=unique_id, position__fixTime=at.isoformat(timespec="milliseconds"), **changes)


def stored(stack, marker_id):
    return stack.query("SELECT fix_time, speed, battery, source, attributes FROM positions WHERE marker_id = %s "
                       "ORDER BY fix_time", marker_id)


def test_forwarded_positions_land_under_the_trackers_unique_id(stack, gateway):
    worker, token, _ = gateway
    for minutes in (3, 2, 1):
        status, reply = post(worker, fix("359881234567890", minutes), token)
        assert (status, reply) == (200, b"OK")
    wait_for(lambda: len(stored(stack, "359881234567890")) == 3, 60, "the three positions in history")
    _, speed, battery, source, attributes = stored(stack, "359881234567890")[-1]
    assert speed == pytest.approx(27.0 * 1852 / 3600) and battery == 76 and source == "traccar"
    assert attributes["name"] == "Van 3" and attributes["ignition"] is True and "ip" not in attributes
    # the history sink and the ``latest`` table are written apart: either may be first
    status, latest = wait_for(lambda: (answer := worker.get("/api/markers/359881234567890"))[0] == 200 and answer,
                              30, "the fix in latest")
    assert status == 200 and latest["name"] == "Van 3"


def test_a_fix_without_gps_lock_is_accepted_and_stored_nowhere(stack, gateway):
    worker, token, _ = gateway
    assert post(worker, fix("no-lock-1", 1, position__valid=False), token)[0] == 200
    assert post(worker, fix("lock-1", 1), token)[0] == 200
    wait_for(lambda: stored(stack, "lock-1"), 60, "the position with a fix")
    assert stored(stack, "no-lock-1") == [] and worker.get("/api/markers/no-lock-1")[0] == 404
    metrics = worker.get("/metrics")[1]
    assert 'tracker_positions_without_fix_total{source="traccar"} 1.0' in metrics


def test_no_token_or_an_unknown_one_is_401_and_a_prefix_confines_a_gateway(stack, gateway):
    worker, _, confined = gateway
    before = len(stack.read_topic(stack.settings.topic, expect=10**9, timeout=2))
    for token in (None, "not-a-token"):
        status, reply = post(worker, fix("A-1", 1), token)
        assert status == 401 and json.loads(reply)["error"] in ("missing_credential", "bad_credential")
    status, reply = post(worker, fix("B-1", 1), confined)
    assert status == 403 and json.loads(reply)["error"] == "outside_prefix"
    status, reply = post(worker, fix("bad id/1", 1), confined)
    assert status == 400 and "not a valid marker id" in json.loads(reply)["message"]
    assert len(stack.read_topic(stack.settings.topic, expect=10**9, timeout=2)) == before
    assert post(worker, fix("A-1", 1), confined)[0] == 200


def test_gateways_cli_lists_and_removes(stack, gateway):
    worker = gateway[0]
    token = token_of(cli(stack, "add", "short-lived"))
    listed = cli(stack, "list")
    assert "short-lived" in listed.stdout and "A-" in listed.stdout and token not in listed.stdout
    assert cli(stack, "add", "short-lived").returncode == 1
    assert cli(stack, "add", "bad name!").returncode == 2
    assert cli(stack, "remove", "short-lived").returncode == 0
    wait_for(lambda: post(worker, fix("C-1", 1), token)[0] == 401, 15, "the removed gateway's token to stop working")
    assert cli(stack, "remove", "short-lived").returncode == 1


def test_the_kafka_form_lands_through_the_adapter_and_bad_records_go_to_the_dlq(stack):
    """``forward.type=kafka``: Traccar's JSON keyed by its numeric device id, on a topic of its own."""
    import asyncio

    from tracker.stream.producer import positions_producer

    topic = f"{stack.settings.app_id}-traccar-in"
    worker = stack.worker(TRACKER_TRACCAR_TOPIC=topic).start()
    worker.wait_ready()
    records = [(b"17", json.dumps(fix("kafka-tracker-1", minutes)).encode()) for minutes in (3, 2, 1)]
    records += [(b"18", json.dumps(fix("kafka-no-lock", 1, position__valid=False)).encode()),
                (b"19", json.dumps(fix("bad id", 1)).encode()),
                (b"20", b"{not json")]

    async def send():
        producer = positions_producer(stack.settings)
        await producer.start()
        try:
            for key, value in records:
                await (await producer.send(topic, key=key, value=value))
        finally:
            await producer.stop()

    asyncio.run(send())
    wait_for(lambda: len(stored(stack, "kafka-tracker-1")) == 3, 90, "the forwarded positions in history")
    letters = stack.read_topic(stack.settings.dlq_topic, expect=2, timeout=30)
    reasons = sorted(letter["code"] for letter in letters if letter["source"]["topic"] == topic)
    assert reasons == ["bad_marker_id", "not_json"]
    assert stored(stack, "kafka-no-lock") == []
    worker.stop()
