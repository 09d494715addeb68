"""HTTP ingestion throughput of one worker, measured with wrk on loopback.

``osmand``: Traccar Client query-mode reports with a valid device secret; ``traccar``: a
Traccar server's forwarded JSON (``POST /ingest/traccar``) with a gateway token, 100
trackers; ``batch``: ``POST /ingest/batch`` with a gateway token, 1,000 positions of 1,000
markers per request (a JSON array in the topic's format). Each runs against a worker of the
whole pipeline (``TRACKER_ROLE=all``), then against an ingest-only worker
(``TRACKER_ROLE=ingest``: HTTP only; the records wait in Kafka). A 200 means the broker
acknowledged every position of the request. Prints a table. Needs Debian's wrk and the local
services.

    make bench-ingest
    python -m bench.ingest_osmand [--duration 15s] [--only osmand batch] [--roles all ingest]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tracker.testing import Stack, run_sync
from tracker.accounts.devices import Registry

#: (endpoint, role) -> the connection counts measured
CONNECTIONS = {
    ("osmand", "all"): (1, 8, 32, 64),
    ("traccar", "all"): (1, 8, 32, 64),
    ("batch", "all"): (8,),
    ("osmand", "ingest"): (32, 64),
    ("traccar", "ingest"): (64,),
    ("batch", "ingest"): (8,),
}
BATCH_POSITIONS = 1000

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local path = "/ingest/osmand/" .. SECRET .. "?id=bench-phone&lat=45." .. (counter % 1000)
    .. "&lon=14.2&speed=10&bearing=90&batt=80&timestamp=" .. (1700000000000 + counter)
  return wrk.format("GET", path)
end
"""

TRACCAR_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"position":{"id":' .. counter .. ',"deviceId":' .. (counter % 100) .. ',"protocol":"gt06",'
    .. '"fixTime":"' .. os.date("!%Y-%m-%dT%H:%M:%S", 1700000000 + counter) .. '.000+00:00","valid":true,'
    .. '"latitude":45.' .. (counter % 1000) .. ',"longitude":14.2,"altitude":120.0,"speed":12.5,"course":90.0,'
    .. '"accuracy":0.0,"attributes":{"batteryLevel":80,"ignition":true,"motion":true,"sat":9}},'
    .. '"device":{"id":' .. (counter % 100) .. ',"name":"bench","uniqueId":"bench-tracker-' .. (counter % 100) .. '"}}'
  return wrk.format("POST", "/ingest/traccar", {["Authorization"] = "Bearer " .. TOKEN,
                                                ["Content-Type"] = "application/json"}, body)
end
"""

BATCH_LUA = """
request = function()
  return wrk.format("POST", "/ingest/batch", {["Authorization"] = "Bearer " .. TOKEN,
                                              ["Content-Type"] = "application/json"}, BODY)
end
"""


def batch_body() -> str:
    """1,000 positions of 1,000 markers, an hour ago, in the topic's format."""
    start = int(time.time()) - 3600
    return json.dumps([{"marker_id": f"bench-batch-{i}", "lat": 45.0 + i / 10_000, "lon": 14.2, "time": start + i,
                        "speed": 12.5, "heading": 90.0, "accuracy": 5.0, "battery": 80.0, "source": "bench"}
                       for i in range(BATCH_POSITIONS)], separators=(",", ":"))


def wrk(script: Path, url: str, connections: int, duration: str) -> tuple[float, str, str, int]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p50, p99, int(errors.group(1)) if errors else 0


def check_batch(url: str, token: str, body: str) -> None:
    """One request first: every position of the body must be accepted."""
    request = urllib.request.Request(url + "/ingest/batch", data=body.encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if answer["accepted"] != BATCH_POSITIONS:
        sys.exit(f"bench: /ingest/batch refused positions: {answer['rejected'][:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="15s", help="each wrk run (default 15s)")
    parser.add_argument("--only", nargs="+", choices=("osmand", "traccar", "batch"), default=("osmand", "traccar", "batch"))
    parser.add_argument("--roles", nargs="+", choices=("all", "ingest"), default=("all", "ingest"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is needed (apt-get install wrk)")
    stack = Stack.create(Path(tempfile.mkdtemp(prefix="bench-")))
    try:
        async def register():
            registry = await Registry.connect(stack.settings.database_url)
            try:
                return await registry.add("bench-phone", "wrk")
            finally:
                await registry.close()

        async def gateway():
            import psycopg

            from tracker.accounts import gateways
            from tracker.storage.schema import create_schema

            async with await psycopg.AsyncConnection.connect(stack.settings.database_url, autocommit=True) as conn:
                await create_schema(conn)
                return await gateways.add(conn, "bench-traccar")

        secret, token = run_sync(register()), run_sync(gateway())
        body = batch_body()
        scripts = {"osmand": f'SECRET = "{secret}"\n' + LUA, "traccar": f'TOKEN = "{token}"\n' + TRACCAR_LUA,
                   "batch": f'TOKEN = "{token}"\nBODY = [[{body}]]\n' + BATCH_LUA}
        rows = []
        for role in args.roles:
            worker = stack.worker(TRACKER_ROLE=role).start()
            worker.wait_ready()
            for endpoint in args.only:
                script = stack.tmp / f"{endpoint}.lua"
                script.write_text(scripts[endpoint])
                if endpoint == "batch":
                    check_batch(worker.url, token, body)
                for connections in CONNECTIONS[(endpoint, role)]:
                    print(f"bench: {endpoint}, role {role}: wrk -t1 -c{connections} -d{args.duration}",
                          file=sys.stderr, flush=True)
                    rows.append((endpoint, role, connections, *wrk(script, worker.url, connections, args.duration)))
            worker.stop()
        print(f"{'endpoint':<16}  {'role':<6}  {'connections':>11}  {'requests/s':>10}  {'positions/s':>11}  "
              f"{'p50':>8}  {'p99':>8}  {'non-200':>7}")
        for endpoint, role, connections, rate, p50, p99, errors in rows:
            positions = rate * (BATCH_POSITIONS if endpoint == "batch" else 1)
            print(f"{'/ingest/' + endpoint:<16}  {role:<6}  {connections:>11}  {rate:>10,.0f}  {positions:>11,.0f}  "
                  f"{p50:>8}  {p99:>8}  {errors:>7}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
