"""Standby replicas: what they cost and what they buy, in one run.

    python -m bench.failover [--markers 2000] [--rate 2000] [--seconds 20]

For 0 and 1 standby replicas (``TRACKER_STANDBY_REPLICAS``), three workers take a steady
stream; the table gives the workers' CPU per 10,000 positions while the stream runs, and
the time from a ``kill -9`` of one worker until another answers for every partition again
(``/api/markers`` complete, not partial) with the stream still running.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.report import print_table
from tracker.stream.producer import positions_producer
from tracker.testing import Stack, wait_for


def say(message: str) -> None:
    print(f"failover: {message}", file=sys.stderr, flush=True)


class Stream(threading.Thread):
    """Positions for ``markers`` markers at ``rate`` a second until stopped."""

    def __init__(self, stack: Stack, markers: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.markers, self.rate = stack, markers, rate
        self.sent = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._produce())

    async def _produce(self) -> None:
        producer = positions_producer(self.stack.settings)
        await producer.start()
        topic, start = self.stack.settings.topic, time.time() - 3600
        tick = 0.1
        try:
            while not self.stopping.is_set():
                began = time.monotonic()
                futures = []
                for _ in range(int(self.rate * tick)):
                    m, n = self.sent % self.markers, self.sent // self.markers
                    value = orjson.dumps({"marker_id": f"fo-{m:05d}", "lat": 45.0 + n * 1e-5, "lon": 14.0 + m * 1e-4,
                                          "time": start + n})
                    futures.append(await producer.send(topic, key=f"fo-{m:05d}".encode(), value=value))
                    self.sent += 1
                await asyncio.gather(*futures)
                await asyncio.sleep(max(0.0, tick - (time.monotonic() - began)))
        finally:
            await producer.stop()


def measure(standby: int, markers: int, rate: float, seconds: float) -> tuple[float, float]:
    """(CPU seconds of the workers per 10,000 positions, seconds from kill -9 to every partition served)."""
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="failover-")))
    try:
        workers = [stack.worker(TRACKER_STANDBY_REPLICAS=str(standby)).start() for _ in range(3)]
        for worker in workers:
            worker.wait_ready()
        stream = Stream(stack, markers, rate)
        stream.start()
        time.sleep(5)  # the stream settles
        cpu, sent = sum(w.cpu_seconds() for w in workers), stream.sent
        time.sleep(seconds)
        cpu, sent = sum(w.cpu_seconds() for w in workers) - cpu, stream.sent - sent
        say(f"standby {standby}: {sent:,} positions in {seconds:.0f} s, {cpu:.1f} CPU seconds")
        victim, survivor = workers[0], workers[1]
        victim.kill()
        killed = time.monotonic()

        def complete() -> bool:
            status, headers, body = survivor.request("GET", "/api/markers", timeout=10)
            return status == 200 and headers.get("X-Tracker-Partial") is None and len(body) >= markers

        wait_for(complete, 300, "every partition served again", interval=0.2)
        failover = time.monotonic() - killed
        say(f"standby {standby}: every partition served again {failover:.1f} s after the kill")
        stream.stopping.set()
        stream.join(30)
        return cpu / sent * 10_000, failover
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markers", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=2_000.0, help="positions a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the CPU is measured")
    args = parser.parse_args()
    rows = []
    for standby in (0, 1):
        cpu, failover = measure(standby, args.markers, args.rate, args.seconds)
        rows.append((f"{standby} standby replica{'s' if standby != 1 else ''}: workers' CPU per 10,000 positions",
                     f"{cpu:.2f} s", f"three workers, {args.rate:,.0f} positions/s"))
        rows.append((f"{standby} standby replica{'s' if standby != 1 else ''}: kill -9, every partition served again",
                     f"{failover:.1f} s", "the stream running"))
    print_table(rows, [])


if __name__ == "__main__":
    main()
