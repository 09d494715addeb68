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
    """ms from produce to visible at /api/markers/{id}, for probe markers among the load.

    One poller thread asks for the pending probes over one keep-alive connection, so the
    measuring adds little load to the worker it measures.
    """
    stack = fresh_stack()
    worker = stack.worker().start()
    worker.wait_ready()
    samples: list[float] = []
    pending: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()
    done = threading.Event()
    poller = threading.Thread(target=_poll, args=(worker.web_port, pending, lock, samples, done), daemon=True)
    poller.start()
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
                    future = await producer.send(stack.settings.topic, key=probe.encode(), value=orjson.dumps(
                        {"marker_id": probe, "lat": 1.0, "lon": 1.0, "time": fix_time}))
                    sent_at = time.monotonic()
                    with lock:
                        pending[probe] = (fix_time, sent_at)
                    await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick_started)))
                    del future
            finally:
                await producer.stop()

        _run(load_and_probe())
        time.sleep(5)
    finally:
        done.set()
        poller.join(10)
        stack.close()
    return samples


def _poll(port: int, pending, lock, samples: list[float], done: threading.Event) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not done.is_set():
        with lock:
            waiting = list(pending.items())
        if not waiting:
            time.sleep(0.005)
            continue
        for probe, (fix_time, sent_at) in waiting:
            try:
                conn.request("GET", f"/api/markers/{probe}")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            if response.status == 200 and orjson.loads(body)["time"] >= fix_time:
                with lock:
                    if pending.get(probe, (None,))[0] == fix_time:
                        del pending[probe]
                        samples.append((time.monotonic() - sent_at) * 1000)


def _pct(samples: list[float], p: float) -> float:
    return samples[min(len(samples) - 1, int(p / 100 * len(samples)))] if samples else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="positions per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-rate", type=float, default=2_000, help="positions/s during the latency probe")
    parser.add_argument("--latency-only", action="store_true", help="measure (4) alone")
    args = parser.parse_args()
    if args.latency_only:
        lat = sorted(latency(rate=args.latency_rate))
        print(f"latency at {args.latency_rate:,.0f}/s, {len(lat)} of 400 probes seen: p50 {_pct(lat, 50):.0f} ms, "
              f"p95 {_pct(lat, 95):.0f} ms, p99 {_pct(lat, 99):.0f} ms")
        return
    results: dict[str, list[float]] = {"ceiling": [], "one": [], "two": []}
    for run in range(1, args.runs + 1):
        say(f"run {run}/{args.runs}: raw aiokafka consumer, {args.n:,} positions")
        results["ceiling"].append(ceiling(args.n))
        say(f"run {run}/{args.runs}: pipeline, one worker")
        results["one"].append(pipeline(args.n, 1))
        say(f"run {run}/{args.runs}: pipeline, two workers")
        results["two"].append(pipeline(args.n, 2))
    say(f"latency at {args.latency_rate:,.0f} positions/s")
    lat = sorted(latency(rate=args.latency_rate))
    ceiling_rate, one, two = (statistics.median(results[k]) for k in ("ceiling", "one", "two"))

    def pct(p: float) -> float:
        return _pct(lat, p)

    rows = [
        ("1. ceiling: raw aiokafka consume + decode", f"{ceiling_rate:,.0f} positions/s", ""),
        ("2. pipeline, one worker", f"{one:,.0f} positions/s", f"{one / ceiling_rate:.3f} of (1)"),
        ("3. pipeline, two workers", f"{two:,.0f} positions/s", f"{two / one:.2f}x one worker"),
        (f"4. latency at {args.latency_rate:,.0f}/s ({len(lat)} of 400 probes seen)", f"p50 {pct(50):.0f} ms",
         f"p95 {pct(95):.0f} ms, p99 {pct(99):.0f} ms"),
    ]
    print(f"N = {args.n:,}, median of {args.runs} run(s)")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>22}  {note}")


if __name__ == "__main__":
    main()
