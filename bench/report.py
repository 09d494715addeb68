"""The benchmarks' one way of printing their figures: a table of (measure, result, detail),
under a line that dates it: when, at which commit, on what machine, with which command."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def progress(who: str, message: str) -> None:
    """A benchmark's progress, on stderr (the table goes to stdout)."""
    print(f"{who}: {message}", file=sys.stderr, flush=True)


def command() -> str:
    """The command line that runs this benchmark, as typed (``python -m bench.x ...``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None else f"python {sys.argv[0]}"
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _started() -> str:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (+ changes)"
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}, {os.cpu_count()} cores, "
            f"load average {_load()}")


#: When the benchmark started, at which commit, and the machine's load then (this module is
#: imported at the start of every benchmark).
STARTED = _started()


def stamp() -> str:
    """``started 2026-12-03 14:05 UTC, commit 59c9779 (+ changes), 2 cores, load average 5.6 7.4
    6.3; at the end 7.1 6.9 6.5``."""
    return f"started {STARTED}; at the end {_load()}"


def print_table(rows: list[tuple[str, str, str]], failures: list[str]) -> None:
    """Print the date line and the command, the rows, then each failure, and exit 1 if there
    was any."""
    print(stamp())
    print(f"$ {command()}")
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>{value_width}}  detail")
    for name, value, detail in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {detail}")
    for failure in failures:
        print(f"FAILED: {failure}")
    sys.exit(1 if failures else 0)
