"""OsmAnd ingestion throughput of one worker, measured with wrk on loopback.

Every request is a Traccar Client query-mode report with a valid secret; a 200 means the
broker acknowledged it. Prints a table. Needs Debian's wrk and the local services.

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
from tracker.devices import Registry

DURATION = "15s"
CONNECTIONS = (1, 8, 32)

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local path = "/ingest/osmand/" .. SECRET .. "?id=bench-phone&lat=45." .. (counter % 1000)
    .. "&lon=14.2&speed=10&bearing=90&batt=80&timestamp=" .. (1700000000000 + counter)
  return wrk.format("GET", path)
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

        secret = run_sync(register())
        worker = stack.worker().start()
        worker.wait_ready()
        script = stack.tmp / "osmand.lua"
        script.write_text(f'SECRET = "{secret}"\n' + LUA)
        rows = []
        for connections in CONNECTIONS:
            print(f"bench: wrk -t1 -c{connections} -d{DURATION}", file=sys.stderr, flush=True)
            out = subprocess.run(
                ["wrk", "-t1", f"-c{connections}", f"-d{DURATION}", "--latency", "-s", str(script), worker.url],
                capture_output=True, text=True, check=True,
            ).stdout
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p50 = re.search(r"50%\s+(\S+)", out).group(1)
            p99 = re.search(r"99%\s+(\S+)", out).group(1)
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            rows.append((connections, rate, p50, p99, int(errors.group(1)) if errors else 0))
        print(f"{'connections':>11}  {'requests/s':>10}  {'p50':>8}  {'p99':>8}  {'non-200':>7}")
        for connections, rate, p50, p99, errors in rows:
            print(f"{connections:>11}  {rate:>10,.0f}  {p50:>8}  {p99:>8}  {errors:>7}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
