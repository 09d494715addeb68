"""``tracker history``: commands on the history stored in Postgres.

- ``prune``: drop the months of history older than an age, as the hourly retention check
  does (``agents/retention.py``), and say which with their rows;
- ``erase``: erase a marker's data on a person's request (``tracker.storage.erase``).
"""
from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta, timezone

_AGE = re.compile(r"([0-9]{1,6})([dh])")
#: The oldest age: older than any history the tracker can hold.
MAX_AGE = timedelta(days=100 * 366)


def parse_age(text: str) -> timedelta:
    """``90d`` (days) or ``36h`` (hours), at least one, at most 100 years; ValueError otherwise."""
    match = _AGE.fullmatch(text.strip())
    if not match or int(match[1]) < 1:
        raise ValueError(f"{text[:40]!r} is not an age such as 90d or 36h (a whole number of days or hours, "
                         "at least 1)")
    count = int(match[1])
    age = timedelta(days=count) if match[2] == "d" else timedelta(hours=count)
    if age > MAX_AGE:
        raise ValueError(f"{text[:40]!r} is more than 100 years")
    return age


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


async def erase_command(args) -> int:
    """``tracker history erase --marker ID [--from T] [--to T] [--wait SECONDS]``: Postgres
    first (the rows, the webhook deliveries, the share links), then the erase record for the
    workers; then it waits for the history sink to read the record, and says what it removed
    and where copies remain, until when."""
    from aiokafka.errors import KafkaError

    from tracker.stream import batches
    from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError, on_database
    from tracker.storage.erase import erase_marker
    from tracker.cli.journeys import day_or_time
    from tracker.stream.admin import existing_topics
    from tracker.stream.producer import positions_producer
    from tracker.positions.model import MARKER_ID_PATTERN, micros_of
    from tracker.settings import settings

    if not MARKER_ID_PATTERN.fullmatch(args.marker):
        raise CommandError(f"{args.marker!r} is not a marker id", EXIT_USAGE)
    if not 0 <= args.wait <= 3600:
        raise CommandError("--wait must be between 0 and 3600 seconds", EXIT_USAGE)
    try:
        from_us = None if args.start is None else micros_of(day_or_time(args.start))
        to_us = None if args.end is None else micros_of(day_or_time(args.end, end=True))
    except (ValueError, OverflowError) as exc:
        raise CommandError(f"--from/--to: {exc}; use a day (2026-11-28) or an ISO 8601 time", EXIT_USAGE) from None
    erasure_id, deleted = await on_database(lambda conn: erase_marker(conn, args.marker, from_us, to_us))
    producer = positions_producer(settings)
    sent = False
    try:
        if await existing_topics(settings, [settings.batches_topic]):  # else no worker ever ran
            await producer.start()
            # The marker's partition of the batches topic, as for its positions: same key, same count.
            await (await producer.send(settings.batches_topic, key=args.marker.encode(),
                                       value=batches.encode_erase(args.marker, from_us, to_us)))
            sent = True
    except KafkaError as exc:
        raise CommandError(f"the rows are deleted from Postgres, but Kafka at {settings.bootstrap_servers} could not "
                           f"be reached ({exc}): run the same command again", EXIT_UNAVAILABLE) from None
    finally:
        await producer.stop()
    sink_rows, confirmed = await _wait_for_sink(erasure_id, args.wait if sent else 0)
    _print_erased(args.marker, deleted, sink_rows, confirmed, sent, args.wait, whole=from_us is None and to_us is None)
    await _print_copies(settings)
    return 0


async def _wait_for_sink(erasure_id: int, seconds: float) -> tuple[int, bool]:
    """(rows the history sink deleted, whether it read the record), waiting up to ``seconds``."""
    import asyncio
    import time

    from tracker.cli.common import on_database
    from tracker.storage.erase import sink_report

    deadline = time.monotonic() + seconds
    while True:
        sink_rows, confirmed = await on_database(lambda conn: sink_report(conn, erasure_id))
        if confirmed or time.monotonic() >= deadline:
            return sink_rows, confirmed
        await asyncio.sleep(0.5)


def _print_erased(marker: str, deleted: dict[str, int], sink_rows: int, confirmed: bool, sent: bool, wait: float,
                  whole: bool) -> None:
    print(f"{'table':<20} {'rows':>10}")
    for table, count in deleted.items():
        print(f"{table:<20} {count:>10,}")
    if not sent:
        print("no worker has run yet: nothing of the marker is in the workers' tables")
    elif confirmed:
        print(f"{'(history sink)':<20} {sink_rows:>10,}  rows of fixes that were on their way, deleted when the "
              "history sink read the erase record")
    else:
        print(f"the history sink has not read the erase record within {wait:g} s: it deletes the rows of fixes on "
              "their way when it does (a worker must be running)")
    if sent:
        print(f"marker {marker!r}: the workers remove it from latest (and its motion and events state"
              f"{'' if whole else ', for the whole history only'}) as they read the request")


async def _print_copies(config) -> None:
    from datetime import datetime, timezone

    from aiokafka.errors import KafkaError

    from tracker.stream.copies import remaining

    now = datetime.now(timezone.utc)
    try:
        copies = await remaining(config, now)
    except KafkaError as exc:
        print(f"copies in Kafka: cannot say, Kafka could not be reached ({exc})")
        return
    print("copies that remain, until at the latest:")
    width = max([len(c.topic) for c in copies] + [10])
    for copy in copies:
        until = f"{copy.until:%Y-%m-%d %H:%M} UTC" if copy.until else "no bound"
        print(f"  {copy.topic:<{width}}  {until:<20}  {copy.holds} ({copy.why})")
    if config.mqtt_friends:
        print("  the MQTT broker: its last position, retained as a friend of the phones of its groups, until the "
              "workers publish for those phones again")
    print("  backups of Postgres and of Kafka's disks, if any: as long as they are kept")


def add_commands(commands) -> None:
    history = commands.add_parser("history", help="the history stored in Postgres").add_subparsers(
        title="history commands")
    parser = history.add_parser("prune", help="drop the months of history (positions, events, trips, stops) "
                                              "that ended before an age")
    parser.add_argument("--older-than", required=True, metavar="AGE",
                        help="90d or 36h: drop each month that ended before now minus AGE")
    parser.add_argument("--dry-run", action="store_true", help="list what would be dropped, drop nothing")
    parser.set_defaults(run=prune)
    erase = history.add_parser(
        "erase", aliases=["delete"],
        help="erase a marker's positions, events, trips and stops, its webhook deliveries and share "
             "links (a person's request), and its latest; say what remains where")
    erase.add_argument("--marker", required=True, help="the marker id")
    erase.add_argument("--from", dest="start", metavar="TIME", help="only from this day (UTC) or time (default: all)")
    erase.add_argument("--to", dest="end", metavar="TIME", help="only to this day (UTC, included) or time (excluded)")
    erase.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                       help="wait this long for the history sink to delete what was on its way (default 30; 0: "
                            "do not wait)")
    erase.set_defaults(run=erase_command)
