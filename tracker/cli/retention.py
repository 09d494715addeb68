"""``tracker history prune``: drop the months of history older than an age, as the hourly
retention check does (``agents/retention.py``), and say which with their rows."""
from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone

_AGE = re.compile(r"([0-9]{1,6})([dh])")


def parse_age(text: str) -> timedelta:
    """``90d`` (days) or ``36h`` (hours), at least one; ValueError otherwise."""
    match = _AGE.fullmatch(text.strip())
    if not match or int(match[1]) < 1:
        raise ValueError(f"{text!r} is not an age such as 90d or 36h (a whole number of days or hours, at least 1)")
    count = int(match[1])
    return timedelta(days=count) if match[2] == "d" else timedelta(hours=count)


async def prune(args: argparse.Namespace) -> int:
    import psycopg

    from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError
    from tracker.cli.common import on_database as _on_database
    from tracker.cli.common import table as _table
    from tracker.storage.months import DROP_LOCK_TIMEOUT, drop_older_than

    try:
        cutoff = datetime.now(timezone.utc) - parse_age(args.older_than)
    except ValueError as exc:
        raise CommandError(f"--older-than: {exc}", EXIT_USAGE) from None

    async def drop(conn):
        try:
            return await drop_older_than(conn, cutoff, dry_run=args.dry_run)
        except psycopg.errors.LockNotAvailable:
            raise CommandError(f"a query held a history table for more than {DROP_LOCK_TIMEOUT}, so its months "
                               "were not dropped (those of the tables before it were): try again",
                               EXIT_UNAVAILABLE) from None

    dropped = await _on_database(drop)
    when = f"{cutoff:%Y-%m-%d %H:%M} UTC"
    if not dropped:
        print(f"nothing to drop: no month of history ended before {when}")
        return 0
    _table(("table", "partition", "month", "rows"),
           [(d.table, d.partition, f"{d.month:%Y-%m}", f"{d.rows:,}") for d in dropped], "")
    verb = "would drop" if args.dry_run else "dropped"
    print(f"{verb} {len(dropped)} partition{'s' if len(dropped) != 1 else ''}, {sum(d.rows for d in dropped):,} rows: "
          f"the months that ended before {when}")
    return 0


def add_commands(history) -> None:
    """Add ``prune`` to the subcommands of ``tracker history``."""
    parser = history.add_parser("prune", help="drop the months of history (positions, events, trips, stops) "
                                              "that ended before an age")
    parser.add_argument("--older-than", required=True, metavar="AGE",
                        help="90d or 36h: drop each month that ended before now minus AGE")
    parser.add_argument("--dry-run", action="store_true", help="list what would be dropped, drop nothing")
    parser.set_defaults(run=prune)
