"""``tracker journeys rebuild``: recompute trips, stops and spike flags from Postgres history."""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta, timezone

from tracker.cli.common import EXIT_USAGE, CommandError, on_database
from tracker.journeys.rebuild import Recomputed, markers, recompute
from tracker.journeys.records import RULES


def day_or_time(value: str, end: bool = False) -> datetime:
    """``2026-11-28`` (a UTC day: its start, or with ``end`` the start of the next day) or
    an ISO 8601 time; ValueError if neither."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    start = datetime.combine(day, datetime.min.time(), timezone.utc)
    if end and day == date.max:
        raise ValueError(f"{value!r} is the last day there is; give a time instead")
    return start + timedelta(days=1) if end else start


class Progress:
    """One line on stderr, rewritten about once a second."""

    def __init__(self, total: int, markers: int) -> None:
        self.total, self.markers = total, markers
        self.done = self.markers_done = 0
        self.started = self.shown = time.monotonic()

    def fixes(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.shown >= 1.0:
            self.show()

    def show(self, end: str = "") -> None:
        self.shown = now = time.monotonic()
        rate = self.done / max(now - self.started, 1e-9)
        percent = f" ({min(100.0, 100.0 * self.done / self.total):.0f} %)" if self.total else ""
        print(f"\rrebuild: {self.done:,}/{self.total:,} fixes{percent}, {self.markers_done:,}/{self.markers:,} "
              f"markers, {rate:,.0f} fixes/s", end=end, file=sys.stderr, flush=True)


async def rebuild(args: argparse.Namespace) -> int:
    from tracker.geofences import store as geofence_store
    from tracker.geofences.model import GeofenceIndex
    from tracker.positions.model import MARKER_ID_PATTERN

    try:
        start = None if args.start is None else day_or_time(args.start)
        end = None if args.end is None else day_or_time(args.end, end=True)
    except ValueError as exc:
        raise CommandError(f"--from/--to: {exc}; use a day (2026-11-28) or an ISO 8601 time", EXIT_USAGE) from None
    if start is not None and end is not None and start >= end:
        raise CommandError("--from must be before --to", EXIT_USAGE)
    if args.marker is not None and not MARKER_ID_PATTERN.fullmatch(args.marker):
        raise CommandError(f"{args.marker!r} is not a marker id", EXIT_USAGE)

    async def run(conn) -> int:
        chosen = [args.marker] if args.marker else await markers(conn)
        total = (await (await conn.execute(
            "SELECT count(*) FROM positions WHERE (%(m)s::text IS NULL OR marker_id = %(m)s) "
            "AND fix_time >= coalesce(%(s)s::timestamptz, '-infinity') "
            "AND fix_time < coalesce(%(e)s::timestamptz, 'infinity')",
            {"m": args.marker, "s": start, "e": end})).fetchone())[0]
        index = GeofenceIndex((await geofence_store.load(conn))[1])
        progress, result = Progress(total, len(chosen)), Recomputed()
        for marker_id in chosen:
            result.add(await recompute(conn, marker_id, RULES, start, end, index, progress.fixes))
            progress.markers_done += 1
        progress.show(end="\n")
        seconds = time.monotonic() - progress.started
        print(f"{'markers':>10} {'fixes':>12} {'trips':>8} {'stops':>8} {'spikes':>8} {'seconds':>8} {'fixes/s':>10}")
        print(f"{len(chosen):>10,} {result.fixes:>12,} {result.trips:>8,} {result.stops:>8,} {result.spikes:>8,} "
              f"{seconds:>8.1f} {result.fixes / max(seconds, 1e-9):>10,.0f}")
        return 0

    return await on_database(run)


def add_commands(commands) -> None:
    journeys = commands.add_parser("journeys", help="trips and stops").add_subparsers(title="journeys commands")
    rebuild_parser = journeys.add_parser(
        "rebuild", help="recompute trips, stops and spike flags from the history in Postgres")
    rebuild_parser.add_argument("--marker", help="only this marker (default: every marker with history)")
    rebuild_parser.add_argument("--from", dest="start", metavar="DATE",
                                help="the first day (UTC) or time to recompute (default: the beginning)")
    rebuild_parser.add_argument("--to", dest="end", metavar="DATE",
                                help="the last day (UTC, included) or time (excluded) to recompute (default: the end)")
    rebuild_parser.set_defaults(run=rebuild)
