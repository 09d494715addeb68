"""The import benchmark on the local real services: ``tracker import`` of one long GPX track.

    python -m bench.import_track                  (100,000 points)
    python -m bench.import_track --points 20000

A GPX 1.1 file of a plausible moving track (a vehicle at 0 to 30 m/s, turning gently,
stopping now and then, one point a second, with elevations) is written to a temporary
folder; a fresh stack and one worker start, as ``bench.pipeline`` does; then ``tracker
import`` runs on the file as a separate process. End to end: from the command's start
until the last point's row is in Postgres ``positions``. Also the command's own send rate
(as it reports it), its wall time, and the file's parsing and encoding in this process.
The run checks its result: every point in ``positions`` once, with the file's own time
(by count and time span); it exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.report import print_table
from tracker.testing import Stack, wait_for

TRACKER = str(Path(sys.executable).with_name("tracker"))
MARKER = "bench-import"
GOAL = 20_000  # points/s end to end


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def write_track(path: Path, points: int, start: datetime, seed: int = 1) -> None:
    """A GPX 1.1 track of ``points`` points, one a second from ``start``."""
    rng = random.Random(seed)
    lat, lon, ele, heading, speed = 45.80, 15.97, 120.0, rng.uniform(0, 360), 0.0
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'
             '<gpx version="1.1" creator="bench.import_track" xmlns="http://www.topografix.com/GPX/1/1">\n'
             '<trk><name>bench</name><trkseg>\n']
    stop_left = 0
    for i in range(points):
        moment = start + timedelta(seconds=i)
        parts.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><ele>{ele:.1f}</ele>'
                     f'<time>{moment:%Y-%m-%dT%H:%M:%S}Z</time></trkpt>\n')
        if stop_left:  # standing at a light
            stop_left -= 1
            speed = 0.0
        elif rng.random() < 0.002:
            stop_left = rng.randrange(10, 60)
        else:
            speed = min(30.0, max(0.0, speed + rng.uniform(-1.0, 1.2)))
            heading = (heading + rng.gauss(0, 4)) % 360
        lat += speed * math.cos(math.radians(heading)) / 111_195.0
        lon += speed * math.sin(math.radians(heading)) / (111_195.0 * math.cos(math.radians(lat)))
        ele = min(2_000.0, max(0.0, ele + rng.uniform(-0.3, 0.3)))
    parts.append("</trkseg></trk>\n</gpx>\n")
    path.write_text("".join(parts))


def measure_import(points: int = 100_000) -> list[tuple[str, str, str]]:
    """(name, value, detail) rows: end to end, the command's send rate and wall time, and
    its reading and encoding of the file in this process."""
    from tracker.tracks.importer import plan, records

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    path = folder / "track.gpx"
    first = (datetime.now(timezone.utc) - timedelta(seconds=points + 3_600)).replace(microsecond=0)
    say(f"writing a GPX 1.1 track of {points:,} points")
    write_track(path, points, first)
    size = path.stat().st_size

    started = time.perf_counter()
    encoded = sum(1 for _ in records(plan([path]), MARKER))
    assert encoded == points
    parse_seconds = time.perf_counter() - started

    stack = Stack.create(folder)
    try:
        worker = stack.worker().start()
        worker.wait_ready()
        say(f"importing {points:,} points ({size / 1e6:.1f} MB) with one worker")
        started = time.perf_counter()
        command = subprocess.Popen([TRACKER, "import", str(path), "--marker", MARKER], env=stack.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        ended: list[float] = []

        def complete() -> bool:
            if not ended and command.poll() is not None:
                ended.append(time.perf_counter() - started)
                if command.returncode != 0:
                    return True
            return stack.history_count() >= points

        wait_for(complete, 300, f"{points:,} rows in positions", interval=0.05)
        end_to_end = time.perf_counter() - started
        out, err = command.communicate(timeout=60)
        command_seconds = ended[0] if ended else time.perf_counter() - started
        if command.returncode != 0:
            raise AssertionError(f"tracker import failed ({command.returncode}): {err.strip()}")
        reported = re.search(r"imported (\d+) points .* in ([\d.]+) s \(([\d,]+) points/s\)", out)
        rows, low, high = stack.query("SELECT count(DISTINCT fix_time), min(fix_time), max(fix_time) FROM positions "
                                      "WHERE marker_id = %s", MARKER)[0]
        if (rows, low, high) != (points, first, first + timedelta(seconds=points - 1)):
            raise AssertionError(f"positions holds {rows:,} times from {low} to {high}; expected {points:,} "
                                 f"from {first} to {first + timedelta(seconds=points - 1)}")
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)
    rate = points / end_to_end
    return [
        (f"12. tracker import of {points:,} GPX points, one worker: end to end", f"{rate:,.0f} points/s",
         f"{end_to_end:.2f} s from the command's start to the last row in positions "
         f"(goal >= {GOAL:,}: {'met' if rate >= GOAL else 'NOT met'})"),
        ("   the command's encode and send rate", f"{reported[3]} points/s" if reported else "?",
         f"encoding and sending {points:,} points took {reported[2]} s, as it reports" if reported else out.strip()),
        ("   the command's wall time", f"{command_seconds:.2f} s",
         "start of Python, reading and encoding the file, Kafka, sending (within 0.05 s)"),
        ("   reading and encoding the file", f"{points / parse_seconds:,.0f} points/s",
         f"{parse_seconds:.2f} s for {size / 1e6:.1f} MB, in this process"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    try:
        rows = measure_import(args.points)
    except AssertionError as error:
        print(f"FAILED: {error}")
        sys.exit(1)
    print_table(rows, [])


if __name__ == "__main__":
    main()
