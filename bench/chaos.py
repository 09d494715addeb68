"""Chaos: two workers take a stream while workers are killed, Kafka restarts and Postgres
stops; afterwards nothing may be lost or doubled, and ``latest`` must be right.

    make chaos                      (500,000 positions, 1,000 markers, the full schedule)
    python -m bench.chaos --help    (smaller runs)

Exits 1 if any valid position is missing from Postgres, a row is doubled, or ``latest``
is wrong for a marker. The test suite runs a short version (tests/integration/test_chaos.py).
"""
from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from tracker.testing import ROOT, Stack, Worker, settle_latest, wait_for
from tracker.stream.producer import positions_producer

SERVICES = str(ROOT / "scripts" / "services")


def say(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


@dataclass
class Plan:
    positions: int = 500_000
    markers: int = 1_000
    rate: float = 5_000.0  # positions/s sent
    kill_every: tuple[float, float] = (10.0, 30.0)
    kills: int | None = None  # None: keep killing until the stream is in
    restart_kafka: bool = True
    postgres_stop_seconds: float = 30.0
    seed: int = 1


@dataclass
class Report:
    sent: int = 0
    expected: int = 0
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    latest_wrong: int = 0
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.latest_wrong == 0 and self.stored == self.expected

    def table(self) -> str:
        rows = [
            ("positions sent (acknowledged by Kafka)", f"{self.sent:,}"),
            ("distinct valid positions expected", f"{self.expected:,}"),
            ("rows in Postgres", f"{self.stored:,}"),
            ("lost positions", f"{self.lost:,}"),
            ("duplicate rows", f"{self.duplicates:,}"),
            ("markers whose latest is wrong", f"{self.latest_wrong:,}"),
        ]
        rows += [(f"recovery after {what}", f"{seconds:.1f} s") for what, seconds in self.recoveries]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)


def stream(plan: Plan) -> tuple[list[tuple[bytes, bytes]], dict[str, tuple[float, float]], set]:
    """Positions with rising times per marker, every tenth one sent twice."""
    rng = random.Random(plan.seed)
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    records, newest, expected = [], {}, set()
    lat = {m: 45 + rng.uniform(-1, 1) for m in range(plan.markers)}
    for i in range(plan.positions):
        m = i % plan.markers
        marker_id = f"chaos-{m:04d}"
        millis = (i // plan.markers) * 1000 + m
        moment = base + timedelta(milliseconds=millis)
        lat[m] += rng.uniform(-0.0005, 0.0005)
        fix = {"marker_id": marker_id, "lat": round(lat[m], 7), "lon": 14.0 + m / 1000,
               "time": moment.isoformat().replace("+00:00", "Z"), "speed": 3.0}
        value = orjson.dumps(fix)
        records.append((marker_id.encode(), value))
        if i % 10 == 0:
            records.append((marker_id.encode(), value))
        newest[marker_id] = (fix["lat"], fix["lon"])
        expected.add((marker_id, int(moment.timestamp() * 1000)))
    return records, newest, expected


class Producer(threading.Thread):
    """Sends at a steady rate; a send that fails (broker restarting) is sent again."""

    def __init__(self, stack: Stack, records, rate: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.records, self.rate = stack, records, rate
        self.acked = 0
        self.failed_sends = 0

    def run(self) -> None:
        asyncio.run(self._produce())

    async def _produce(self) -> None:
        producer = positions_producer(self.stack.settings)
        await producer.start()
        topic = self.stack.settings.topic
        started = time.monotonic()
        chunk = max(1, int(self.rate / 10))
        try:
            for start in range(0, len(self.records), chunk):
                batch = self.records[start:start + chunk]
                while batch:
                    futures = [await producer.send(topic, key=k, value=v) for k, v in batch]
                    results = await asyncio.gather(*futures, return_exceptions=True)
                    retry = [record for record, result in zip(batch, results) if isinstance(result, Exception)]
                    self.acked += len(batch) - len(retry)
                    if retry:
                        self.failed_sends += len(retry)
                        await asyncio.sleep(1.0)
                    batch = retry
                due = started + (start + chunk) / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        finally:
            await producer.stop()


def _restart(worker: Worker, report: Report, what: str) -> None:
    started = time.monotonic()
    worker.start()
    worker.wait_ready(timeout=180)
    report.recoveries.append((what, time.monotonic() - started))
    say(f"{what}: worker {worker.index} ready again after {report.recoveries[-1][1]:.1f} s")


def run(plan: Plan, stack: Stack | None = None) -> Report:
    stack = stack or Stack.create(Path(tempfile.mkdtemp(prefix="chaos-")))
    report = Report()
    rng = random.Random(plan.seed)
    records, newest, expected = stream(plan)
    report.expected = len(expected)
    workers = [stack.worker().start(), stack.worker().start()]
    for worker in workers:
        worker.wait_ready()
    say(f"sending {len(records):,} records ({len(expected):,} distinct) at {plan.rate:,.0f}/s")
    producer = Producer(stack, records, plan.rate)
    producer.start()
    try:
        _disturb(plan, stack, workers, producer, report, rng, len(expected))
        producer.join()
        report.sent = producer.acked
        say(f"stream sent; waiting for {len(expected):,} rows")
        last = [-1, time.monotonic()]

        def settled():
            count = stack.history_count()
            for worker in workers:  # a worker that died on its own is restarted, as a supervisor would
                if worker.proc.poll() is not None:
                    report.events.append(f"worker {worker.index} exited by itself; restarted")
                    _restart(worker, report, f"worker {worker.index} exit")
            if count != last[0]:
                last[:] = [count, time.monotonic()]
                say(f"{count:,} rows")
            return count >= len(expected) or time.monotonic() - last[1] > 120

        wait_for(settled, 3600, "the history to settle", interval=2.0)
        _verify(stack, workers, expected, newest, report)
    finally:
        stack.close()
    return report


def _disturb(plan: Plan, stack, workers, producer, report: Report, rng: random.Random, expected: int) -> None:
    """Kills, a Kafka restart and a Postgres stop, for as long as the stream is not all in
    (or stops moving for two minutes)."""
    pg_done = plan.postgres_stop_seconds <= 0
    kafka_done = not plan.restart_kafka
    kills = 0
    progress = [-1, time.monotonic()]

    def moving() -> bool:
        count = stack.history_count()
        if count != progress[0]:
            progress[:] = [count, time.monotonic()]
        return count < expected and time.monotonic() - progress[1] < 120

    while producer.is_alive() or not (pg_done and kafka_done) or moving():
        time.sleep(rng.uniform(*plan.kill_every))
        if plan.kills is None or kills < plan.kills:
            victim = rng.choice(workers)
            say(f"kill -9 worker {victim.index}")
            victim.kill()
            kills += 1
            _restart(victim, report, f"kill -9 #{kills}")
        if not pg_done:
            say(f"stopping Postgres for {plan.postgres_stop_seconds:.0f} s")
            subprocess.run([SERVICES, "stop-postgres"], check=True)
            time.sleep(plan.postgres_stop_seconds)
            subprocess.run([SERVICES, "start-postgres"], check=True)
            report.events.append("postgres stopped and started")
            pg_done = True
        elif not kafka_done:
            say("restarting Kafka")
            subprocess.run([SERVICES, "restart-kafka"], check=True)
            report.events.append("kafka restarted")
            kafka_done = True


def _verify(stack: Stack, workers, expected, newest, report: Report) -> None:
    rows = stack.query("SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions")
    present = set(rows)
    report.stored = len(rows)
    report.duplicates = len(rows) - len(present)
    report.lost = len(expected - present)
    latest = settle_latest(workers[0], newest)
    report.latest_wrong = sum(1 for marker, position in newest.items() if latest.get(marker) != position)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=500_000)
    parser.add_argument("--markers", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=5_000)
    parser.add_argument("--postgres-stop", type=float, default=30.0, help="seconds")
    parser.add_argument("--no-kafka-restart", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = run(Plan(args.positions, args.markers, args.rate, restart_kafka=not args.no_kafka_restart,
                      postgres_stop_seconds=args.postgres_stop, seed=args.seed))
    print(report.table())
    for event in report.events:
        print(f"event: {event}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
