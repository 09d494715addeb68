"""Soak: three workers under a steady stream, and a disturbance in each iteration.

Reads through every worker must never go back, and after each iteration nothing may be
lost or doubled and every worker must show every marker's newest fix.

    make soak                                    (200 iterations, 2,000 markers at 2,000 positions/s)
    make soak SOAK_ARGS="--iterations 10"
    make soak SOAK_ARGS="--brokers 3"            (on scripts/services' three-node cluster)
    make soak SOAK_ARGS="--set TRACKER_FETCH_WAIT_MS=100"   (a setting for every worker)
    make soak SOAK_ARGS="--only stop --iterations 6"       (one disturbance, again and again)

The disturbances, one per iteration, in turn:

- ``join``: a fourth worker joins, then stops (a static member: its partitions wait for the
  session timeout before they move back);
- ``kill``: ``kill -9`` of one of the three, restarted at once under the same id;
- ``stop``: ``SIGSTOP`` of one of the three for longer than the session timeout, then ``SIGCONT``;
- ``quiet``: no positions for the markers of three partitions for a while;
- ``broker`` (with ``--brokers 3``): ``kill -9`` of one broker, started again after a while.

Each position carries its marker's sequence number in the attribute ``seq``; its fix time is
the wall clock at sending, strictly increasing per marker. From the start of each
disturbance until ``--settle`` seconds after it, one reader per worker asks it for every
sampled marker in turn (``GET /api/markers/{id}``, the admin's token) and another asks for
the list (``GET /api/markers``), each at most once a second. Counted: *stale answers*, a
200 (or a 404) for a marker older than an answer any worker had already given for it
before the request was sent, and the same of a sampled marker's row in a list; 503s
(allowed); lists shorter than the markers reported so far that do not say
``"partial": true``. A disturbance is over when the workers are ready and have shared the
partitions the same way for 5 s: its recovery time.

Then the stream pauses, and counted: how long every consumer group takes to commit its
topic's end offsets (it should within ``--commit-within`` seconds); markers whose
``latest`` is not their newest fix on some worker; positions of the iteration missing from
Postgres or there twice (by sequence number). Throughout, a monitor counts partitions whose
committed offset stayed put for more than 10 s while behind. The workers' logs give the
records read again after Faust skipped them (``tracker.stream.continuity``) and the partitions
fetched again (``tracker.stream.partition_guard``); their ``/metrics`` give
``tracker_faust_dropped_total`` where it exists.

Exits 1 if any position was lost or doubled, a marker's ``latest`` was wrong, or a stale
answer was served. The test suite runs four iterations (tests/integration/test_soak.py).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.report import print_table, progress
from tracker.positions.intake import partition_of
from tracker.stream.producer import positions_producer
from tracker.testing import ROOT, Stack, Worker, committed_offsets, partition_owners, wait_for

SERVICES = str(ROOT / "scripts" / "services")
KINDS = ("join", "kill", "stop", "quiet")
BROKER_KINDS = KINDS + ("broker",)
#: A reader asks for every sampled marker (and for the list) at most once in this many seconds.
ROUND_SECONDS = 1.0
#: After a disturbance, the workers must share the partitions alike this long to count as recovered.
STABLE_SECONDS = 5.0
#: A partition whose committed offset stays put this long while behind counts as stalled.
STALL_SECONDS = 10.0
#: Log lines of the continuity guard and of the partition guards.
REREAD_LINE = re.compile(r"partition (\d+) skipped offsets (\d+) to (\d+); reading them again")
PARTITION_GUARD_LINE = re.compile(r"latest: partition \d+ stalled at offset")
RECOVERY_GUARD_LINE = re.compile(r"recovery: .* fetching it again")
DROPPED_METRIC = "tracker_faust_dropped_total"
RESTARTS_METRIC = "tracker_latest_partition_restarts_total"


say = functools.partial(progress, "soak")


@dataclass
class Plan:
    iterations: int = 200
    markers: int = 2_000
    rate: float = 2_000.0  # positions/s
    samples: int = 100  # markers read through every worker
    brokers: int = 1
    stop_seconds: float = 15.0  # SIGSTOP; longer than the session timeout (10 s)
    quiet_seconds: float = 30.0
    quiet_partitions: int = 3
    hold_seconds: float = 5.0  # the fourth worker stays this long once it owns partitions
    broker_down_seconds: float = 10.0
    settle_seconds: float = 10.0  # reads go on this long after a disturbance
    commit_within: float = 10.0
    recovery_timeout: float = 600.0  # waiting for workers to share the partitions again, then go on
    seed: int = 1
    #: (name, value) of settings for every worker (the stack passes none of this process's)
    settings: tuple[tuple[str, str], ...] = ()
    #: the disturbances to take in turn (empty: every one there is)
    only: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.only or (BROKER_KINDS if self.brokers > 1 else KINDS)


# --- what is counted ----------------------------------------------------------------------
class Tally:
    """measure -> disturbance kind -> count, shared by the readers and the monitor."""

    EXAMPLES = 10  # kept per measure and kind

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.examples: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.lock = threading.Lock()

    def add(self, measure: str, kind: str, n: int = 1, example: str | None = None) -> None:
        with self.lock:
            self.counts[measure][kind] += n
            kept = self.examples[(measure, kind)]
            if example is not None and len(kept) < self.EXAMPLES:
                kept.append(example)

    def total(self, measure: str) -> int:
        return sum(self.counts[measure].values())

    def by_kind(self, measure: str, kinds) -> str:
        return ", ".join(f"{kind} {self.counts[measure][kind]:,}" for kind in kinds)


class Served:
    """The newest sequence number any worker has answered for each marker."""

    def __init__(self) -> None:
        self.newest: dict[str, int] = {}
        self.lock = threading.Lock()

    def before(self, markers) -> dict[str, int]:
        with self.lock:
            return {marker: self.newest.get(marker, 0) for marker in markers}

    def serve(self, marker: str, seq: int) -> None:
        with self.lock:
            if seq > self.newest.get(marker, 0):
                self.newest[marker] = seq


@dataclass
class Stall:
    kind: str
    label: str
    stage: str
    partition: int
    seconds: float


@dataclass
class Report:
    plan: Plan
    iterations: int = 0
    kinds: Counter = field(default_factory=Counter)
    acked: int = 0
    failed_sends: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_latest: int = 0
    unverified: int = 0  # (iteration, worker) that answered no list after the iteration
    tally: Tally = field(default_factory=Tally)
    stalls: list[Stall] = field(default_factory=list)
    #: (iteration label, seconds from the pause until every group had committed the end)
    commits: list[tuple[str, float]] = field(default_factory=list)
    rereads: Counter = field(default_factory=Counter)  # kind -> log lines
    reread_offsets: int = 0
    guard_restarts: Counter = field(default_factory=Counter)  # kind -> log lines of both guards
    recovery_restarts: int = 0  # of which the recovery guard's (a changelog partition fetched again)
    recoveries: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    dropped: float | None = None
    partition_restarts: float = 0.0  # RESTARTS_METRIC, summed over the workers and their restarts
    events: list[str] = field(default_factory=list)
    excerpts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    aborted: str | None = None
    loads: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def stale(self) -> int:
        return self.tally.total("stale") + self.tally.total("stale list rows")

    @property
    def failures(self) -> list[str]:
        failures = [self.aborted] if self.aborted else []
        if self.lost or self.duplicated:
            failures.append(f"{self.lost:,} positions lost, {self.duplicated:,} doubled")
        if self.wrong_latest:
            failures.append(f"latest wrong {self.wrong_latest:,} times (marker and worker, after an iteration)")
        if self.stale:
            failures.append(f"{self.stale:,} stale answers served")
        return failures

    def rows(self) -> list[tuple[str, str, str]]:
        plan, tally, kinds = self.plan, self.tally, self.plan.kinds
        counted = ", ".join(f"{kind} ×{self.kinds[kind]}" for kind in kinds)
        longest = max(self.stalls, key=lambda s: s.seconds, default=None)
        late = [(label, seconds) for label, seconds in self.commits if seconds > plan.commit_within]
        slowest = max(self.commits, key=lambda c: c[1], default=("-", 0.0))
        loads = [load[0] for load in self.loads]

        def recovery(kind: str, what: str, goal: str = "") -> tuple[str, str, str]:
            times = self.recoveries.get(kind) or []
            return (f"recovery after {what}, max", f"{max(times):.1f} s" if times else "-",
                    f"median {sorted(times)[len(times) // 2]:.1f} s of {len(times)}{goal}" if times else "")

        rows = [
            ("iterations", f"{self.iterations:,}", f"{counted}; {self.seconds / 60:.1f} min; {plan.brokers} broker(s)"
             + "".join(f"; {name}={value}" for name, value in plan.settings)),
            ("positions acknowledged by Kafka", f"{self.acked:,}",
             f"{plan.markers:,} markers at {plan.rate:,.0f}/s; {self.failed_sends:,} sends failed and were sent again"),
            ("lost", f"{self.lost:,}", "positions of the stream missing from Postgres, by sequence number"),
            ("duplicated", f"{self.duplicated:,}", "positions in Postgres more than once"),
            ("wrong latest", f"{self.wrong_latest:,}",
             "(marker, worker) whose latest is not its newest fix after an iteration; "
             f"{self.unverified:,} times a worker answered no list within 30 s (not checked)"),
            ("stale answers served", f"{self.stale:,}",
             f"of {tally.total('answers'):,} answers; {tally.by_kind('stale', kinds)}; "
             f"in lists: {tally.total('stale list rows'):,}"),
            ("503s", f"{tally.total('503'):,}", f"{tally.by_kind('503', kinds)}; no answer "
             f"{tally.total('no answer'):,}; other statuses {tally.total('other'):,}"),
            ("lists short without partial", f"{tally.total('short lists'):,}",
             f"of {tally.total('lists'):,} lists; {tally.by_kind('short lists', kinds)}; "
             f"partial: {tally.total('partial lists'):,}"),
            ("partitions stalled over 10 s", f"{len(self.stalls):,}",
             ", ".join(f"{kind} {sum(1 for s in self.stalls if s.kind == kind)}" for kind in kinds)
             + (f"; longest {longest.seconds:.0f} s ({longest.stage} partition {longest.partition}, {longest.label})"
                if longest else "")),
            (f"groups not committed {plan.commit_within:.0f} s after the stream paused", f"{len(late):,}",
             f"slowest {slowest[1]:.1f} s ({slowest[0]})"),
            ("skipped offsets read again", f"{sum(self.rereads.values()):,}",
             f"log lines, {self.reread_offsets:,} offsets; " + ", ".join(f"{k} {self.rereads[k]}" for k in kinds)),
            ("guard restarts", f"{sum(self.guard_restarts.values()):,}",
             f"log lines, {self.recovery_restarts:,} of them the recovery guard's; "
             + ", ".join(f"{k} {self.guard_restarts[k]}" for k in kinds)
             + f"; {RESTARTS_METRIC} {self.partition_restarts:,.0f}"),
            recovery("kill", "kill -9 (worker ready, partitions owned)", "; goal < 30 s"),
            recovery("stop", "SIGCONT (partitions owned again)"),
            recovery("join", "a fourth worker joins (it owns partitions)"),
            recovery("leave", "the fourth worker stops (its partitions owned by the three)"),
        ]
        if plan.brokers > 1:
            rows.append(recovery("broker", "kill -9 of a broker (it is back)"))
        rows.append((DROPPED_METRIC, "-" if self.dropped is None else f"{self.dropped:,.0f}",
                     "summed over the workers' /metrics" if self.dropped is not None else "absent from /metrics"))
        if loads:
            rows.append(("load average (1 min) at the iterations' ends", f"{max(loads):.1f}",
                         f"max; min {min(loads):.1f}, median {sorted(loads)[len(loads) // 2]:.1f}; "
                         f"{os.cpu_count()} cores"))
        return rows


# --- the stream -----------------------------------------------------------------------------
class Stream(threading.Thread):
    """``rate`` positions a second, markers in turn; a send that fails is sent again. Markers
    of the partitions in ``quiet`` send nothing. ``pause`` returns once everything sent is
    acknowledged."""

    def __init__(self, stack: Stack, plan: Plan) -> None:
        super().__init__(daemon=True)
        self.stack, self.plan = stack, plan
        self.markers = [f"soak-{m:05d}" for m in range(plan.markers)]
        partitions = stack.settings.topic_partitions
        self.partition = {marker: partition_of(marker.encode(), partitions) for marker in self.markers}
        self.seq = {marker: 0 for marker in self.markers}  # the last one made (acknowledged once paused)
        self.last_ms = {marker: 0 for marker in self.markers}
        self.reported: set[str] = set()  # markers with an acknowledged position
        self.quiet: frozenset[int] = frozenset()
        self.acked = 0
        self.failed_sends = 0
        self.error: BaseException | None = None
        self._pause, self._paused, self._done = threading.Event(), threading.Event(), threading.Event()
        rng = random.Random(plan.seed)
        self.origin = {marker: (45 + rng.uniform(-1, 1), 14 + rng.uniform(-1, 1)) for marker in self.markers}

    def markers_on(self, partitions) -> list[str]:
        return [marker for marker in self.markers if self.partition[marker] in partitions]

    def pause(self, timeout: float = 300.0) -> None:
        """Once this returns, every position made so far is acknowledged and no more are sent."""
        self._paused.clear()
        self._pause.set()
        if not self._paused.wait(timeout):
            raise AssertionError(f"the stream did not pause within {timeout:.0f} s")

    def resume(self) -> None:
        self._pause.clear()

    def stop(self) -> None:
        self._done.set()
        self.join(60)

    def run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # noqa: BLE001 - reported by the soak, which then stops
            self.error = exc
            self._paused.set()

    def _fix(self, marker: str) -> tuple[bytes, bytes]:
        seq = self.seq[marker] = self.seq[marker] + 1
        time_ms = self.last_ms[marker] = max(int(time.time() * 1000), self.last_ms[marker] + 1)
        lat, lon = self.origin[marker]
        value = orjson.dumps({"marker_id": marker, "time": time_ms, "lat": round(lat + seq * 1e-5, 6),
                              "lon": round(lon, 6), "speed": 1.0, "attributes": {"seq": seq}})
        return marker.encode(), value

    @staticmethod
    async def _send(producer, topic: str, record: tuple[bytes, bytes]):
        """The record's metadata once acknowledged, or the error that stopped it (a broker
        down: no metadata, a request timed out)."""
        try:
            return await (await producer.send(topic, key=record[0], value=record[1]))
        except KafkaError as exc:
            return exc

    async def _produce(self) -> None:
        producer = positions_producer(self.stack.settings)
        await producer.start()
        topic, chunk = self.stack.settings.topic, max(1, round(self.plan.rate / 10))
        cursor, due = 0, time.monotonic()
        try:
            while not self._done.is_set():
                if self._pause.is_set():
                    self._paused.set()
                    await asyncio.sleep(0.05)
                    due = time.monotonic()
                    continue
                batch = []
                for _ in range(chunk):
                    marker = self.markers[cursor % len(self.markers)]
                    cursor += 1
                    if self.partition[marker] not in self.quiet:
                        batch.append(self._fix(marker))
                while batch:
                    results = await asyncio.gather(*(self._send(producer, topic, record) for record in batch))
                    again = [record for record, result in zip(batch, results) if isinstance(result, Exception)]
                    self.acked += len(batch) - len(again)
                    self.reported.update(key.decode() for (key, _), result in zip(batch, results)
                                         if not isinstance(result, Exception))
                    if again:
                        self.failed_sends += len(again)
                        await asyncio.sleep(1.0)
                    batch = again
                due = max(due + 0.1, time.monotonic() - 1.0)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        finally:
            await producer.stop()


# --- the readers ----------------------------------------------------------------------------
class Client:
    """GETs on one keep-alive connection to a worker, with the stack admin's token."""

    def __init__(self, worker: Worker, timeout: float = 12.0) -> None:
        self.worker, self.timeout = worker, timeout
        self.headers = {"Authorization": f"Bearer {worker.stack.admin_token}"}
        self.conn: http.client.HTTPConnection | None = None
        #: where the last answer's position came from (``X-Tracker-Position-Source``)
        self.source: str | None = None
        #: whether the last answer said it lacks partitions (``X-Tracker-Partial``)
        self.partial = False

    def get(self, path: str) -> tuple[int, bytes] | None:
        """(status, body), or None when the worker did not answer."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.worker.web_port, timeout=self.timeout)
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
            self.source = response.getheader("X-Tracker-Position-Source")
            self.partial = response.getheader("X-Tracker-Partial") == "true"
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None


class Readers:
    """From ``start`` to ``stop``: per worker, one thread reading every sampled marker in turn
    and one reading the list every second; every answer judged against ``served``."""

    def __init__(self, soak: "Soak", workers: list[Worker]) -> None:
        self.soak, self.done = soak, threading.Event()
        self.threads = [threading.Thread(target=target, args=(worker,), daemon=True)
                        for worker in workers for target in (self._markers, self._lists)]
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(30)

    def _when(self) -> str:
        return f"{self.soak.label}, {time.monotonic() - self.started:.1f} s in"

    def _markers(self, worker: Worker) -> None:
        soak, client = self.soak, Client(worker)
        next_round = time.monotonic()
        while not self.done.wait(max(0.0, next_round - time.monotonic())):
            next_round = time.monotonic() + ROUND_SECONDS
            for marker in soak.sampled:
                if self.done.is_set():
                    return
                before = soak.served.before((marker,))[marker]
                answer = client.get(f"/api/markers/{marker}")
                if answer is None:
                    soak.tally.add("no answer", soak.kind)
                    time.sleep(0.2)
                    continue
                status, body = answer
                soak.tally.add("answers", soak.kind)
                if status == 200:
                    seq = orjson.loads(body)["attributes"]["seq"]
                    if seq < before:
                        soak.tally.add("stale", soak.kind, example=f"stale: worker {worker.index} answered {marker} "
                                       f"seq {seq} after seq {before} had been served, from {client.source} "
                                       f"({self._when()})")
                        self._keep_log(worker)
                    soak.served.serve(marker, seq)
                elif status == 503:
                    soak.tally.add("503", soak.kind)
                elif status == 404 and before:
                    soak.tally.add("stale", soak.kind, example=f"stale: worker {worker.index} answered 404 for "
                                   f"{marker} after seq {before} had been served ({self._when()})")
                    self._keep_log(worker)
                else:
                    soak.tally.add("other", soak.kind, example=f"worker {worker.index} answered {status} for "
                                   f"{marker}: {body[:200]!r} ({self._when()})")

    def _keep_log(self, worker: Worker) -> None:
        """The end of the log of a worker that served a stale answer, for the report (the
        first few of a run)."""
        excerpts = self.soak.report.excerpts
        if sum(1 for e in excerpts if e.startswith("log of worker")) < 3:
            excerpts.append(f"log of worker {worker.index} at a stale answer ({self._when()}):\n{worker.log_tail(80)}")

    def _lists(self, worker: Worker) -> None:
        soak, client = self.soak, Client(worker, timeout=30.0)
        while not self.done.wait(ROUND_SECONDS):
            known = len(soak.stream.reported)
            before = soak.served.before(soak.sampled)
            answer = client.get("/api/markers")
            if answer is None:
                continue
            status, body = answer
            if status == 503:
                soak.tally.add("503", soak.kind)
                continue
            if status != 200:
                soak.tally.add("other", soak.kind, example=f"worker {worker.index} answered {status} for the list: "
                               f"{body[:200]!r} ({self._when()})")
                continue
            soak.tally.add("lists", soak.kind)
            rows, partial = rows_of(orjson.loads(body))
            partial = partial or client.partial
            if partial:
                soak.tally.add("partial lists", soak.kind)
            elif len(rows) < known:
                soak.tally.add("short lists", soak.kind, example=f"short list: worker {worker.index} listed "
                               f"{len(rows):,} of {known:,} markers without partial ({self._when()})")
            for row in rows:
                marker = row["marker_id"]
                if marker in before:
                    seq = row["attributes"]["seq"]
                    if seq < before[marker]:
                        soak.tally.add("stale list rows", soak.kind, example=f"stale list row: worker {worker.index} "
                                       f"listed {marker} seq {seq} after seq {before[marker]} ({self._when()})")
                    soak.served.serve(marker, seq)


def rows_of(body) -> tuple[list[dict], bool]:
    """A list answer's rows, and whether its body says it is partial (``{"partial": true, ...}``;
    a JSON list says so in ``X-Tracker-Partial``)."""
    if isinstance(body, list):
        return body, False
    rows = body.get("positions") or body.get("markers") or body.get("items") or []
    return rows, bool(body.get("partial"))


# --- the monitor of committed offsets ----------------------------------------------------
class Monitor(threading.Thread):
    """Every second, every consumer group's committed offsets against the end offsets: a
    partition whose commit stays put more than ``STALL_SECONDS`` while behind is a stall."""

    def __init__(self, soak: "Soak") -> None:
        super().__init__(daemon=True)
        self.soak, self.done = soak, threading.Event()
        #: (stage, partition) -> [committed, since, counted, kind, label]
        self.seen: dict[tuple[str, int], list] = {}

    def stop(self) -> None:
        self.done.set()
        self.join(30)
        self._close_all()

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        config = self.soak.stack.settings
        consumer = AIOKafkaConsumer(bootstrap_servers=config.bootstrap_servers, group_id=None)
        admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
        await consumer.start()
        await admin.start()
        try:
            while not self.done.is_set():
                try:
                    await self._check(consumer, admin)
                except Exception as exc:  # noqa: BLE001 - a broker restarting: the next check
                    say(f"monitor: {exc!r}")
                await asyncio.sleep(1.0)
        finally:
            await admin.close()
            await consumer.stop()

    async def _check(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
        stack, now = self.soak.stack, time.monotonic()
        for stage, (suffix, topic) in stack.stages(sinks=True).items():
            partitions = [TopicPartition(topic, p) for p in range(stack.settings.topic_partitions)]
            ends = await consumer.end_offsets(partitions)
            committed = await committed_offsets(stack.settings, stack.name + suffix, partitions, admin)
            for tp in partitions:
                offset, key = committed.get(tp, 0), (stage, tp.partition)
                seen = self.seen.get(key)
                if offset >= ends[tp] or seen is None or seen[0] != offset:
                    self._close(key)
                    if offset < ends[tp]:
                        self.seen[key] = [offset, now, False, self.soak.kind, self.soak.label]
                    continue
                if not seen[2] and now - seen[1] > STALL_SECONDS:
                    seen[2] = True
                    say(f"monitor: {stage} partition {tp.partition} stalled at {offset} of {ends[tp]} "
                        f"for {now - seen[1]:.0f} s ({self.soak.label})")

    def _close(self, key: tuple[str, int]) -> None:
        seen = self.seen.pop(key, None)
        if seen is not None and seen[2]:
            self.soak.report.stalls.append(Stall(seen[3], seen[4], key[0], key[1], time.monotonic() - seen[1]))

    def _close_all(self) -> None:
        for key in list(self.seen):
            self._close(key)


# --- the soak ---------------------------------------------------------------------------------
class Soak:
    def __init__(self, plan: Plan, stack: Stack) -> None:
        self.plan, self.stack = plan, stack
        self.report = Report(plan)
        self.tally, self.served = self.report.tally, Served()
        self.rng = random.Random(plan.seed)
        self.number, self.kind, self.label = 0, "start", "start"
        self.workers: list[Worker] = []
        self.fourth: Worker | None = None
        self.stream = Stream(stack, plan)
        self.sampled = self.rng.sample(self.stream.markers, min(plan.samples, plan.markers))
        self.snapshot = {marker: 0 for marker in self.stream.markers}  # seq at the last check
        self.checked_ms = 0  # the newest fix time at the last check
        self.log_offsets: dict[Path, int] = {}
        self.metrics: dict[tuple[int, str], float] = {}  # (worker, metric) -> last value read
        self.totals: dict[str, float] = {}  # metric -> summed over restarts

    def run(self) -> Report:
        plan, started = self.plan, time.monotonic()
        self.workers = [self.stack.worker(**dict(self.plan.settings)).start() for _ in range(3)]
        for worker in self.workers:
            worker.wait_ready(180)
        wait_for(lambda: partition_owners(self.workers, self.stack.settings.topic_partitions), 120,
                 "three workers to share the partitions")
        say(f"streaming {plan.markers:,} markers at {plan.rate:,.0f} positions/s")
        self.stream.start()
        monitor = Monitor(self)
        try:
            wait_for(lambda: len(self.stream.reported) == plan.markers or self.stream.error, 120,
                     "every marker to report")
            self._check_errors()
            wait_for(lambda: self._listed(self.workers[0]) == plan.markers, 120, "every marker in latest")
            monitor.start()
            for number in range(plan.iterations):
                self._iteration(number, plan.kinds[number % len(plan.kinds)])
        except AssertionError as error:  # a worker that exited, a stream that failed
            self.report.aborted = f"stopped in {self.label}: {error}"
            say(self.report.aborted)
        except KeyboardInterrupt:  # Ctrl-C: the table of the iterations done
            self.report.aborted = f"interrupted in {self.label}"
            say(self.report.aborted)
        finally:
            monitor.stop()
            self.stream.stop()
            self._scan_logs()
            self.report.seconds = time.monotonic() - started
            self.report.acked, self.report.failed_sends = self.stream.acked, self.stream.failed_sends
        return self.report

    @staticmethod
    def _listed(worker: Worker) -> int:
        status, body = worker.get("/api/markers", timeout=60)
        return len(rows_of(body)[0]) if status == 200 else 0

    def _check_errors(self) -> None:
        if self.stream.error is not None:
            raise AssertionError(f"the stream failed: {self.stream.error!r}")

    # --- one iteration --------------------------------------------------------------------
    def _iteration(self, number: int, kind: str) -> None:
        report = self.report
        report.kinds[kind] += 1
        self.number, self.kind, self.label = number, kind, f"{kind} #{report.kinds[kind]}"
        began = time.monotonic()
        say(f"iteration {number + 1}/{self.plan.iterations}: {self.label}")
        readers = Readers(self, self.workers + ([self._fourth()] if kind == "join" else []))
        try:
            getattr(self, f"_{kind}")()
            time.sleep(self.plan.settle_seconds)
        finally:
            readers.stop()
        self.stream.pause()
        self._check_errors()
        try:
            self._after(began)
        finally:
            self.stream.resume()
        report.iterations += 1
        report.loads.append(os.getloadavg())

    def _fourth(self) -> Worker:
        if self.fourth is None:
            self.fourth = self.stack.worker(**dict(self.plan.settings))
        return self.fourth

    def _owned(self, workers: list[Worker], what: str) -> float:
        """Wait until ``workers`` are ready and share the partitions the same way for
        ``STABLE_SECONDS`` (a worker resumed after ``SIGSTOP`` shows its old partitions until
        it learns of the rebalance); the moment that began. Past the plan's
        ``recovery_timeout``, note it and go on (a worker still recovering its tables)."""
        stable: list = [None, 0.0]  # the assignment seen, since when

        def owned():
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker {worker.index} exited:\n{worker.log_tail()}")
            owners, now = partition_owners(workers, self.stack.settings.topic_partitions), time.monotonic()
            if owners is None or owners != stable[0]:
                stable[:] = [owners, now]
            return owners is not None and now - stable[1] >= STABLE_SECONDS

        try:
            wait_for(owned, self.plan.recovery_timeout, what, interval=0.5)
            return stable[1]
        except AssertionError as error:
            owners = {w.index: (w.health() or {}).get("partitions") for w in workers}
            self.report.events.append(f"{self.label}: {error}; partitions per worker (None: not ready): {owners}")
            say(self.report.events[-1])
            return time.monotonic()

    def _victim(self) -> Worker:
        """One of the three, by the iteration's number: each kind of disturbance meets each worker."""
        return self.workers[self.number % len(self.workers)]

    def _join(self) -> None:
        fourth, started = self._fourth(), time.monotonic()
        fourth.start()
        self._recovered("join", started,
                        self._owned(self.workers + [fourth], "four workers to share the partitions"))
        time.sleep(self.plan.hold_seconds)
        left = time.monotonic()
        fourth.stop()
        self._recovered("leave", left,
                        self._owned(self.workers, "the three workers to take the fourth one's partitions"))

    def _kill(self) -> None:
        victim = self._victim()
        killed = time.monotonic()
        victim.kill()
        victim.start()
        self._recovered("kill", killed, self._owned(self.workers, f"worker {victim.index} to own partitions again"),
                        f"worker {victim.index}")

    def _stop(self) -> None:
        victim = self._victim()
        victim.pause()
        try:
            time.sleep(self.plan.stop_seconds)
        finally:
            resumed = time.monotonic()
            victim.resume()
        self._recovered("stop", resumed, self._owned(self.workers, f"worker {victim.index} to own partitions again"),
                        f"worker {victim.index}")

    def _quiet(self) -> None:
        quiet = frozenset(self.rng.sample(range(self.stack.settings.topic_partitions), self.plan.quiet_partitions))
        say(f"  partitions {sorted(quiet)} quiet for {self.plan.quiet_seconds:.0f} s "
            f"({len(self.stream.markers_on(quiet)):,} markers)")
        self.stream.quiet = quiet
        time.sleep(self.plan.quiet_seconds)
        self.stream.quiet = frozenset()

    def _broker(self) -> None:
        node = (self.report.kinds["broker"] - 1) % self.plan.brokers + 1
        killed = time.monotonic()
        subprocess.run([SERVICES, "kill-broker", str(node)], check=True, capture_output=True)
        time.sleep(self.plan.broker_down_seconds)
        subprocess.run([SERVICES, "start-cluster"], check=True, capture_output=True)
        self._recovered("broker", killed, time.monotonic(), f"node {node}")

    def _recovered(self, kind: str, since: float, until: float, who: str = "") -> None:
        seconds = until - since
        self.report.recoveries[kind].append(seconds)
        say(f"  {' '.join(filter(None, (kind, who)))}: recovered in {seconds:.1f} s")

    # --- after an iteration: the stream paused ---------------------------------------------
    def _after(self, began: float) -> None:
        paused = time.monotonic()
        for worker in self.workers:  # a worker that died by itself is restarted, as a supervisor would
            if worker.proc.poll() is not None:
                self.report.events.append(f"{self.label}: worker {worker.index} exited by itself "
                                          f"(status {worker.proc.returncode}); restarted\n{worker.log_tail(20)}")
                worker.start()
                self._owned(self.workers, f"worker {worker.index} to own partitions again")
        committed = self._wait_committed(paused)
        newest = dict(self.stream.seq)
        wrong = self._check_latest(newest)
        lost, duplicated = self._check_history(newest)
        self.snapshot, self.checked_ms = newest, max(self.stream.last_ms.values())
        rereads, guards = self._scan_logs()
        self._read_metrics()
        tally = self.tally
        say(f"  {self.label} done in {time.monotonic() - began:.0f} s: committed {committed:.1f} s after the pause; "
            f"lost {lost}, doubled {duplicated}, wrong latest {wrong}; stale {tally.counts['stale'][self.kind]}"
            f" (lists {tally.counts['stale list rows'][self.kind]}), 503s {tally.counts['503'][self.kind]}, "
            f"short lists {tally.counts['short lists'][self.kind]}, stalls "
            f"{sum(1 for s in self.report.stalls if s.label == self.label)}, rereads {rereads}, "
            f"guard restarts {guards}; "
            f"load {os.getloadavg()[0]:.1f}")

    def _wait_committed(self, paused: float) -> float:
        """Seconds from the pause until every group has committed its topic's end."""
        timeout, noted = 180.0, False
        behind = self.stack.pipeline_behind(sinks=True)
        while behind and time.monotonic() - paused < timeout:
            if not noted and time.monotonic() - paused > self.plan.commit_within:
                noted = True
                self.report.excerpts.append(f"{self.label}: {self.plan.commit_within:.0f} s after the pause, "
                                            f"behind (partition: (committed, end)): {behind}")
            time.sleep(0.2)
            behind = self.stack.pipeline_behind(sinks=True)
        seconds = time.monotonic() - paused
        self.report.commits.append((self.label, seconds))
        if behind:
            self.report.events.append(f"{self.label}: still behind {timeout:.0f} s after the pause: {behind}")
        return seconds

    def _check_latest(self, newest: dict[str, int], timeout: float = 30.0) -> int:
        """(marker, worker) pairs whose ``latest`` is not the newest fix, once every worker
        shows them all or ``timeout`` has passed."""
        wrong_total = 0
        for worker in self.workers:
            deadline, wrong = time.monotonic() + timeout, None
            while wrong != [] and time.monotonic() < deadline:
                status, body = worker.get("/api/markers", timeout=60)
                if status == 200:
                    shown = {row["marker_id"]: row["attributes"]["seq"] for row in rows_of(body)[0]}
                    wrong = [m for m, seq in newest.items() if shown.get(m) != seq]
                if wrong != []:
                    time.sleep(0.5)
            if wrong is None:  # never a list: unavailable (allowed), not wrong
                self.report.unverified += 1
                self.report.events.append(f"{self.label}: worker {worker.index} answered no list in {timeout:.0f} s "
                                          f"after the stream paused (last: {status})")
                continue
            if wrong:
                self.report.excerpts.append(f"{self.label}: worker {worker.index} shows {len(wrong)} markers wrong, "
                                            f"e.g. {wrong[:5]}")
            wrong_total += len(wrong)
        self.report.wrong_latest += wrong_total
        return wrong_total

    def _check_history(self, newest: dict[str, int]) -> tuple[int, int]:
        """The iteration's positions (newer than the last check) in Postgres: (lost, doubled)."""
        since = datetime.fromtimestamp(self.checked_ms / 1000, timezone.utc)
        rows = self.stack.query(
            "SELECT marker_id, (attributes->>'seq')::bigint, count(*) FROM positions "
            "WHERE fix_time > %s GROUP BY 1, 2", since)
        present = {(marker, seq) for marker, seq, _ in rows}
        duplicated = sum(count - 1 for _, _, count in rows)
        lost = sum(1 for marker, last in newest.items() for seq in range(self.snapshot[marker] + 1, last + 1)
                   if (marker, seq) not in present)
        if lost:
            missing = [(m, s) for m, last in newest.items() for s in range(self.snapshot[m] + 1, last + 1)
                       if (m, s) not in present]
            self.report.excerpts.append(f"{self.label}: {lost} positions missing from Postgres, e.g. {missing[:5]}")
        self.report.lost += lost
        self.report.duplicated += duplicated
        return lost, duplicated

    def _scan_logs(self) -> tuple[int, int]:
        """Lines of the continuity guard and of the partition guards the workers logged since
        the last scan: (rereads, guard restarts)."""
        rereads = guards = 0
        for worker in self.workers + ([self.fourth] if self.fourth else []):
            path = worker.log_path
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(self.log_offsets.get(path, 0))
                text = log.read().decode(errors="replace")
                self.log_offsets[path] = log.tell()
            for line in text.splitlines():
                match = REREAD_LINE.search(line)
                if match:
                    rereads += 1
                    self.report.reread_offsets += int(match.group(3)) - int(match.group(2)) + 1
                elif PARTITION_GUARD_LINE.search(line):
                    guards += 1
                elif RECOVERY_GUARD_LINE.search(line):
                    guards += 1
                    self.report.recovery_restarts += 1
                else:
                    continue
                if len(self.report.excerpts) < 200:
                    self.report.excerpts.append(f"{self.label}: worker {worker.index}: {line.strip()[:300]}")
        self.report.rereads[self.kind] += rereads
        self.report.guard_restarts[self.kind] += guards
        return rereads, guards

    def _read_metrics(self) -> None:
        """Counters of the workers' ``/metrics``, summed across restarts (a restarted
        worker's count starts again from 0)."""
        for worker in self.workers:
            try:
                status, text = worker.get("/metrics", timeout=10)
            except OSError:
                continue
            if status != 200:
                continue
            for metric in (DROPPED_METRIC, RESTARTS_METRIC):
                values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                          if line.startswith(metric) and line[len(metric):len(metric) + 1] in (" ", "{")]
                if not values:
                    continue
                value, last = sum(values), self.metrics.get((worker.index, metric), 0.0)
                self.totals[metric] = self.totals.get(metric, 0.0) + (value - last if value >= last else value)
                self.metrics[(worker.index, metric)] = value
        self.report.dropped = self.totals.get(DROPPED_METRIC)
        self.report.partition_restarts = self.totals.get(RESTARTS_METRIC, 0.0)


# --- the command ------------------------------------------------------------------------------
def cluster_environment() -> None:
    """Start scripts/services' three-node cluster if it is not running, and point this process
    (and the stack it creates) at it: its brokers, replication 3."""
    subprocess.run([SERVICES, "start-cluster"], check=True)
    exports = subprocess.run([SERVICES, "cluster-env"], check=True, capture_output=True, text=True).stdout
    for name, value in re.findall(r"^export (\w+)='?([^'\n]*)'?$", exports, re.M):
        os.environ[name] = value


def run(plan: Plan, stack: Stack | None = None) -> Report:
    if plan.brokers > 1 and stack is None:
        cluster_environment()
    stack = stack or Stack.create(Path(tempfile.mkdtemp(prefix="soak-")))
    soak = Soak(plan, stack)
    try:
        return soak.run()
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Plan()
    parser.add_argument("--iterations", type=int, default=defaults.iterations)
    parser.add_argument("--markers", type=int, default=defaults.markers)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="positions/s")
    parser.add_argument("--samples", type=int, default=defaults.samples, help="markers read through every worker")
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1,
                        help="3: on scripts/services' cluster (started if needed), with broker kills")
    parser.add_argument("--stop-seconds", type=float, default=defaults.stop_seconds, help="SIGSTOP of a worker")
    parser.add_argument("--quiet-seconds", type=float, default=defaults.quiet_seconds)
    parser.add_argument("--settle", type=float, default=defaults.settle_seconds,
                        help="seconds of reads after each disturbance")
    parser.add_argument("--recovery-timeout", type=float, default=defaults.recovery_timeout,
                        help="seconds to wait for the workers to share the partitions after a disturbance")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every worker (TRACKER_* variables of this shell do not reach them)")
    parser.add_argument("--only", nargs="+", choices=BROKER_KINDS, default=[], metavar="KIND",
                        help=f"only these disturbances, in turn (of {', '.join(BROKER_KINDS)}; broker needs --brokers 3)")
    args = parser.parse_args()
    if "broker" in args.only and args.brokers == 1:
        parser.error("--only broker needs --brokers 3")
    settings = []
    for item in args.set:
        name, equals, value = item.partition("=")
        if not equals or not name.startswith("TRACKER_"):
            parser.error(f"--set takes TRACKER_NAME=VALUE, not {item!r}")
        settings.append((name, value))
    plan = Plan(iterations=args.iterations, markers=args.markers, rate=args.rate, samples=args.samples,
                brokers=args.brokers, stop_seconds=args.stop_seconds, quiet_seconds=args.quiet_seconds,
                settle_seconds=args.settle, recovery_timeout=args.recovery_timeout, seed=args.seed,
                settings=tuple(settings), only=tuple(args.only))
    report = run(plan)
    for line in [*(e for kept in report.tally.examples.values() for e in kept), *report.excerpts, *report.events]:
        print(line, file=sys.stderr)
    print_table(report.rows(), report.failures)


if __name__ == "__main__":
    main()
