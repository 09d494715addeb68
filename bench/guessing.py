"""A password-guessing flood sent straight to a worker (no nginx), as an attacker would:
``python -m bench.guessing`` (``make bench-security``).

One worker with markers moving. For ``--seconds`` each, three phases:

1. quiet: nothing but the measures;
2. one address: ``--connections`` keep-alive connections from 127.0.0.1 sending HTTP Basic
   with random passwords for a real user, ``--rate`` guesses a second in all (50: what one
   worker's scrypt answered before the limits);
3. many addresses: the same, each connection from its own loopback address (127.0.10.x),
   a few guesses each with random user names, then another address: what the per-address
   delay does not stop, the KDF's queue must.

The flood runs in processes of its own, paced: on one machine, a flood as fast as Python
can send would measure the attacker's CPU, not the worker's.

Measured in each phase: the guesses answered per second and by status, the worker's CPU,
``/health`` (p50, max), a correct sign-in (``POST /login`` from an address that signed in
before, p50, max), and produce → latest (a fix sent, until ``/api/markers/{id}`` has it, p50,
max). The worker must keep /health and the stream as fast as when quiet.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import orjson

from bench.report import print_table
from tracker.testing import Stack

USER, PASSWORD = "flooded", "the-right-password"


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ask(port: int, method: str, path: str, source: str = "127.0.0.1", headers: dict | None = None,
        body: bytes | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Flood:
    """``connections`` connections guessing until stopped, in processes of their own (so that
    the measures, in this one, are not slowed by them); ``spread``: each connection from
    addresses of its own, changed every few guesses."""

    PROCESSES = 4

    def __init__(self, port: int, connections: int, spread: bool, rate: float) -> None:
        self.port, self.connections, self.spread = port, connections, spread
        self.stop = multiprocessing.Event()
        self.results: multiprocessing.Queue = multiprocessing.Queue()
        self.processes = [multiprocessing.Process(target=_guessing_process, daemon=True, args=(
            port, range(n, connections, self.PROCESSES), spread, connections / rate, self.stop, self.results))
            for n in range(self.PROCESSES)]

    def start(self) -> "Flood":
        for process in self.processes:
            process.start()
        return self

    def finish(self) -> tuple[Counter, list[str]]:
        """Stop; the answers by status and a few of the bodies of the refusals."""
        self.stop.set()
        statuses, samples = Counter(), []
        for _ in self.processes:
            counted, seen = self.results.get(timeout=60)
            statuses.update(counted)
            samples += seen
        for process in self.processes:
            process.join(10)
        return statuses, samples


def _guessing_process(port: int, numbers, spread: bool, every: float, stop, results) -> None:
    statuses, samples, lock = Counter(), {}, threading.Lock()

    def guess(n: int) -> None:
        address, tries, conn = 0, 0, None
        next_at = time.monotonic() + every * n / len(numbers) / 4
        while not stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += every
            if conn is None:
                source = f"127.0.{10 + n % 200}.{1 + address % 250}" if spread else "127.0.0.1"
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
            user = secrets.token_hex(4) if spread else USER
            try:
                conn.request("GET", "/api/markers", headers=basic(user, secrets.token_urlsafe(9)))
                response = conn.getresponse()
                body = response.read()
                status = response.status
            except OSError:
                status, body, conn = 0, b"", None
            with lock:
                statuses[status] += 1
                samples.setdefault(status, body[:120].decode(errors="replace"))
            tries += 1
            if spread and tries % 3 == 0:  # a few guesses from each address
                address += 1
                if conn is not None:
                    conn.close()
                conn = None

    threads = [threading.Thread(target=guess, args=(n,), daemon=True) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((statuses, [f"{status}: {body}" for status, body in samples.items() if status not in (401, 429)]))


def measure(stack: Stack, worker, seconds: float, login_source: str) -> dict:
    port = worker.web_port
    health, logins, lags = [], [], []
    form = urllib.parse.urlencode({"user": USER, "password": PASSWORD}).encode()
    deadline = time.monotonic() + seconds
    cpu_before, started = worker.cpu_seconds(), time.monotonic()
    n = 0
    while time.monotonic() < deadline:
        health.append(ask(port, "GET", "/health")[1])
        status, took = ask(port, "POST", "/login", login_source,
                           {"Content-Type": "application/x-www-form-urlencoded"}, form)
        if status == 303:
            logins.append(took)
        n += 1
        marker, t = f"probe-{n % 20}", time.time()
        stack.send([(marker.encode(), orjson.dumps({"marker_id": marker, "lat": 45.0, "lon": 14.0 + n * 1e-5,
                                                     "time": t}))])
        sent = time.monotonic()
        while time.monotonic() - sent < 10:
            status, body = worker.get(f"/api/markers/{marker}")
            if status == 200 and abs(body.get("lon", 0) - (14.0 + n * 1e-5)) < 1e-9:
                lags.append(time.monotonic() - sent)
                break
            time.sleep(0.01)
        time.sleep(0.2)
    cpu = (worker.cpu_seconds() - cpu_before) / (time.monotonic() - started)
    return {"health": health, "logins": logins, "lags": lags, "cpu": cpu}


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{statistics.median(values) * 1000:,.0f} / {max(values) * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0, help="guesses a second, in all")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-guessing-")))
    try:
        stack.user(USER, "viewer", ["probe-*"], password=PASSWORD)
        worker = stack.worker().start()
        worker.wait_ready()
        login_source = "127.0.5.5"
        form = urllib.parse.urlencode({"user": USER, "password": PASSWORD}).encode()
        assert ask(worker.web_port, "POST", "/login", login_source,
                   {"Content-Type": "application/x-www-form-urlencoded"}, form)[0] == 303  # a known address
        rows = []
        for phase, spread in (("quiet", None), ("one address", False), ("many addresses", True)):
            progress(f"{phase}: {args.seconds:.0f} s")
            flood = Flood(worker.web_port, args.connections, spread, args.rate).start() if spread is not None else None
            flood_started = time.monotonic()
            result = measure(stack, worker, args.seconds, login_source)
            if flood is not None:
                statuses, samples = flood.finish()
                rate = sum(statuses.values()) / (time.monotonic() - flood_started)
                answered = ", ".join(f"{status or 'error'}: {count:,}" for status, count in sorted(statuses.items()))
                rows.append((f"{phase}: guesses answered", f"{rate:,.0f}/s", answered))
                for sample in samples:
                    progress(f"{phase}: for example {sample}")
            rows += [(f"{phase}: worker CPU", f"{result['cpu']:.2f} cores", ""),
                     (f"{phase}: /health p50 / max", summary(result["health"]), ""),
                     (f"{phase}: correct sign-in p50 / max", summary(result["logins"]),
                      "POST /login from an address that signed in before"),
                     (f"{phase}: produce -> latest p50 / max", summary(result["lags"]), "")]
            time.sleep(2)
        print_table(rows, [])
    finally:
        stack.close()


if __name__ == "__main__":
    main()
