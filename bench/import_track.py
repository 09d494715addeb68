"""The import benchmark on the local real services: ``tracker import`` of one long GPX track
end to end, then the command alone on every format it reads, and on a 1 GB Google Takeout
``Records.json``.

    python -m bench.import_track                  (100,000 points a file, the 1 GB Records.json)
    python -m bench.import_track --points 20000 --takeout-mb 100
    python -m bench.import_track --only formats   (or: e2e)

A GPX 1.1 file of a plausible moving track (a vehicle at 0 to 30 m/s, turning gently,
stopping now and then, one point a second, with elevations) is written to a temporary
folder; a fresh stack and one worker start, as ``bench.pipeline`` does; then ``tracker
import`` runs on the file as a separate process. End to end: from the command's start
until the last point's row is in Postgres ``positions``. Also the command's own send rate
(as it reports it), its wall time, and the file's parsing and encoding in this process.
The run checks its result: every point in ``positions`` once, with the file's own time
(by count and time span); it exits 1 otherwise.

Per format (``measure_formats``): a file of the same track written as each app writes it
(``bench/track_files.py``) in a temporary folder; ``tracker import`` runs on it as a
separate process against the broker (no worker: the command's own work), and its rate
(points over the command's wall time: both readings of the file, encoding, sending and
the broker's acknowledgements) and its peak resident memory (``VmHWM``) are reported. The
Takeout ``Records.json`` is generated at ``--takeout-mb`` (1,000 MB by default; the goal is a
peak under 200 MB), then deleted with the folder.
"""
from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.report import print_table
from bench.track_files import WRITERS, track, write_gpx, write_records_json
from tracker.testing import Stack, wait_for

TRACKER = str(Path(sys.executable).with_name("tracker"))
MARKER = "bench-import"
GOAL = 20_000  # points/s end to end
RSS_GOAL_MB = 200  # the importer's peak on the 1 GB Records.json


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def measure_import(points: int = 100_000) -> list[tuple[str, str, str]]:
    """(name, value, detail) rows: end to end, the command's send rate and wall time, and
    its reading and encoding of the file in this process."""
    from tracker.tracks.importer import check, records

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    path = folder / "track.gpx"
    first = (datetime.now(timezone.utc) - timedelta(seconds=points + 3_600)).replace(microsecond=0)
    say(f"writing a GPX 1.1 track of {points:,} points")
    write_gpx(path, track(points, first))
    size = path.stat().st_size

    started = time.perf_counter()
    encoded = sum(1 for _ in records(check([path], progress=False)[0], MARKER))
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


def run_import(stack: Stack, path: Path, marker: str, expected: int) -> tuple[float, float, str]:
    """``tracker import`` of one file: (seconds, peak RSS in MB, what it printed); raises if it
    fails or sends another count. The peak is the process's own (``VmHWM``, read every 50 ms
    until it ends), not the bench's, which a child's ``ru_maxrss`` would include."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        command = subprocess.Popen([TRACKER, "import", str(path), "--marker", marker], env=stack.env,
                                   stdout=out, stderr=err, text=True)
        peak_kb = 0
        while command.poll() is None:
            peak_kb = max(peak_kb, _peak_kb(command.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        printed, problems = out.read(), err.read()
    if command.returncode != 0:
        raise AssertionError(f"tracker import {path.name} failed ({command.returncode}): {problems.strip()[-300:]}")
    if f"imported {expected} points" not in printed:
        raise AssertionError(f"tracker import {path.name} did not send {expected} points: {printed.strip()}")
    return seconds, peak_kb / 1024, printed


def _peak_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except (OSError, ValueError):
        return 0


def measure_formats(points: int = 100_000, takeout_mb: int = 1_000) -> list[tuple[str, str, str]]:
    """(name, value, detail) rows: the command alone, one file per format, then the large
    Records.json."""
    folder = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    first = (datetime.now(timezone.utc) - timedelta(days=30)).replace(microsecond=0)
    rows = []
    stack = Stack.create(folder)
    try:
        fixes = track(points, first)
        for name, (suffix, writer) in WRITERS.items():
            path = folder / f"track{suffix}"
            sent = writer(path, fixes)
            size = path.stat().st_size
            say(f"importing {sent:,} points of {name} ({size / 1e6:.1f} MB)")
            seconds, rss, _ = run_import(stack, path, f"bench-{name.lower().replace(' ', '-')}"[:64], sent)
            path.unlink()
            rows.append((f"   {name}", f"{sent / seconds:,.0f} points/s",
                         f"{sent:,} points, {size / 1e6:.1f} MB: {seconds:.1f} s; peak RSS {rss:,.0f} MB"))
        if takeout_mb:
            path = folder / "Records.json"
            say(f"writing a {takeout_mb:,} MB Records.json")
            count = write_records_json(path, takeout_mb * 1_000_000, first - timedelta(days=3_000))
            size = path.stat().st_size
            say(f"importing {count:,} records ({size / 1e6:,.0f} MB)")
            seconds, rss, printed = run_import(stack, path, "bench-takeout", count)
            rows.append((f"   Google Takeout Records.json, {size / 1e9:.2f} GB", f"{count / seconds:,.0f} points/s",
                         f"{count:,} points: {seconds:.0f} s; peak RSS {rss:,.0f} MB "
                         f"(goal < {RSS_GOAL_MB}: {'met' if rss < RSS_GOAL_MB else 'NOT met'})"))
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)
    return [("13. tracker import alone, per format (both readings, encoding, sending)", "", "")] + rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--takeout-mb", type=int, default=1_000, help="the Records.json's size (0: none)")
    parser.add_argument("--only", choices=("e2e", "formats"))
    args = parser.parse_args()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, python -m bench.import_track "
          f"{shlex.join(sys.argv[1:])}".rstrip())
    rows = []
    try:
        if args.only != "formats":
            rows += measure_import(args.points)
        if args.only != "e2e":
            rows += measure_formats(args.points, args.takeout_mb)
    except AssertionError as error:
        print(f"FAILED: {error}")
        sys.exit(1)
    print_table(rows, [])


if __name__ == "__main__":
    main()
