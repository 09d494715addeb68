"""The pipeline against the raw Kafka client, on the local real services. Prints a table.

    make bench                   (N = 200,000, median of 3 runs; then bench.map_and_history)
    python -m bench.pipeline -n 50000 --runs 1

1. ceiling: a raw aiokafka consumer reading and decoding N positions
2. pipeline: one worker, from the first produce to the last history row
3. two workers: the same with two
4. latency: at a steady 2,000 positions/s, produce until visible at /api/markers/{id}
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from tests.integration.harness import Stack, _run, wait_for
from tracker.kafka import positions_producer

MARKERS = 1_000


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def positions(n: int, prefix: str = "b") -> list[tuple[bytes, bytes]]:
    start = int(time.time() * 1000) - n - 3_600_000
    out = []
    for i in range(n):
        marker = f"{prefix}{i % MARKERS:04d}"
        out.append((marker.encode(), orjson.dumps({
            "marker_id": marker, "lat": 45 + (i % 997) / 10_000, "lon": 14 + (i % 991) / 10_000,
            "time": start + i, "speed": 5.0, "heading": 90.0, "battery": 80.0})))
    return out


def fresh_stack() -> Stack:
    return Stack.create(Path(tempfile.mkdtemp(prefix="bench-")))


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
                    orjson.loads(message.value)
                seen += len(messages)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def ceiling(n: int) -> float:
    stack = fresh_stack()
    stack.send(positions(n))
    return _run(_consume_all(stack, n))


def pipeline(n: int, workers: int) -> float:
    stack = fresh_stack()
    try:
        started_workers = [stack.worker().start() for _ in range(workers)]
        for worker in started_workers:
            worker.wait_ready()
        if workers > 1:
            wait_for(lambda: all(w.health() and w.health()["partitions"] for w in started_workers), 120,
                     "every worker to own partitions")
        records = positions(n)
        started = time.perf_counter()
        stack.send(records)
        last = [0, time.monotonic()]

        def done():
            count = stack.history_count()
            if count // 50_000 != last[0] // 50_000:
                say(f"  {count:,} rows")
            last[0] = count
            return count >= n

        wait_for(done, 3600, f"{n:,} rows", interval=0.5)
        return n / (time.perf_counter() - started)
    finally:
        stack.close()


def latency(rate: float = 2_000, seconds: float = 20, probes: int = 20) -> list[float]:
    """ms from produce to visible at /api/markers/{id}, for probe markers among the load."""
    stack = fresh_stack()
    worker = stack.worker().start()
    worker.wait_ready()
    samples: list[float] = []
    try:
        async def load_and_probe() -> None:
            producer = positions_producer(stack.settings)
            await producer.start()
            background = positions(int(rate * seconds), prefix="l")
            per_tick = int(rate / 20)
            try:
                for tick in range(int(seconds * 20)):
                    tick_started = time.monotonic()
                    for key, value in background[tick * per_tick:(tick + 1) * per_tick]:
                        await producer.send(stack.settings.topic, key=key, value=value)
                    probe = f"probe-{tick % probes}"
                    fix_time = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
                    sent_at = time.monotonic()
                    await producer.send(stack.settings.topic, key=probe.encode(), value=orjson.dumps(
                        {"marker_id": probe, "lat": 1.0, "lon": 1.0, "time": fix_time}))
                    threading.Thread(target=_await_visible, args=(worker.url, probe, fix_time, sent_at, samples),
                                     daemon=True).start()
                    await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick_started)))
            finally:
                await producer.stop()

        _run(load_and_probe())
        time.sleep(3)
    finally:
        stack.close()
    return samples


def _await_visible(url: str, marker: str, fix_time: str, sent_at: float, samples: list[float]) -> None:
    deadline = sent_at + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/markers/{marker}", timeout=5) as response:
                if orjson.loads(response.read())["time"] >= fix_time:
                    samples.append((time.monotonic() - sent_at) * 1000)
                    return
        except OSError:
            pass
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="positions per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"ceiling": [], "one": [], "two": []}
    for run in range(1, args.runs + 1):
        say(f"run {run}/{args.runs}: raw aiokafka consumer, {args.n:,} positions")
        results["ceiling"].append(ceiling(args.n))
        say(f"run {run}/{args.runs}: pipeline, one worker")
        results["one"].append(pipeline(args.n, 1))
        say(f"run {run}/{args.runs}: pipeline, two workers")
        results["two"].append(pipeline(args.n, 2))
    say("latency at 2,000 positions/s")
    lat = sorted(latency())
    ceiling_rate, one, two = (statistics.median(results[k]) for k in ("ceiling", "one", "two"))

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")

    rows = [
        (f"1. ceiling: raw aiokafka consume + decode", f"{ceiling_rate:,.0f} positions/s", ""),
        ("2. pipeline, one worker", f"{one:,.0f} positions/s", f"{one / ceiling_rate:.3f} of (1)"),
        ("3. pipeline, two workers", f"{two:,.0f} positions/s", f"{two / one:.2f}x one worker"),
        (f"4. latency at 2,000/s ({len(lat)} probes)", f"p50 {pct(50):.0f} ms",
         f"p95 {pct(95):.0f} ms, p99 {pct(99):.0f} ms"),
    ]
    print(f"N = {args.n:,}, median of {args.runs} run(s)")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")


if __name__ == "__main__":
    main()
