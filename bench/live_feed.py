"""Live viewers who cannot slow each other: ``python -m bench.live_feed`` (``make bench-security``).

One worker; ``--markers`` markers each sending a fix a second (3,000 changes/s by default).
``--readers`` viewers read ``/api/live`` and time every row they get (from the fix's time,
set when it is sent, to its arrival). Phases of ``--seconds`` each:

1. the readers alone;
2. the readers and ``--stalled`` viewers that never read (each account has at most
   TRACKER_LIVE_MAX_PER_ACCOUNT streams and each address TRACKER_MAX_CONNECTIONS_PER_ADDRESS
   connections, so they come from as many accounts and loopback addresses as they need);
   a stalled viewer that is dropped connects again at once, as an attacker would;
3. ``--stalled`` connections of one token: how many the worker takes.

Measured: the readers' lag (p50, p99, max), the worker's memory (RSS) and CPU.
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.report import print_table
from tracker.testing import Stack, wait_for


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _produce(settings_env: dict, markers: int, stop) -> None:
    """Each marker a fix a second, its time the moment it is sent, until ``stop``."""
    import asyncio

    from tracker.settings import Settings
    from tracker.stream.producer import positions_producer

    async def run() -> None:
        config = Settings.from_env(settings_env)
        producer = positions_producer(config)
        await producer.start()
        try:
            step = 0
            while not stop.is_set():
                started = time.time()
                for i in range(markers):
                    marker = f"feed-{i:05d}"
                    await producer.send(config.topic, key=marker.encode(), value=orjson.dumps(
                        {"marker_id": marker, "lat": 45 + (i % 100) / 1000, "lon": 14 + (i // 100) / 1000 + step * 1e-6,
                         "time": time.time()}))
                step += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.time() - started)))
        finally:
            await producer.stop()

    asyncio.run(run())


def open_stream(port: int, token: str, source: str = "127.0.0.1", rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    return sock


class Reader(threading.Thread):
    """One viewer that reads everything, timing each row from its fix time to its arrival."""

    def __init__(self, port: int, token: str) -> None:
        super().__init__(daemon=True)
        self.port, self.token = port, token
        self.lags: list[float] = []
        self.measuring = False
        self.stopped = False

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("GET", "/api/live", headers={"Authorization": f"Bearer {self.token}"})
        response = connection.getresponse()
        buffer = b""
        while not self.stopped:
            chunk = response.read1(1 << 20)
            if not chunk:
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\n\n")
            now = time.time()
            for message in messages:
                if self.measuring and b"event: update" in message:
                    data = orjson.loads(message.split(b"data: ", 1)[1])
                    self.lags.extend(now - row[3] / 1000 for row in data["m"])


def stalled_viewers(port: int, tokens: list[str], count: int, stop, opened) -> None:
    """``count`` viewers that read their headers and nothing more, each connecting again
    when the worker drops it; ``opened``: how many connections were made in all."""
    held: dict[int, socket.socket] = {}

    refused: dict[str, int] = {}

    def connect(n: int) -> None:
        try:
            sock = open_stream(port, tokens[n % len(tokens)], f"127.0.{20 + n // 100}.{1 + n % 100}", rcvbuf=4096)
            sock.settimeout(10)
            status = sock.recv(12)[9:12].decode()
        except OSError as exc:
            status = exc.__class__.__name__
        if status == "200":
            held[n] = sock
            with opened.get_lock():
                opened.value += 1
        else:
            held.pop(n, None)
            refused[status] = refused.get(status, 0) + 1

    started = time.monotonic()
    for n in range(count):
        connect(n)
    progress(f"{count} stalled viewers connected in {time.monotonic() - started:.1f} s; refused: {refused}")
    while not stop.is_set():
        for n in range(count):
            sock = held.get(n)
            dropped = sock is None
            if sock is not None:
                try:
                    sock.setblocking(False)
                    dropped = sock.recv(1, socket.MSG_PEEK) == b""
                except BlockingIOError:
                    dropped = False
                except OSError:
                    dropped = True
            if dropped:
                if sock is not None:
                    sock.close()
                connect(n)
        stop.wait(1.0)
    progress(f"stalled viewers refused in all: {refused}")
    for sock in held.values():
        sock.close()


def lags(readers: list[Reader]) -> str:
    values = sorted(value for reader in readers for value in reader.lags)
    if not values:
        return "no rows"
    return (f"{statistics.median(values) * 1000:,.0f} / {values[int(len(values) * 0.99)] * 1000:,.0f} / "
            f"{values[-1] * 1000:,.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markers", type=int, default=3_000)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--stalled", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-live-feed-")))
    stop = multiprocessing.Event()
    producer = multiprocessing.Process(target=_produce, args=(stack.env, args.markers, stop), daemon=True)
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        per_account = stack.settings.live_max_per_account
        accounts = -(-args.stalled // per_account)
        tokens = [stack.user(f"watcher-{n}", "viewer", ["feed-*"]) for n in range(accounts)]
        reader_tokens = [stack.user(f"reader-{n}", "viewer", ["feed-*"])
                         for n in range(-(-args.readers // per_account))]
        producer.start()
        wait_for(lambda: worker.get("/api/markers/feed-00000")[0] == 200, 60, "the markers in latest")
        readers = [Reader(worker.web_port, reader_tokens[n // per_account]) for n in range(args.readers)]
        for reader in readers:
            reader.start()
        time.sleep(5)  # snapshots taken, the stream steady
        rows = []

        def phase(name: str, seconds: float) -> None:
            for reader in readers:
                reader.lags.clear()
                reader.measuring = True
            cpu, started, peak = worker.cpu_seconds(), time.monotonic(), 0.0
            while time.monotonic() - started < seconds:
                peak = max(peak, rss_mb(worker.proc.pid))
                time.sleep(0.5)
            for reader in readers:
                reader.measuring = False
            cpu = (worker.cpu_seconds() - cpu) / (time.monotonic() - started)
            rows.extend([(f"{name}: readers' lag p50 / p99 / max", lags(readers), f"{args.readers} readers"),
                         (f"{name}: worker RSS, peak", f"{peak:,.0f} MB", ""),
                         (f"{name}: worker CPU", f"{cpu:.2f} cores", "")])

        baseline = rss_mb(worker.proc.pid)
        progress(f"{args.readers} readers, {args.markers:,} changes/s")
        phase("readers alone", args.seconds)
        progress(f"and {args.stalled} stalled viewers")
        halt, opened = multiprocessing.Event(), multiprocessing.Value("i", 0)
        stalled = multiprocessing.Process(target=stalled_viewers, daemon=True,
                                          args=(worker.web_port, tokens, args.stalled, halt, opened))
        stalled.start()
        time.sleep(5)
        phase(f"with {args.stalled} stalled viewers", args.seconds)
        halt.set()
        stalled.join(30)
        rows.append((f"with {args.stalled} stalled viewers: streams opened", f"{opened.value:,}",
                     "each one dropped is opened again"))
        rows.append(("worker RSS before the stalled viewers", f"{baseline:,.0f} MB", ""))

        progress(f"{args.stalled} connections of one token")
        socks, statuses = [], {}
        for n in range(args.stalled):
            sock = open_stream(worker.web_port, tokens[0], f"127.0.{30 + n // 100}.{1 + n % 100}")
            sock.settimeout(10)
            try:
                status = sock.recv(12)[9:12].decode()
            except OSError:
                status = "error"
            statuses[status] = statuses.get(status, 0) + 1
            socks.append(sock)
        for sock in socks:
            sock.close()
        rows.append((f"{args.stalled} streams of one token", f"{statuses.get('200', 0)} served",
                     ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))))
        for reader in readers:
            reader.stopped = True
        print_table(rows, [])
    finally:
        stop.set()
        producer.join(10)
        stack.close()


if __name__ == "__main__":
    main()
