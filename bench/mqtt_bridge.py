"""The MQTT bridge (``tracker mqtt-bridge``) on the local Mosquitto and Kafka: one bridge process.

1. drain: N OwnTracks locations from 10 users wait in the broker for the bridge's session;
   the bridge is started and the time to the last of them in ``gps.positions`` gives its
   messages/s (goal >= 20,000/s);
2. latency: 1,000 messages/s for 10 s with the bridge running: from each publish to its
   record's Kafka timestamp (set when the bridge produces it), p50 / p99 / max.

    make bench-ingest        (needs scripts/services running: make services)
    python -m bench.mqtt_bridge [--messages N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bench.report import print_table
from tracker.testing import ROOT, Stack, run_sync

USERS = 10
TRACKER = str(Path(sys.executable).with_name("tracker"))


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def publisher(user: str, password: str):
    import paho.mqtt.client as mqtt

    url = urlsplit(os.environ["TRACKER_MQTT_URL"])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(url.hostname, url.port or 1883)
    client.loop_start()
    return client


def location(tst: int) -> bytes:
    return orjson.dumps({"_type": "location", "lat": 45.1, "lon": 14.2, "tst": tst, "acc": 8, "vel": 36, "batt": 80,
                         "tid": "bx"})


async def topic_records(stack: Stack) -> list:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(stack.settings.topic, bootstrap_servers=stack.settings.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    records = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                return records
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()


def topic_size(stack: Stack) -> int:
    return sum(stack.end_offsets(stack.settings.topic).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    if not os.environ.get("TRACKER_MQTT_PASSWORD_FILE"):
        sys.exit('bench: Mosquitto is needed: eval "$(scripts/services env)"')
    rows, failures = [], []
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-")))
    env = {**stack.env, **{k: v for k, v in os.environ.items() if k.startswith("TRACKER_MQTT_")},
           "TRACKER_MQTT_SHARE_GROUP": stack.name, "TRACKER_MQTT_SESSION_EXPIRY": "600"}
    users = {}
    bridge = None
    try:
        for i in range(USERS):
            name = f"{stack.name[-6:]}-b{i}"
            added = subprocess.run([TRACKER, "devices", "add", name], env=env, capture_output=True, text=True)
            users[name] = added.stdout.rsplit(" ", 1)[1].strip()

        def start_bridge() -> subprocess.Popen:
            return subprocess.Popen([TRACKER, "mqtt-bridge", "--client-id", f"bench-{stack.name}"], env=env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        first = start_bridge()
        time.sleep(2)  # its session and subscription, then away while the messages queue up
        first.terminate()
        first.wait()
        clients = {name: publisher(name, secret) for name, secret in users.items()}
        per_user = args.messages // USERS
        progress(f"publishing {per_user * USERS:,} messages for the bridge's session")
        base = int(time.time()) - 10 * 86400
        pending = [client.publish(f"owntracks/{name}/phone", location(base + i), qos=1)
                   for i in range(per_user) for name, client in clients.items()]
        for info in pending:
            info.wait_for_publish(120)
        progress("starting the bridge")
        started = time.monotonic()
        bridge = start_bridge()
        while topic_size(stack) < per_user * USERS and time.monotonic() - started < 600:
            time.sleep(0.2)
        drained = time.monotonic() - started
        total = topic_size(stack)
        rows.append((f"1. bridge drain, {per_user * USERS:,} queued messages, one process", f"{total / drained:,.0f} msg/s",
                     f"{total:,} in gps.positions in {drained:.1f} s (start-up included); goal >= 20,000/s"))
        if total < per_user * USERS:
            failures.append(f"only {total:,} of {per_user * USERS:,} messages reached Kafka")
        elif total / drained < 20_000:
            failures.append(f"bridge {total / drained:,.0f} msg/s < 20,000/s")

        progress("1,000 messages/s for 10 s")
        sent_at: dict[tuple[str, int], float] = {}
        base2 = base + per_user + 1000
        for second in range(10):
            tick = time.time()
            for k in range(100):
                for name, client in clients.items():
                    tst = base2 + second * 100 + k
                    sent_at[(name, tst)] = time.time()
                    client.publish(f"owntracks/{name}/phone", location(tst), qos=1)
                time.sleep(max(0.0, tick + (k + 1) / 100 - time.time()))
        time.sleep(3)
        latencies = []
        for record in run_sync(topic_records(stack)):
            fix = orjson.loads(record.value)
            key = (fix["marker_id"], int(datetime.fromisoformat(fix["time"].replace("Z", "+00:00")).timestamp()))
            if key in sent_at:
                latencies.append(record.timestamp / 1000 - sent_at[key])
        for client in clients.values():
            client.disconnect()
        if latencies:
            latencies.sort()
            p99 = latencies[int(0.99 * (len(latencies) - 1))]
            rows.append(("2. publish -> record in Kafka, 1,000 msg/s", f"p99 {p99 * 1000:.0f} ms",
                         f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
                         f"{len(latencies):,} messages"))
        else:
            failures.append("no latency sample")
    finally:
        if bridge is not None:
            bridge.terminate()
            try:
                bridge.wait(15)
            except subprocess.TimeoutExpired:
                bridge.kill()
        for name in users:
            subprocess.run([TRACKER, "devices", "remove", name], env=env, capture_output=True)
        stack.close()
    print_table(rows, failures)


if __name__ == "__main__":
    main()
