"""The MQTT bridge (``tracker mqtt-bridge``) on the local Mosquitto and Kafka, in one run:

1. drain, one process: N OwnTracks locations from 10 users wait in the broker for the
   bridge's session; the bridge is started and the time to the last of them in
   ``gps.positions`` gives its messages/s, and its CPU time per message;
2. drain, several processes (``--processes``, 2 by default) sharing the subscription (the
   same share group, a session each): the same, all started at once;
3. latency: 1,000 messages/s for 10 s with one bridge running: from each publish to its
   record's Kafka timestamp (set when the bridge produces it), p50 / p99 / max.

Goal: >= 20,000 messages/s, by one process or several. The broker, Kafka, the bridges and
the publishers share the machine.

    make bench-ingest        (needs scripts/services running: make services)
    python -m bench.mqtt_bridge [--messages N] [--processes P]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from bench.report import print_table
from tracker.testing import ROOT, Stack, run_sync

USERS = 10
TRACKER = str(Path(sys.executable).with_name("tracker"))
GOAL = 20_000


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


class Bridge:
    """A ``tracker mqtt-bridge`` process; ``subscribed`` once it says the broker took its subscription."""

    def __init__(self, env: dict, client_id: str) -> None:
        self.proc = subprocess.Popen([TRACKER, "mqtt-bridge", "--client-id", client_id], env=env, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.subscribed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            if "subscribed" in line:
                self.subscribed.set()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(env: dict, group: str, processes: int) -> list[Bridge]:
    bridges = [Bridge({**env, "TRACKER_MQTT_SHARE_GROUP": group}, f"bench-{group}-{i}") for i in range(processes)]
    for bridge in bridges:
        if not bridge.subscribed.wait(120):
            sys.exit("bench: a bridge did not subscribe within 120 s")
    return bridges


def drain(stack: Stack, env: dict, clients: dict, processes: int, messages: int, base: int,
          rows: list, failures: list) -> None:
    """Sessions and subscriptions first, the messages queued while the bridges are away, then
    the bridges started and timed until the last message is in Kafka."""
    group = f"{stack.name}-{processes}p"
    for bridge in start(env, group, processes):
        bridge.stop()
    per_user = messages // USERS
    progress(f"publishing {per_user * USERS:,} messages for {processes} bridge session(s)")
    pending = [client.publish(f"owntracks/{name}/phone", location(base + i), qos=1)
               for i in range(per_user) for name, client in clients.items()]
    for info in pending:
        info.wait_for_publish(300)
    before = topic_size(stack)
    progress(f"starting {processes} bridge(s)")
    started = time.monotonic()
    bridges = [Bridge({**env, "TRACKER_MQTT_SHARE_GROUP": group}, f"bench-{group}-{i}") for i in range(processes)]
    try:
        while topic_size(stack) - before < per_user * USERS and time.monotonic() - started < 600:
            time.sleep(0.1)
        drained = time.monotonic() - started
        cpu = sum(bridge.cpu_seconds() for bridge in bridges)
    finally:
        for bridge in bridges:
            bridge.stop()
    total = topic_size(stack) - before
    label = "one process" if processes == 1 else f"{processes} processes sharing the subscription"
    rows.append((f"drain {per_user * USERS:,} queued messages, {label}", f"{total / drained:,.0f} msg/s",
                 f"{total:,} in gps.positions in {drained:.1f} s (start-up included); bridge CPU "
                 f"{1e6 * cpu / max(total, 1):.0f} µs a message; goal >= {GOAL:,}/s"))
    if total < per_user * USERS:
        failures.append(f"{label}: only {total:,} of {per_user * USERS:,} messages reached Kafka")


def latency(stack: Stack, env: dict, clients: dict, base: int, rows: list, failures: list) -> None:
    bridges = start(env, f"{stack.name}-latency", 1)
    try:
        progress("1,000 messages/s for 10 s")
        sent_at: dict[tuple[str, int], float] = {}
        for second in range(10):
            tick = time.time()
            for k in range(100):
                for name, client in clients.items():
                    tst = base + second * 100 + k
                    sent_at[(name, tst)] = time.time()
                    client.publish(f"owntracks/{name}/phone", location(tst), qos=1)
                time.sleep(max(0.0, tick + (k + 1) / 100 - time.time()))
        time.sleep(3)
    finally:
        for bridge in bridges:
            bridge.stop()
    latencies = []
    for record in run_sync(topic_records(stack)):
        fix = orjson.loads(record.value)
        key = (fix["marker_id"], int(datetime.fromisoformat(fix["time"].replace("Z", "+00:00")).timestamp()))
        if key in sent_at:
            latencies.append(record.timestamp / 1000 - sent_at[key])
    if not latencies:
        failures.append("no latency sample")
        return
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    rows.append(("publish -> record in Kafka, 1,000 msg/s, one process", f"p99 {p99 * 1000:.0f} ms",
                 f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
                 f"{len(latencies):,} messages"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2, help="bridges sharing the subscription in row 2")
    args = parser.parse_args()
    if not os.environ.get("TRACKER_MQTT_PASSWORD_FILE"):
        sys.exit('bench: Mosquitto is needed: eval "$(scripts/services env)"')
    rows, failures = [], []
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-")))
    env = {**stack.env, **{k: v for k, v in os.environ.items() if k.startswith("TRACKER_MQTT_")},
           "TRACKER_MQTT_SESSION_EXPIRY": "600"}
    users, clients = {}, {}
    try:
        for i in range(USERS):
            name = f"{stack.name[-6:]}-b{i}"
            added = subprocess.run([TRACKER, "devices", "add", name], env=env, capture_output=True, text=True)
            users[name] = added.stdout.rsplit(" ", 1)[1].strip()
        clients = {name: publisher(name, secret) for name, secret in users.items()}
        base = int(time.time()) - 10 * 86400
        per_run = args.messages // USERS
        drain(stack, env, clients, 1, args.messages, base, rows, failures)
        drain(stack, env, clients, args.processes, args.messages, base + per_run, rows, failures)
        latency(stack, env, clients, base + 2 * per_run + 1000, rows, failures)
    finally:
        for client in clients.values():
            client.disconnect()
        for name in users:
            subprocess.run([TRACKER, "devices", "remove", name], env=env, capture_output=True)
        stack.close()
    print_table(rows, failures)


if __name__ == "__main__":
    main()
