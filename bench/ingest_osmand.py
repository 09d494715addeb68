"""HTTP ingestion throughput of one worker, measured with wrk on loopback.

``osmand``: Traccar Client query-mode reports with a valid device secret; ``traccar``: a
Traccar server's forwarded JSON (``POST /ingest/traccar``) with a gateway token, 100
trackers. A 200 means the broker acknowledged the position. Prints a table. Needs Debian's
wrk and the local services.

    make bench-ingest
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tracker.testing import Stack, run_sync
from tracker.accounts.devices import Registry

DURATION = "15s"
CONNECTIONS = (1, 8, 32, 64)

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


def main() -> None:
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
        worker = stack.worker().start()
        worker.wait_ready()
        scripts = {"osmand": (f'SECRET = "{secret}"\n' + LUA), "traccar": (f'TOKEN = "{token}"\n' + TRACCAR_LUA)}
        rows = []
        for protocol, text in scripts.items():
            script = stack.tmp / f"{protocol}.lua"
            script.write_text(text)
            for connections in CONNECTIONS:
                print(f"bench: {protocol}: wrk -t1 -c{connections} -d{DURATION}", file=sys.stderr, flush=True)
                out = subprocess.run(
                    ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}", "--latency", "-s", str(script), worker.url],
                    capture_output=True, text=True, check=True,
                ).stdout
                rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                p50 = re.search(r"50%\s+(\S+)", out).group(1)
                p99 = re.search(r"99%\s+(\S+)", out).group(1)
                errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                rows.append((protocol, connections, rate, p50, p99, int(errors.group(1)) if errors else 0))
        print(f"{'endpoint':<16}  {'connections':>11}  {'requests/s':>10}  {'p50':>8}  {'p99':>8}  {'non-200':>7}")
        for protocol, connections, rate, p50, p99, errors in rows:
            print(f"{'/ingest/' + protocol:<16}  {connections:>11}  {rate:>10,.0f}  {p50:>8}  {p99:>8}  {errors:>7}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
