"""The pipeline benchmark on the local real services: one table, every figure from one run.

    make bench                                   (the figures of docs/benchmarks.md)
    python -m bench.pipeline -n 200000 --markers 2000 --latency-seconds 20 --outage-seconds 20

1. ceiling: a raw aiokafka consumer reading and decoding the N records of (2)
2. drain: N records from M markers already in the topic (1 % malformed, 5 % duplicates,
   5 % late), one worker started after the produce: time from its start to the last
   history row and to the last ``latest`` update, and the worker's CPU seconds then and once
   its journeys settled (the fixes are hours old: the idle timer ends every trip once its
   marker is silent, and the days late fixes made stale are recomputed)
3. the same with two workers: wall time and their summed CPU seconds
4. latency: a steady load with probe markers among it; produce until visible at
   ``/api/markers/{id}``
5. Postgres stopped during a steady load: staleness of ``latest`` meanwhile, the time
   history needs to catch up, rows lost and doubled
6. history reads: 100,000 points as JSON and as GeoJSON
7. events: the drain of (2) by one worker without the events stages (``TRACKER_EVENTS=off``)
   and by one with them and ``--geofences`` circles (500 m, at random in the stream's area):
   positions/s and CPU of both, the events' cost, and the events in Postgres
8. events at a webhook: a steady load with probe markers crossing a circle in and out; produce
   until the ``geofence_enter``/``geofence_exit`` it causes arrives at a local receiver
9. journeys: the drain of (2) by one worker without the journeys stage (``TRACKER_JOURNEYS=off``)
   and by one with it, the events stages off in both: positions/s and CPU, the journeys'
   cost, the trips and stops in Postgres
10. ``tracker journeys rebuild`` of ``--rebuild-positions`` stored positions (``bench/journeys.py``)
11. ``/summary?by=day`` over a year of one marker at a fix every 10 s (``bench/journeys.py``)
12. ``tracker import`` of a 100,000-point GPX file, end to end into history (``bench/import_track.py``)
13. low loads: a steady ``--low-rates`` positions/s each (10,000 markers, 40 s): the worker's
    CPU and the commits Postgres makes per second, from 10 s in

Every run checks its result: all distinct valid rows in Postgres exactly once, and every
marker's ``latest`` right; with events, every event of the events topic in Postgres once
(and some), and every probe event at the webhook exactly once; the benchmark exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from agents.journeys import IDLE_CHECK_SECONDS, IDLE_GRACE_SECONDS
from agents.journeys_sink import RECOMPUTE_SECONDS
from tracker.events import stored as events_state
from tracker.stream.producer import positions_producer
from bench import import_track
from bench import journeys as journeys_bench
from bench.report import print_table
from tracker.testing import ROOT, Stack, Worker, run_sync, wait_for

SERVICES = str(ROOT / "scripts" / "services")
HISTORY_POINTS = 100_000
MALFORMED = (b"not json", b'{"marker_id": "x", "lat": 91, "lon": 1, "time": 1700000000}', b"[1, 2]",
             b'{"marker_id": "bad id!", "lat": 1, "lon": 1, "time": 1700000000}')
FAILURES: list[str] = []


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the stream -------------------------------------------------------------------------
@dataclass
class Stream:
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    rows: set[tuple[str, int]] = field(default_factory=set)  # distinct valid (marker, time_ms)
    newest: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # marker -> (time_ms, lat, lon)

    def add(self, marker: str, time_ms: int, lat: float, lon: float, **extra) -> bytes:
        value = orjson.dumps({"marker_id": marker, "lat": lat, "lon": lon, "time": time_ms, **extra})
        self.records.append((marker.encode(), value))
        self.rows.add((marker, time_ms))
        if time_ms > self.newest.get(marker, (-1,))[0]:
            self.newest[marker] = (time_ms, lat, lon)
        return value


def drain_stream(n: int, markers: int, seed: int = 1, prefix: str = "d") -> Stream:
    """``n`` records: in-order fixes, with 1 % malformed, 5 % exact duplicates and 5 % late fixes.

    Each marker drives at 12 m/s, turning a little at every fix, and stands still one
    minute in three, so the motion model sees real motion (a uniform random position per
    fix would be a spike at every fix)."""
    rng = random.Random(seed)
    stream = Stream()
    base = int(time.time() * 1000) - 6 * 3_600_000
    ticks = [0] * markers
    where = [[45 + rng.uniform(-1, 1), 14 + rng.uniform(-1, 1), rng.uniform(0, 2 * math.pi)] for _ in range(markers)]
    sent: list[tuple[bytes, bytes]] = []
    for i in range(n):
        m = i % markers
        marker = f"{prefix}{m:05d}"
        draw = rng.random()
        if draw < 0.01:
            stream.records.append((marker.encode(), rng.choice(MALFORMED)))
        elif draw < 0.06 and sent:
            stream.records.append(sent[rng.randrange(max(0, len(sent) - 50_000), len(sent))])
        elif draw < 0.11 and ticks[m] > 1:
            late = base + rng.randrange(ticks[m] - 1) * 1000 + 500 + m % 500
            stream.add(marker, late, round(where[m][0], 6), round(where[m][1], 6), source="late")
        else:
            ticks[m] += 1
            point = where[m]
            speed = 0.0 if (ticks[m] // 60) % 3 == 2 else 12.0
            point[2] += rng.uniform(-0.2, 0.2)
            point[0] += speed * math.cos(point[2]) / 111_195
            point[1] += speed * math.sin(point[2]) / (111_195 * math.cos(math.radians(point[0])))
            stream.add(marker, base + ticks[m] * 1000 + m % 500, round(point[0], 6), round(point[1], 6),
                       speed=speed, heading=90.0, battery=80.0)
            sent.append(stream.records[-1])
    return stream


def fresh_stack() -> Stack:
    return Stack.create(Path(tempfile.mkdtemp(prefix="bench-")))


# --- 1. ceiling -----------------------------------------------------------------------------
async def _consume_all(stack: Stack, n: int) -> float:
    consumer = AIOKafkaConsumer(stack.settings.topic, bootstrap_servers=stack.settings.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        started = time.perf_counter()
        seen = 0
        while seen < n:
            for messages in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for message in messages:
                    try:
                        orjson.loads(message.value)
                    except orjson.JSONDecodeError:
                        pass
                seen += len(messages)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# --- 2, 3. drain ----------------------------------------------------------------------------
@dataclass
class Drain:
    workers: int
    history_seconds: float
    latest_seconds: float
    cpu_seconds: list[float]
    events_seconds: float | None = None  # the events agent done (None: TRACKER_EVENTS=off)
    events_sink_seconds: float | None = None  # ... and the events sink
    events: int = 0  # rows in Postgres ``events``
    journeys_sink_seconds: float | None = None  # the journeys sink and the recompute of late days done
    journeys: tuple[int, int, int] = (0, 0, 0)  # trips, stops and days recomputed
    settled_seconds: float | None = None  # the journeys settled: trips ended by the idle timer, days recomputed
    settled_cpu_seconds: list[float] | None = None  # ... and the workers' CPU then

    @property
    def seconds(self) -> float:
        return max(self.history_seconds, self.latest_seconds, self.events_seconds or 0.0)


def events_state_topic(stack: Stack) -> str:
    return f"{stack.name}-events-state-changelog"


async def _watch(stack: Stack, newest: dict[str, tuple[int, float, float]], timeout: float,
                 events: bool = False) -> tuple[float, float, float | None]:
    """Wall-clock times at which history, ``latest`` and (with ``events``) the events agent
    were complete.

    ``latest``: the Kafka timestamp of the changelog record that made every marker's newest
    fix the expected one; the events agent: the same in its ``events-state`` changelog (a
    marker's state is written after its events are on the events topic). History: the
    moment the intake and the history sink had both committed everything (each commits
    right after its work is durable)."""
    config = stack.settings
    changelog = AIOKafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest")
    await changelog.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
    await admin.start()
    topics = (stack.changelog_topic, events_state_topic(stack)) if events else (stack.changelog_topic,)
    changelog.assign([TopicPartition(topic, p) for topic in topics for p in range(config.topic_partitions)])
    want = {marker.encode(): time_ms for marker, (time_ms, _, _) in newest.items()}
    reached: dict[str, set[bytes]] = {topic: set() for topic in topics}
    done: dict[str, float] = {}
    history_done = None
    deadline = time.monotonic() + timeout
    last_check = 0.0
    try:
        while (len(done) < len(topics) or history_done is None) and time.monotonic() < deadline:
            for tp, records in (await changelog.getmany(timeout_ms=50)).items():
                seen = reached[tp.topic]
                for record in records:
                    if record.key not in want:
                        continue
                    time_us = (orjson.loads(record.value)[1] if tp.topic == stack.changelog_topic
                               else events_state.decode(record.value).time_us)
                    if time_us // 1000 == want[record.key]:
                        seen.add(record.key)
                        if tp.topic not in done and len(seen) == len(want):
                            done[tp.topic] = record.timestamp / 1000
            if history_done is None and time.monotonic() - last_check > 0.1:
                last_check = time.monotonic()
                if await _caught_up(admin, changelog, stack):
                    history_done = time.time()
    finally:
        await changelog.stop()
        await admin.close()
    if len(done) < len(topics) or history_done is None:
        raise AssertionError(f"not complete after {timeout:.0f} s: "
                             + ", ".join(f"{topic} {len(reached[topic])} of {len(want)} markers" for topic in topics)
                             + f", history {'done' if history_done else 'not done'}")
    return history_done, done[stack.changelog_topic], done.get(events_state_topic(stack))


async def _caught_up(admin, consumer, stack: Stack) -> bool:
    """The intake has committed all of the input, and the history sink all it framed."""
    config = stack.settings
    for group, topic in ((f"{stack.name}-intake", config.topic), (f"{stack.name}-history", config.batches_topic)):
        partitions = [TopicPartition(topic, p) for p in range(config.topic_partitions)]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        if any(end > max(0, committed[tp].offset if tp in committed else 0) for tp, end in ends.items()):
            return False
    return True


def _history_complete(stack: Stack) -> bool:
    """Everything read by the intake, and everything it framed written by the history sink."""
    return stack.caught_up("-intake", stack.settings.topic) and stack.caught_up("-history", stack.settings.batches_topic)


def drain(stream: Stream, workers: int, topic: str, env: dict[str, str] | None = None,
          geofences: list[dict] | None = None, profile: str | None = None) -> Drain:
    """A fresh app (its own groups, tables and database) drains ``topic``, which holds ``stream``;
    its workers with ``env``, and ``geofences`` (GeoJSON Features) stored before they start.

    With the events stages on, the drain ends when the events agent is done too, and the
    CPU is taken once the events sink has written every event to Postgres. With ``profile``
    (a path), py-spy samples the first worker until the drain is done and writes its
    collapsed stacks there."""
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-")), topic=topic)
    env = env or {}
    events = env.get("TRACKER_EVENTS", "on") == "on"
    journeys = env.get("TRACKER_JOURNEYS", "on") == "on"
    try:
        if geofences:
            stack.add_geofences(geofences)
        say(f"draining {len(stream.records):,} records with {workers} worker(s)"
            + (f", {len(geofences):,} geofences" if geofences else "") + ("" if events else ", TRACKER_EVENTS=off")
            + ("" if journeys else ", TRACKER_JOURNEYS=off"))
        started = time.time()
        running = [stack.worker(**env).start() for _ in range(workers)]
        spy = (subprocess.Popen(["py-spy", "record", "--pid", str(running[0].proc.pid), "--format", "raw",
                                 "--rate", "250", "--output", profile, "--nonblocking"],
                                stdout=subprocess.DEVNULL) if profile else None)
        history_done, latest_done, events_done = run_sync(_watch(stack, stream.newest, 900, events))
        result = Drain(workers, history_done - started, latest_done - started, [],
                       None if events_done is None else events_done - started)
        if events:
            events_topic = stack.settings.events_topic
            wait_for(lambda: stack.caught_up("-events", events_topic), 600, "the events sink to catch up", interval=0.2)
            result.events_sink_seconds = time.time() - started
        if journeys:
            journeys_topic = stack.settings.journeys_topic
            wait_for(lambda: stack.caught_up("-journeys", journeys_topic)
                     and not stack.query("SELECT 1 FROM journeys_dirty LIMIT 1"), 600,
                     "the journeys sink and the recompute of late days", interval=0.2)
            result.journeys_sink_seconds = time.time() - started
        result.cpu_seconds = [worker.cpu_seconds() for worker in running]
        if journeys:
            _settle(stack)
            result.settled_seconds = time.time() - started
            result.settled_cpu_seconds = [worker.cpu_seconds() for worker in running]
        if spy:
            spy.send_signal(2)  # py-spy writes what it sampled on SIGINT
            spy.wait(60)
            print_profile(profile)
        _check(stack, running[0], stream)
        if events:
            result.events = _check_events(stack, some=bool(geofences))
        if journeys:
            result.journeys = (stack.query("SELECT count(*) FROM trips")[0][0],
                               stack.query("SELECT count(*) FROM stops")[0][0], 0)
        return result
    finally:
        stack.close()


#: The journeys of a drain have settled once nothing changed for this long: the idle timer's
#: period and grace (the drained fixes are hours old: every trip ends once its marker is
#: silent), the recompute timer's period, and a margin.
SETTLE_SECONDS = IDLE_CHECK_SECONDS + IDLE_GRACE_SECONDS + RECOMPUTE_SECONDS + 2.0


def _settle(stack: Stack) -> None:
    """Wait until the trips the idle timer ends, and the recompute of the days their late
    fixes made stale, are done: work the drained positions cause after the drain."""
    topic = stack.settings.journeys_topic
    last, since, deadline = None, time.monotonic(), time.monotonic() + 600
    while time.monotonic() < deadline:
        busy = not stack.caught_up("-journeys", topic) or stack.query("SELECT 1 FROM journeys_dirty LIMIT 1")
        now = (stack.query("SELECT count(*) FROM trips")[0][0], bool(busy))
        if now != last or busy:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_SECONDS:
            return
        time.sleep(0.5)
    raise TimeoutError("the journeys did not settle in 600 s")


def print_profile(path: str, top: int = 25) -> None:
    """The functions the worker spent its samples in (self time), from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a frame's name with a line break in it
            continue
        frame = stack.rsplit(";", 1)[-1]
        own[frame] = own.get(frame, 0) + int(count)
        total += int(count)
    say(f"profile: {total:,} samples in {path}; self time of the top {top} functions:")
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        say(f"  {count / total:6.1%}  {frame}")


def _check(stack: Stack, worker, stream: Stream) -> None:
    rows = stack.query("SELECT count(*), count(DISTINCT (marker_id, fix_time)) FROM positions")[0]
    if rows != (len(stream.rows), len(stream.rows)):
        FAILURES.append(f"{stack.name}: {rows[0]:,} rows ({rows[1]:,} distinct), expected {len(stream.rows):,}")
    status, body = worker.get("/api/markers", timeout=120)
    latest = {p["marker_id"]: (p["lat"], p["lon"]) for p in body} if status == 200 else {}
    wrong = sum(1 for marker, (_, lat, lon) in stream.newest.items() if latest.get(marker) != (lat, lon))
    if wrong:
        FAILURES.append(f"{stack.name}: latest wrong for {wrong} of {len(stream.newest)} markers")


def _check_events(stack: Stack, some: bool) -> int:
    """Every event on the events topic is in Postgres once (and, with ``some``, there are
    some); how many."""
    ends = stack.end_offsets(stack.settings.events_topic)
    on_topic = {event["id"] for event in stack.read_topic(stack.settings.events_topic, sum(ends.values()), 120)}
    rows = stack.query("SELECT count(*) FROM events")[0][0]  # unique on the event id
    if rows != len(on_topic) or (some and not rows):
        FAILURES.append(f"{stack.name}: {rows:,} events in Postgres, {len(on_topic):,} distinct on "
                        f"{stack.settings.events_topic}; expected as many" + (", and some" if some else ""))
    return rows


def random_circles(count: int, radius: float = 500.0, seed: int = 7) -> list[dict]:
    """``count`` circles at random in the drain stream's area (lat 45 ± 1, lon 14 ± 1)."""
    rng = random.Random(seed)
    return [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(14 + rng.uniform(-1, 1), 6),
                                                                                round(45 + rng.uniform(-1, 1), 6)]},
             "properties": {"name": f"bench-{i:04d}", "radius": radius}} for i in range(count)]


# --- 4, 5. latency under a steady load -----------------------------------------------------
class Probes:
    """Probe markers among a steady load: the time from produce to visible at
    ``/api/markers/{id}``, measured by one poller on one keep-alive connection. Every probe
    counts: one that a newer fix of its marker overtook before the poller saw it is taken
    as visible when the newer one is (an upper bound: ``latest`` only moves forward)."""

    def __init__(self, worker: Worker) -> None:
        self.port = worker.web_port
        self.headers = {"Authorization": f"Bearer {worker.stack.admin_token}"}
        self.pending: dict[str, list[tuple[int, float]]] = {}  # probe -> [(time_ms, sent at)], oldest first
        self.samples: list[tuple[float, float]] = []  # (sent at, ms)
        self.sent = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def sent_probe(self, probe: str, time_ms: int) -> None:
        with self.lock:
            self.pending.setdefault(probe, []).append((time_ms, time.monotonic()))
            self.sent += 1

    def stop(self) -> None:
        time.sleep(3)
        self.done.set()
        self.thread.join(10)

    def between(self, start: float, end: float) -> list[float]:
        return sorted(ms for sent_at, ms in self.samples if start <= sent_at < end)

    def _poll(self) -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.done.is_set():
            with self.lock:
                waiting = [probe for probe, sent in self.pending.items() if sent]
            if not waiting:
                time.sleep(0.002)
                continue
            for probe in waiting:
                try:
                    conn.request("GET", f"/api/markers/{probe}", headers=self.headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    continue
                if response.status != 200:
                    continue
                shown_ms = round(datetime.fromisoformat(orjson.loads(body)["time"]).timestamp() * 1000)
                seen_at = time.monotonic()
                with self.lock:
                    sent = self.pending[probe]
                    while sent and sent[0][0] <= shown_ms:
                        _, sent_at = sent.pop(0)
                        self.samples.append((sent_at, (seen_at - sent_at) * 1000))


async def steady_load(stack: Stack, rate: float, seconds: float, probes: Probes | None,
                      stream: Stream, markers: int = 10_000, on_tick=None,
                      probe_at=lambda tick: (1.0, 1.0)) -> None:
    """``rate`` positions/s for ``seconds``, 20 ticks a second, one probe fix per tick (at
    ``probe_at(tick)``, (lat, lon)); ``probes``: anything with a ``sent_probe(probe, time_ms)``."""
    producer = positions_producer(stack.settings)
    await producer.start()
    per_tick = int(rate / 20)
    base = int(time.time() * 1000) - 3_600_000
    pending = []
    try:
        for tick in range(int(seconds * 20)):
            tick_started = time.monotonic()
            for j in range(per_tick):
                i = tick * per_tick + j
                marker = f"s{i % markers:05d}"
                value = stream.add(marker, base + i, round(45 + (i % 997) / 1e4, 6), 14.0, speed=3.0)
                pending.append(await producer.send(stack.settings.topic, key=marker.encode(), value=value))
                if i % 10 == 0:  # every tenth record is sent twice
                    pending.append(await producer.send(stack.settings.topic, key=marker.encode(), value=value))
            if probes is not None:
                probe = f"probe-{tick % 20}"
                time_ms = int(time.time() * 1000)
                value = stream.add(probe, time_ms, *probe_at(tick))
                pending.append(await producer.send(stack.settings.topic, key=probe.encode(), value=value))
                probes.sent_probe(probe, time_ms)
            if on_tick is not None:
                on_tick(tick / 20)
            if len(pending) > 20_000:
                await asyncio.gather(*pending)
                pending.clear()
            await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick_started)))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


#: Seconds of the steady load before the worker's CPU is counted (its start, the first fills).
STEADY_AFTER_SECONDS = 10.0


def latency(rate: float, seconds: float) -> tuple[list[float], int, float | None]:
    """The probes' latencies, the number sent, and the worker's CPU seconds per second of
    the load after ``STEADY_AFTER_SECONDS`` (None for a shorter load)."""
    stack = fresh_stack()
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        probes = Probes(worker)
        stream = Stream()
        steady: list[tuple[float, float]] = []

        def on_tick(at: float) -> None:
            if not steady and at >= STEADY_AFTER_SECONDS:
                steady.append((time.monotonic(), worker.cpu_seconds()))

        run_sync(steady_load(stack, rate, seconds, probes, stream, on_tick=on_tick))
        cores = None
        if steady:
            (started, cpu), now = steady[0], time.monotonic()
            cores = (worker.cpu_seconds() - cpu) / (now - started)
        probes.stop()
        return sorted(ms for _, ms in probes.samples), probes.sent, cores
    finally:
        stack.close()


def low_load(rate: float, seconds: float = 40.0) -> tuple[float, float]:
    """The worker's CPU (cores) and the database's commits per second under a steady
    ``rate``, from ``STEADY_AFTER_SECONDS`` to the end."""
    import psycopg

    stack = fresh_stack()
    try:
        worker = stack.worker().start()
        worker.wait_ready()

        def commits() -> int:
            with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_clear_snapshot()")
                return conn.execute("SELECT xact_commit FROM pg_stat_database "
                                    "WHERE datname = current_database()").fetchone()[0]

        steady: list[tuple[float, float, int]] = []

        def on_tick(at: float) -> None:
            if not steady and at >= STEADY_AFTER_SECONDS:
                steady.append((time.monotonic(), worker.cpu_seconds(), commits()))

        run_sync(steady_load(stack, rate, seconds, None, Stream(), on_tick=on_tick))
        started, cpu, committed = steady[0]
        elapsed = time.monotonic() - started
        # less the two commits of the reads themselves
        return (worker.cpu_seconds() - cpu) / elapsed, (commits() - committed - 2) / elapsed
    finally:
        stack.close()


def measure_low_loads(args) -> list[tuple[str, str, str]]:
    rows = []
    for rate in args.low_rates:
        say(f"a steady {rate:,.0f} positions/s for 40 s")
        cores, commits = low_load(rate)
        rows.append((f"13. the worker's CPU at a steady {rate:,.0f} positions/s", f"{cores:.2f} cores",
                     f"Postgres {commits:.1f} commits/s; from {STEADY_AFTER_SECONDS:.0f} s to the end of 40 s"))
    return rows


# --- 8. produce to webhook ------------------------------------------------------------------
#: The probes' circle, far from the drain stream's area; inside and outside it.
PROBE_CIRCLE = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.0, 1.0]},
                "properties": {"name": "bench-probe-circle", "radius": 500}}
PROBE_INSIDE, PROBE_OUTSIDE = (1.0, 1.0), (1.0, 1.01)  # (lat, lon); 1.1 km apart


def probe_crossing(tick: int) -> tuple[float, float]:
    """``steady_load`` sends probe ``tick % 20`` at each tick: each probe alternates inside
    and outside the circle, so its every fix enters or leaves it (the first one enters)."""
    return PROBE_INSIDE if tick // 20 % 2 == 0 else PROBE_OUTSIDE


class WebhookProbes:
    """A webhook receiver in this process (aiohttp on a thread of its own, answering 200), and
    the probe fixes sent: the time from a fix's produce to its event's arrival."""

    def __init__(self) -> None:
        self.sent: dict[tuple[str, int], float] = {}  # (marker, fix time ms) -> sent at (monotonic)
        self.arrivals: list[tuple[float, dict]] = []  # (arrived at, event)
        self.lock = threading.Lock()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the webhook receiver did not start")

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        from tracker.testing import serve_http

        async def handle(request):
            body = await request.read()
            arrived = time.monotonic()
            with self.lock:
                self.arrivals.append((arrived, orjson.loads(body)))
            return web.Response(text="ok")

        async def setup() -> None:
            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            self.runner, self.url = await serve_http(app)

        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(setup())
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def sent_probe(self, probe: str, time_ms: int) -> None:
        with self.lock:
            self.sent[(probe, time_ms)] = time.monotonic()

    def received(self) -> dict[tuple[str, int], list[float]]:
        """(marker, fix time ms) -> the arrival times of its events."""
        found: dict[tuple[str, int], list[float]] = {}
        with self.lock:
            arrivals = list(self.arrivals)
        for arrived, event in arrivals:
            time_ms = round(datetime.fromisoformat(event["time"]).timestamp() * 1000)
            found.setdefault((event["marker_id"], time_ms), []).append(arrived)
        return found


def add_webhook(stack: Stack, url: str, types: list[str]) -> None:
    import psycopg

    from tracker.webhooks import store as webhook_store
    from tracker.storage.schema import create_schema
    from tracker.webhooks.model import parse_webhook

    async def add() -> None:
        async with await psycopg.AsyncConnection.connect(stack.settings.database_url, autocommit=True) as conn:
            await create_schema(conn)
            await webhook_store.add(conn, parse_webhook({"url": url, "types": types},
                                                        stack.settings.webhook_allow_private), None)

    run_sync(add())


@dataclass
class Webhook:
    lags: list[float]  # ms, sorted
    probes_sent: int
    missing: int
    doubled: int
    others: int  # events of other markers delivered meanwhile


def webhook(rate: float, seconds: float, geofences: int) -> Webhook:
    """A steady load on one worker with ``geofences`` random circles and the probes' circle,
    and a webhook for geofence crossings: produce to arrival of each probe's event."""
    stack = fresh_stack()
    receiver = WebhookProbes()
    try:
        stack.add_geofences(random_circles(geofences) + [PROBE_CIRCLE])
        add_webhook(stack, f"{receiver.url}/bench", ["geofence_enter", "geofence_exit"])
        worker = stack.worker().start()
        worker.wait_ready()
        # The notifier joins its group beside the others: once a first event has come
        # through, what follows measures delivery, not the join.
        stack.send([(b"warm-0", orjson.dumps({"marker_id": "warm-0", "time": int(time.time() * 1000),
                                              "lat": PROBE_INSIDE[0], "lon": PROBE_INSIDE[1]}))])
        wait_for(lambda: any(m == "warm-0" for m, _ in receiver.received()), 120, "the warm-up event at the webhook")
        run_sync(steady_load(stack, rate, seconds, receiver, Stream(), probe_at=probe_crossing))
        sent = dict(receiver.sent)
        try:
            wait_for(lambda: sent.keys() <= receiver.received().keys(), 60, "every probe event at the webhook")
        except AssertionError as error:
            say(str(error))
        time.sleep(2)  # a second delivery, if any, would arrive now
        received = receiver.received()
        lags = sorted((received[key][0] - sent_at) * 1000 for key, sent_at in sent.items() if key in received)
        return Webhook(lags, len(sent), sum(1 for key in sent if key not in received),
                       sum(1 for key in sent if len(received.get(key, ())) > 1),
                       sum(len(times) for key, times in received.items() if key not in sent and key[0] != "warm-0"))
    finally:
        stack.close()
        receiver.stop()


@dataclass
class Outage:
    staleness: list[float]
    probes_sent: int
    catch_up_seconds: float
    lost: int
    duplicated: int


def outage(rate: float, seconds: float, before: float = 15.0, after: float = 15.0) -> Outage:
    """Postgres stopped for ``seconds`` in the middle of a steady load. Catch-up: from Postgres
    starting again until the history holds everything framed before that moment."""
    stack = fresh_stack()
    stream = Stream()
    window: dict[str, float] = {}

    def caught_up(backlog: dict[int, int]) -> None:
        wait_for(lambda: stack.caught_up("-history", stack.settings.batches_topic, backlog), 600,
                 "history to catch up", interval=0.1)
        window["caught_up"] = time.monotonic()

    def on_tick(elapsed: float) -> None:
        if "stopped" not in window and elapsed >= before:
            subprocess.run([SERVICES, "stop-postgres"], check=True, capture_output=True)
            window["stopped"] = time.monotonic()
            say(f"Postgres stopped for {seconds:.0f} s")
        elif "started" not in window and elapsed >= before + seconds:
            subprocess.run([SERVICES, "start-postgres"], check=True, capture_output=True)
            window["started"] = time.monotonic()
            backlog = stack.end_offsets(stack.settings.batches_topic)
            threading.Thread(target=caught_up, args=(backlog,), daemon=True).start()
            say("Postgres started again")

    try:
        worker = stack.worker().start()
        worker.wait_ready()
        probes = Probes(worker)
        run_sync(steady_load(stack, rate, before + seconds + after, probes, stream, on_tick=on_tick))
        probes.stop()
        wait_for(lambda: _history_complete(stack), 600, "the history to hold the whole stream", interval=0.2)
        wait_for(lambda: "caught_up" in window, 600, "the catch-up to be timed")
        present = {(m, t) for m, t in stack.query(
            "SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions")}
        total = stack.query("SELECT count(*) FROM positions")[0][0]
        staleness = probes.between(window["stopped"], window["started"])
        return Outage(staleness, probes.sent, window["caught_up"] - window["started"],
                      len(stream.rows - present), total - len(present))
    finally:
        subprocess.run([SERVICES, "start-postgres"], capture_output=True)
        stack.close()


# --- 6. history reads -----------------------------------------------------------------------
def history_reads(runs: int = 3) -> dict[str, tuple[float, int]]:
    from tracker.positions.store import copy_fixes

    stack = fresh_stack()
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        start_us = (int(time.time()) - 20 * 3600) * 1_000_000

        async def fill() -> None:
            import psycopg

            async with await psycopg.AsyncConnection.connect(stack.settings.database_url, autocommit=True) as conn:
                for first in range(0, HISTORY_POINTS, 20_000):
                    await copy_fixes(conn, [
                        ["bench-history", start_us + i * 500_000, 45 + i * 1e-6, 14 + i * 1e-6, 12.0, 90.0, None,
                         None, 70.0, None, None, start_us + i * 500_000]
                        for i in range(first, min(first + 20_000, HISTORY_POINTS))])

        run_sync(fill())
        results = {}
        for fmt in ("json", "geojson"):
            url = f"{worker.url}/api/markers/bench-history/history?from=2000-01-01T00:00:00Z&limit={HISTORY_POINTS}&format={fmt}"
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {worker.stack.admin_token}"})
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as response:
                    size = len(response.read())
                timings.append(time.perf_counter() - started)
            results[fmt] = (statistics.median(timings), size)
        return results
    finally:
        stack.close()


# --- the table ---------------------------------------------------------------------------------
def _median_run(drains: list[Drain]) -> Drain:
    return sorted(drains, key=lambda d: d.seconds)[len(drains) // 2]



def pct(samples: list[float], p: float) -> float:
    return samples[min(len(samples) - 1, int(p / 100 * len(samples)))] if samples else float("nan")


def _drain_rows(name: str, n: int, drain: Drain, cpu: float, runs: str) -> list[tuple[str, str, str]]:
    events = f", events {drain.events_seconds:.1f} s" if drain.events_seconds is not None else ""
    return [(name, f"{n / drain.seconds:,.0f} positions/s",
             f"history {drain.history_seconds:.1f} s, latest {drain.latest_seconds:.1f} s{events}; {runs}"),
            ("   the worker's CPU", f"{n / cpu:,.0f} positions/CPU-s", f"{cpu:.1f} s; {runs}" + _settled(n, drain))]


def _settled(n: int, drain: Drain) -> str:
    """The CPU until the drain's journeys settled (``_settle``), for one worker."""
    if drain.settled_cpu_seconds is None or drain.workers != 1:
        return ""
    cpu = drain.settled_cpu_seconds[0]
    return (f"; {n / cpu:,.0f} positions/CPU-s ({cpu:.1f} s) once its journeys settled "
            f"(trips ended by the idle timer, late fixes' days recomputed) {drain.settled_seconds:.0f} s after the start")


def measure_drains(args, only: set[int]) -> dict[int, list[tuple[str, str, str]]]:
    say(f"generating {args.n:,} records from {args.markers:,} markers")
    stream = drain_stream(args.n, args.markers)
    source = fresh_stack()
    say(f"producing {len(stream.records):,} records")
    source.send(stream.records)
    n = len(stream.records)
    results: dict[int, list[tuple[str, str, str]]] = {}
    ceiling = None
    if 1 in only:
        ceiling = run_sync(_consume_all(source, n))
        results[1] = [("1. ceiling: raw aiokafka consume + decode", f"{ceiling:,.0f} positions/s", "")]
    drains = {workers: [drain(stream, workers, source.settings.topic,
                              profile=args.profile if workers == 1 and run == 0 else None)
                        for run in range(args.runs)]
              for workers in (1, 2) if workers + 1 in only}
    runs = f"median of {args.runs}" if args.runs > 1 else "one run"
    one_cpu = None
    if 1 in drains:
        one = _median_run(drains[1])
        one_cpu = statistics.median(d.cpu_seconds[0] for d in drains[1])
        results[2] = [
            (f"2. drain {n:,} records ({args.markers:,} markers), one worker", f"{n / one.seconds:,.0f} positions/s",
             f"history {one.history_seconds:.1f} s, latest {one.latest_seconds:.1f} s"
             + (f", events {one.events_seconds:.1f} s" if one.events_seconds is not None else "")
             + (f"; {n / one.seconds / ceiling:.2f} of (1)" if ceiling else "") + f"; {runs}"),
            ("   the worker's CPU", f"{n / one_cpu:,.0f} positions/CPU-s", f"{one_cpu:.1f} s; {runs}"
             + _settled(n, one)),
        ]
    if 2 in drains:
        two = _median_run(drains[2])
        two_cpu = statistics.median(sum(d.cpu_seconds) for d in drains[2])
        ratio = f", {two_cpu / one_cpu:.2f}x (2)" if one_cpu else ""
        results[3] = [("3. the same, two workers", f"{n / two.seconds:,.0f} positions/s",
                       f"wall {two.seconds:.1f} s; CPU of both {two_cpu:.1f} s{ratio}; {runs}")]
    if 7 in only:
        results[7] = measure_events_drain(args, stream, source.settings.topic, runs)
    if 9 in only:
        results[9] = measure_journeys_drain(args, stream, source.settings.topic, runs)
    return results


def measure_journeys_drain(args, stream: Stream, topic: str, runs: str) -> list[tuple[str, str, str]]:
    """(9): the drain of (2) without the journeys stage, then with it (the events stages off
    in both, to see the journeys' cost alone)."""
    n = len(stream.records)
    off = [drain(stream, 1, topic, env={"TRACKER_EVENTS": "off", "TRACKER_JOURNEYS": "off"}) for _ in range(args.runs)]
    on = [drain(stream, 1, topic, env={"TRACKER_EVENTS": "off"}) for _ in range(args.runs)]
    off_run, on_run = _median_run(off), _median_run(on)
    off_cpu = statistics.median(d.cpu_seconds[0] for d in off)
    on_cpu = statistics.median(d.cpu_seconds[0] for d in on)
    cost = 1 - off_run.seconds / on_run.seconds
    rows = _drain_rows(f"9. journeys: drain {n:,} records, one worker, TRACKER_JOURNEYS=off", n, off_run, off_cpu,
                       runs)
    rows += _drain_rows("   journeys on", n, on_run, on_cpu, runs)
    rows[-2] = (rows[-2][0], rows[-2][1], rows[-2][2] + f"; cost {cost:.0%} of the throughput (goal < 20 %)")
    rows[-1] = (rows[-1][0], rows[-1][1], rows[-1][2] + f"; {on_cpu / off_cpu - 1:+.0%} CPU per position")
    trips, stops, _ = on_run.journeys
    rows.append(("   trips and stops in Postgres", f"{trips:,} / {stops:,}",
                 f"the journeys sink and the recompute of late fixes' days done {on_run.journeys_sink_seconds:.1f} s "
                 "after the start"))
    return rows


def measure_events_drain(args, stream: Stream, topic: str, runs: str) -> list[tuple[str, str, str]]:
    """(7): the drain of (2) without the events stages, then with them and the geofences."""
    n = len(stream.records)
    circles = random_circles(args.geofences)
    off = [drain(stream, 1, topic, env={"TRACKER_EVENTS": "off"}) for _ in range(args.runs)]
    on = [drain(stream, 1, topic, geofences=circles) for _ in range(args.runs)]
    off_run, on_run = _median_run(off), _median_run(on)
    off_cpu = statistics.median(d.cpu_seconds[0] for d in off)
    on_cpu = statistics.median(d.cpu_seconds[0] for d in on)
    cost = 1 - off_run.seconds / on_run.seconds  # the share of throughput the events stages take
    rows = _drain_rows(f"7. events: drain {n:,} records, one worker, TRACKER_EVENTS=off", n, off_run, off_cpu, runs)
    rows += _drain_rows(f"   events on, {args.geofences:,} geofences (500 m circles)", n, on_run, on_cpu, runs)
    rows[-2] = (rows[-2][0], rows[-2][1], rows[-2][2] + f"; cost {cost:.0%} of the throughput (goal < 20 %)")
    rows[-1] = (rows[-1][0], rows[-1][1], rows[-1][2] + f"; {on_cpu / off_cpu - 1:+.0%} CPU per position")
    events = statistics.median(d.events for d in on)
    sink = statistics.median(d.events_sink_seconds for d in on)
    rows.append(("   events in Postgres", f"{events:,.0f}", f"the events sink done {sink:.1f} s after the start"))
    return rows


def measure_latency(args) -> list[tuple[str, str, str]]:
    say(f"latency at {args.latency_rate:,.0f} positions/s for {args.latency_seconds:.0f} s")
    samples, sent, cores = latency(args.latency_rate, args.latency_seconds)
    rows = [(f"4. latency at {args.latency_rate:,.0f}/s ({len(samples)} of {sent} probes seen)",
             f"p50 {pct(samples, 50):.0f} ms", f"p95 {pct(samples, 95):.0f} ms, p99 {pct(samples, 99):.0f} ms")]
    if cores:
        rows.append(("   the worker's CPU at that load", f"{args.latency_rate / cores:,.0f} positions/CPU-s",
                     f"{cores:.2f} cores from {STEADY_AFTER_SECONDS:.0f} s to the end; a tenth of the positions sent twice"))
    return rows


def measure_outage(args) -> list[tuple[str, str, str]]:
    say(f"Postgres outage of {args.outage_seconds:.0f} s at {args.outage_rate:,.0f} positions/s")
    result = outage(args.outage_rate, args.outage_seconds)
    if result.lost or result.duplicated:
        FAILURES.append(f"outage: {result.lost} lost, {result.duplicated} duplicated")
    return [(f"5. Postgres stopped {args.outage_seconds:.0f} s at {args.outage_rate:,.0f}/s: latest staleness",
             f"p99 {pct(result.staleness, 99):.0f} ms",
             f"p50 {pct(result.staleness, 50):.0f} ms over {len(result.staleness)} probes"),
            ("   history catch-up after Postgres returns", f"{result.catch_up_seconds:.1f} s",
             f"{result.lost} lost, {result.duplicated} duplicated")]


def measure_webhook(args) -> list[tuple[str, str, str]]:
    say(f"produce to webhook at {args.webhook_rate:,.0f} positions/s for {args.webhook_seconds:.0f} s, "
        f"{args.geofences:,} geofences")
    result = webhook(args.webhook_rate, args.webhook_seconds, args.geofences)
    if result.missing or result.doubled or not result.probes_sent:
        FAILURES.append(f"webhook: of {result.probes_sent} probe events {result.missing} missing, "
                        f"{result.doubled} arrived more than once")
    lags = result.lags
    return [(f"8. events: produce to webhook at {args.webhook_rate:,.0f}/s "
             f"({len(lags)} of {result.probes_sent} probe events)", f"p99 {pct(lags, 99):.0f} ms",
             f"p50 {pct(lags, 50):.0f} ms, p95 {pct(lags, 95):.0f} ms, max {lags[-1] if lags else float('nan'):.0f} ms "
             f"(goal p99 <= 500 ms); {result.doubled} doubled, {result.others:,} other events delivered")]


def measure_history() -> list[tuple[str, str, str]]:
    say(f"history reads of {HISTORY_POINTS:,} points")
    return [(f"6. history, {HISTORY_POINTS:,} points, {fmt}", f"{seconds * 1000:.0f} ms", f"{size / 1e6:.1f} MB, median of 3")
            for fmt, (seconds, size) in history_reads().items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="records of the drains (2, 3)")
    parser.add_argument("--markers", type=int, default=10_000)
    parser.add_argument("--latency-rate", type=float, default=10_000, help="positions/s of (4)")
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--outage-rate", type=float, default=5_000, help="positions/s of (5)")
    parser.add_argument("--outage-seconds", type=float, default=60, help="how long Postgres is stopped in (5)")
    parser.add_argument("--runs", type=int, default=3,
                        help="drains of (2), (3), (7) and (9) each; the medians are shown")
    parser.add_argument("--geofences", type=int, default=1000, help="random 500 m circles of (7) and (8)")
    parser.add_argument("--webhook-rate", type=float, default=1_000, help="positions/s of (8)")
    parser.add_argument("--webhook-seconds", type=float, default=30)
    parser.add_argument("--rebuild-positions", type=int, default=1_000_000, help="stored positions of (10)")
    parser.add_argument("--summary-days", type=int, default=365, help="days of one marker's history in (11)")
    parser.add_argument("--low-rates", type=float, nargs="*", default=[100, 2_000], help="positions/s of (13)")
    parser.add_argument("--only", type=int, nargs="*", help="measure only these rows (1 to 13)")
    parser.add_argument("--profile", metavar="PATH",
                        help="record the first one-worker drain of (2) with py-spy (on PATH) into PATH")
    args = parser.parse_args()
    only = set(args.only or range(1, 14))

    # The timing-sensitive measures first, on a machine not yet busy with the drains'
    # aftermath (compaction of their changelogs, Postgres's autovacuum of millions of rows).
    results: dict[int, list[tuple[str, str, str]]] = {}
    if 4 in only:
        results[4] = measure_latency(args)
    if 13 in only:
        results[13] = measure_low_loads(args)
    if 5 in only:
        results[5] = measure_outage(args)
    if 8 in only:
        results[8] = measure_webhook(args)
    if 6 in only:
        results[6] = measure_history()
    if only & {1, 2, 3, 7, 9}:
        results.update(measure_drains(args, only))
    if 10 in only:
        results[10] = journeys_bench.measure_rebuild(args.rebuild_positions)
    if 11 in only:
        results[11] = journeys_bench.measure_summary(args.summary_days)
    if 12 in only:
        try:
            results[12] = import_track.measure_import()
        except AssertionError as error:
            FAILURES.append(f"import: {error}")

    rows = [row for number in sorted(results) for row in results[number]]
    print_table(rows, FAILURES)


if __name__ == "__main__":
    main()
