"""Chaos: two workers take a stream while workers are killed, Kafka restarts and Postgres
stops; afterwards nothing may be lost or doubled, ``latest`` must be right, the events must
equal an offline computation over the stored history (the same geofences, the same rules),
and the trips and stops must equal what ``tracker journeys rebuild`` finds in it.

    make chaos                      (500,000 positions, 1,000 markers, the full schedule)
    python -m bench.chaos --help    (smaller runs)

Exits 1 if any valid position is missing from Postgres, a row is doubled, ``latest`` is
wrong for a marker, or an event, trip or stop differs from its offline computation. The test suite runs a short version (tests/integration/test_chaos.py).
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

from agents.journeys import IDLE_CHECK_SECONDS, IDLE_GRACE_SECONDS
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
    events_checked: int = 0
    events_wrong: int = 0
    journeys_checked: int = 0
    journeys_wrong: int = 0
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicates == 0 and self.latest_wrong == 0 and self.stored == self.expected
                and self.events_wrong == 0 and self.journeys_wrong == 0)

    def table(self) -> str:
        rows = [
            ("positions sent (acknowledged by Kafka)", f"{self.sent:,}"),
            ("distinct valid positions expected", f"{self.expected:,}"),
            ("rows in Postgres", f"{self.stored:,}"),
            ("lost positions", f"{self.lost:,}"),
            ("duplicate rows", f"{self.duplicates:,}"),
            ("markers whose latest is wrong", f"{self.latest_wrong:,}"),
            ("events (offline computation)", f"{self.events_checked:,}"),
            ("events missing or extra", f"{self.events_wrong:,}"),
            ("trips and stops (rebuild)", f"{self.journeys_checked:,}"),
            ("trips and stops differing", f"{self.journeys_wrong:,}"),
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
    _add_geofences(stack)
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


#: Bands of latitude the markers' random walks cross now and then: enter and exit events.
GEOFENCES = [(44.0, 45.0), (45.5, 46.0)]


def _add_geofences(stack: Stack) -> None:
    """The geofences, in Postgres before the workers start (they load them at their start)."""
    features = [{"type": "Feature", "properties": {"name": f"band-{south}"}, "geometry": {
        "type": "Polygon", "coordinates": [[[13.0, south], [16.0, south], [16.0, north], [13.0, north],
                                            [13.0, south]]]}} for south, north in GEOFENCES]
    path = stack.tmp / "geofences.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    subprocess.run([sys.executable, "-m", "tracker.cli", "geofences", "import", str(path)], env=stack.env,
                   check=True, capture_output=True)


def _verify(stack: Stack, workers, expected, newest, report: Report) -> None:
    rows = stack.query("SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions")
    present = set(rows)
    report.stored = len(rows)
    report.duplicates = len(rows) - len(present)
    report.lost = len(expected - present)
    latest = settle_latest(workers[0], newest)
    report.latest_wrong = sum(1 for marker, position in newest.items() if latest.get(marker) != position)
    _verify_events(stack, report)
    _verify_journeys(stack, report)


def _offline_events(stack: Stack) -> set[str]:
    """The ids of the events the stored history gives, computed here by the events model
    (``online`` and ``offline`` left out: they depend on the wall clock)."""
    from tracker.events.model import Detector, Limits, MarkerState
    from tracker.geofences.model import GeofenceIndex, parse_feature

    settings = stack.settings
    features = stack.query("SELECT geofence_id, feature FROM geofences ORDER BY geofence_id")
    detector = Detector(GeofenceIndex(parse_feature(feature, gid) for gid, feature in features),
                        Limits(settings.speed_limit, settings.overspeed_reset_seconds, settings.low_battery))
    fixes = [[marker_id, time_us, lat, lon, speed, None, None, None, battery, None, None, time_us]
             for marker_id, time_us, lat, lon, speed, battery in stack.query(
                 "SELECT marker_id, (extract(epoch FROM fix_time) * 1000000)::bigint, lat, lon, speed, battery "
                 "FROM positions ORDER BY marker_id, fix_time")]
    events, _ = detector.apply_fixes(fixes, lambda marker_id: MarkerState())
    return {event["id"] for event in events if event["type"] not in ("online", "offline")}


def _verify_events(stack: Stack, report: Report) -> None:
    wait_for(lambda: stack.caught_up("-events", stack.settings.events_topic), 120, "the events sink")
    offline = _offline_events(stack)
    stored = {event_id for (event_id,) in stack.query(
        "SELECT event_id FROM events WHERE type NOT IN ('online', 'offline')")}
    report.events_checked = len(offline)
    report.events_wrong = len(offline ^ stored)


def _journeys(stack: Stack) -> set[tuple]:
    return (set(stack.query("SELECT 'trip', marker_id, start_time, end_time, round(distance_m::numeric, 1) "
                            "FROM trips"))
            | set(stack.query("SELECT 'stop', marker_id, start_time, end_time, 0 FROM stops")))


def _verify_journeys(stack: Stack, report: Report) -> None:
    settings = stack.settings
    # The last trip of each marker ends on the wall clock: IDLE_GRACE_SECONDS after the
    # marker's last report, at the idle timer's next look (every IDLE_CHECK_SECONDS).
    time.sleep(IDLE_GRACE_SECONDS + 2 * IDLE_CHECK_SECONDS)
    wait_for(lambda: stack.caught_up("-journeys", settings.journeys_topic)
             and not stack.query("SELECT 1 FROM journeys_dirty"), 300, "the journeys sink")
    live = _journeys(stack)
    rebuilt = subprocess.run([sys.executable, "-m", "tracker.cli", "journeys", "rebuild"], env=stack.env,
                             capture_output=True, text=True, timeout=600)
    if rebuilt.returncode != 0:
        raise RuntimeError(f"tracker journeys rebuild failed: {rebuilt.stderr.strip()}")
    offline = _journeys(stack)
    report.journeys_checked = len(offline)
    report.journeys_wrong = len(live ^ offline)


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
